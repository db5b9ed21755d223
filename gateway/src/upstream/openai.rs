//! OpenAI and every OpenAI-compatible server (vLLM, Ollama, xAI, Groq, ...): passthrough.
//!
//! The body goes upstream as the client sent it with only `model` rewritten (and, for streams,
//! `stream_options.include_usage` switched on so tokens can be counted; see [`SseRelay`]).
//! API reference: <https://platform.openai.com/docs/api-reference/chat/create>.

use super::{Call, CompileError, Endpoint, HttpClient, Provider, Reply};
use crate::body::{Source, SseRelay};
use crate::error::{UpstreamError, UpstreamErrorKind};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full, Limited};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{Credential, OpenAiProviderConfig, Secrets};
use switchboard_llm::Usage;
use switchboard_llm::openai::ModelRequest;
use switchboard_llm::stream::OpenAiPassthrough;
use tokio::time::{Instant, timeout_at};

/// The largest non-streaming response accepted from an upstream.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The most of an upstream error body kept (enough for any real error message).
const MAX_ERROR_BYTES: usize = 64 * 1024;

pub struct OpenAiProvider {
    name: Arc<str>,
    chat_uri: Uri,
    embeddings_uri: Uri,
    /// Authorization and configured extra headers, built once; values marked sensitive.
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    /// Whether streams ask for `stream_options.include_usage`.
    stream_usage: bool,
    client: HttpClient,
}

impl OpenAiProvider {
    /// Builds the provider from a validated config: the URLs and header values were checked
    /// by the validator, so only reading an `env` or `file` credential can fail here.
    pub fn compile(
        config: &OpenAiProviderConfig,
        secrets: &Secrets,
        client: HttpClient,
    ) -> Result<Self, CompileError> {
        let uri = |endpoint: &str| {
            config.endpoint_url(endpoint).parse::<Uri>().map_err(|err| CompileError {
                path: "base_url".into(),
                reason: format!("not a valid URL: {err}"),
            })
        };
        let mut headers = Vec::new();
        if let Some(credential) = &config.api_key {
            let key = resolve(credential, secrets)
                .map_err(|reason| CompileError { path: "api_key".into(), reason })?;
            headers.push((AUTHORIZATION, sensitive(&format!("Bearer {key}"), "api_key")?));
        }
        for (i, header) in config.headers.iter().enumerate() {
            let path = format!("headers[{i}]");
            let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| CompileError {
                path: format!("{path}.name"),
                reason: "invalid header name".into(),
            })?;
            let value = resolve(&header.value, secrets)
                .map_err(|reason| CompileError { path: format!("{path}.value"), reason })?;
            headers.push((name, sensitive(&value, &format!("{path}.value"))?));
        }
        Ok(OpenAiProvider {
            name: Arc::from(config.name.as_str()),
            chat_uri: uri("/chat/completions")?,
            embeddings_uri: uri("/embeddings")?,
            headers,
            timeout: Duration::from_millis(config.timeout_ms),
            stream_usage: config.stream_usage,
            client,
        })
    }

    fn error(&self, kind: UpstreamErrorKind) -> UpstreamError {
        UpstreamError { provider: self.name.clone(), kind }
    }
}

impl Provider for OpenAiProvider {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    async fn send(&self, call: Call<'_>, request: &ModelRequest<'_>) -> Result<Reply, UpstreamError> {
        let body = request
            .to_upstream_body(call.model, self.stream_usage)
            .map_err(|err| UpstreamError::bad_request(&self.name, err))?;
        let uri = match call.endpoint {
            Endpoint::ChatCompletions => &self.chat_uri,
            Endpoint::Embeddings => &self.embeddings_uri,
        };
        let mut upstream_request = Request::new(Full::new(Bytes::from(body)));
        *upstream_request.method_mut() = Method::POST;
        *upstream_request.uri_mut() = uri.clone();
        let headers = upstream_request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-request-id", call.request_id.clone());
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }

        // One budget for connecting, response headers and (non-streaming) the whole body.
        let deadline = Instant::now() + self.timeout;
        let response = match timeout_at(deadline, self.client.request(upstream_request)).await {
            Err(_) => return Err(self.error(UpstreamErrorKind::Timeout(self.timeout))),
            Ok(Err(err)) => return Err(self.error(UpstreamErrorKind::Connect(describe_client_error(&err)))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let retry_after = response.headers().get(RETRY_AFTER).cloned();
            // The error body is only best-effort context: a slow or broken one is not waited for.
            let body =
                match timeout_at(deadline, Limited::new(response.into_body(), MAX_ERROR_BYTES).collect())
                    .await
                {
                    Ok(Ok(collected)) => collected.to_bytes(),
                    _ => Bytes::new(),
                };
            return Err(self.error(UpstreamErrorKind::Status { status, body, retry_after }));
        }
        let is_event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        if request.stream && is_event_stream {
            // The provider timeout also bounds the silence between two events.
            // A usage chunk only needs stripping if the gateway asked for one the caller did not.
            let translator = Box::new(OpenAiPassthrough::new(self.stream_usage && !request.include_usage));
            return Ok(Reply::Stream(SseRelay::new(
                Source::Http(response.into_body()),
                translator,
                self.timeout,
            )));
        }
        let body = match timeout_at(
            deadline,
            Limited::new(response.into_body(), MAX_RESPONSE_BYTES).collect(),
        )
        .await
        {
            Err(_) => return Err(self.error(UpstreamErrorKind::Timeout(self.timeout))),
            Ok(Err(err)) => {
                return Err(self.error(UpstreamErrorKind::Connect(format!("reading the response: {err}"))));
            }
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        if request.stream {
            return Err(self.error(UpstreamErrorKind::InvalidResponse(
                "asked for a stream, got a response that is not text/event-stream".into(),
            )));
        }
        let usage = Usage::from_openai_response(&body).unwrap_or_default();
        Ok(Reply::Full { body, usage })
    }
}

/// Reads a credential now, so a missing one fails the reload rather than a request later.
pub(crate) fn resolve(credential: &Credential, secrets: &Secrets) -> Result<String, String> {
    match credential {
        Credential::Value(value) => Ok(value.expose().to_owned()),
        Credential::Secret(name) => secrets
            .get(name)
            .map(|value| value.expose().to_owned())
            .ok_or_else(|| format!("no entry {name:?} in `secrets`")),
        Credential::Env(name) => match std::env::var(name) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            _ => Err(format!("environment variable {name:?} is not set")),
        },
        Credential::File(path) => match std::fs::read_to_string(path) {
            Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
            Ok(_) => Err(format!("file {path:?} is empty")),
            Err(err) => Err(format!("cannot read {path:?}: {err}")),
        },
    }
}

fn sensitive(value: &str, path: &str) -> Result<HeaderValue, CompileError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| CompileError {
        path: path.to_owned(),
        reason: "contains characters not allowed in an HTTP header".into(),
    })?;
    // hyper and our logs then never print it.
    value.set_sensitive(true);
    Ok(value)
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
