//! One HTTP exchange with a provider, for every dialect: the request a dialect built (its URI,
//! headers and body), the provider's credentials applied, the timeout, and the answer's status
//! sorted into a reply to relay or an [`UpstreamError`] (with a bounded copy of the error body).
//! Dialects only build requests and read answers; nothing else here knows one from another.

use super::credentials::{CredentialFailure, Credentials};
use super::{Correlation, HttpClient};
use crate::error::{UpstreamError, UpstreamErrorKind};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::ProviderTimeouts;
use tokio::time::{Instant, timeout_at};

/// The largest non-streaming response accepted from an upstream.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The most of an upstream error body kept (enough for any real error message).
const MAX_ERROR_BYTES: usize = 64 * 1024;

static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A provider's connection settings: where requests go through, with what credentials, and
/// how long an exchange may take.
pub struct Executor {
    provider: Arc<str>,
    client: HttpClient,
    credentials: Credentials,
    /// Connecting plus the answer (a stream: its head).
    timeout: Duration,
    /// The longest silence inside a stream.
    idle: Duration,
    /// One attempt from start to end.
    total: Option<Duration>,
}

/// An answer with a success status, its body not yet read.
pub struct Answer {
    pub response: Response<Incoming>,
    /// When the exchange must be over (a complete body must arrive before it).
    pub deadline: Instant,
}

impl Answer {
    pub fn is_event_stream(&self) -> bool {
        self.response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    }
}

impl Executor {
    /// `timeout_ms` and `timeouts` are the provider config's (the connect timeout is the
    /// client's).
    pub fn new(
        provider: Arc<str>,
        client: HttpClient,
        credentials: Credentials,
        timeout_ms: u64,
        timeouts: &ProviderTimeouts,
    ) -> Self {
        let timeout = Duration::from_millis(timeout_ms);
        let idle = timeouts.idle_ms.map_or(timeout, Duration::from_millis);
        let total = timeouts.total_ms.map(Duration::from_millis);
        Executor { provider, client, credentials, timeout, idle, total }
    }

    pub fn provider(&self) -> &Arc<str> {
        &self.provider
    }

    /// The longest silence allowed between two events of a stream.
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    pub fn total_timeout(&self) -> Option<Duration> {
        self.total
    }

    pub fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError { provider: self.provider.clone(), kind }
    }

    /// POSTs `body` as JSON to `uri` with `headers` (the dialect's own) plus the provider's
    /// credentials and the call's `correlation`. A success status gives the answer with its body
    /// unread; any other status is an error carrying the start of the body.
    pub async fn post_json(
        &self,
        uri: &Uri,
        headers: HeaderMap,
        body: Vec<u8>,
        correlation: Correlation<'_>,
    ) -> Result<Answer, UpstreamError> {
        let answer = self.exchange_json(uri, headers, body, correlation).await?;
        if !answer.response.status().is_success() {
            return Err(self.status_error(answer).await);
        }
        Ok(answer)
    }

    /// The exchange of [`Executor::post_json`] whatever the answer's status, for dialects that
    /// read an error answer's headers (Bedrock's error code is in `x-amzn-ErrorType`) before
    /// [`Executor::status_error`] makes it an error.
    pub async fn exchange_json(
        &self,
        uri: &Uri,
        mut headers: HeaderMap,
        body: Vec<u8>,
        correlation: Correlation<'_>,
    ) -> Result<Answer, UpstreamError> {
        headers.insert(CONTENT_TYPE, APPLICATION_JSON.clone());
        headers.insert(X_REQUEST_ID.clone(), correlation.request_id.clone());
        match self.credentials.apply(&Method::POST, uri, &mut headers, &body).await {
            Ok(()) => {}
            Err(CredentialFailure::Token(err)) => return Err(err),
            Err(CredentialFailure::Signing(reason)) => {
                // No key to sign with is the gateway's credential problem, as a refused key is.
                tracing::warn!(provider = %self.provider, error = %reason, "cannot authenticate to the provider");
                return Err(self.error(UpstreamErrorKind::Status {
                    status: StatusCode::UNAUTHORIZED,
                    body: Bytes::new(),
                    retry_after: None,
                }));
            }
        }
        // After signing: trace context is not part of what a provider authenticates.
        if let Some(trace) = correlation.trace {
            trace.stamp(&mut headers);
        }
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;

        // One budget for connecting, response headers and (non-streaming) the whole body.
        let deadline = Instant::now() + self.timeout;
        match timeout_at(deadline, self.client.request(request)).await {
            Err(_) => Err(self.error(UpstreamErrorKind::Timeout(self.timeout))),
            Ok(Err(err)) => Err(self.error(UpstreamErrorKind::Connect(describe_client_error(&err)))),
            Ok(Ok(response)) => Ok(Answer { response, deadline }),
        }
    }

    /// An answer with an error status as an error, with the start of its body.
    pub async fn status_error(&self, answer: Answer) -> UpstreamError {
        let status = answer.response.status();
        if status == StatusCode::UNAUTHORIZED {
            self.credentials.refused();
        }
        let retry_after = answer.response.headers().get(RETRY_AFTER).cloned();
        // The error body is only best-effort context: a slow or broken one is not waited for.
        let body = match timeout_at(
            answer.deadline,
            Limited::new(answer.response.into_body(), MAX_ERROR_BYTES).collect(),
        )
        .await
        {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => Bytes::new(),
        };
        self.error(UpstreamErrorKind::Status { status, body, retry_after })
    }

    /// Reads a complete (non-streaming) answer's body within the exchange's deadline.
    pub async fn read_body(&self, answer: Answer) -> Result<Bytes, UpstreamError> {
        match timeout_at(
            answer.deadline,
            Limited::new(answer.response.into_body(), MAX_RESPONSE_BYTES).collect(),
        )
        .await
        {
            Err(_) => Err(self.error(UpstreamErrorKind::Timeout(self.timeout))),
            Ok(Err(err)) => {
                Err(self.error(UpstreamErrorKind::Connect(format!("reading the response: {err}"))))
            }
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }
}

/// The useful part of a client error: hyper-util's top-level message is generic, the cause names
/// the real problem (connection refused, DNS, TLS).
pub(crate) fn describe_client_error(err: &hyper_util::client::legacy::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
