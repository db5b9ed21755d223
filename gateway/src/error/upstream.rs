//! Failed calls to providers: what went wrong ([`UpstreamError`]), and how each failure is
//! answered (`render_upstream`): the provider's own explanation for a request it rejected,
//! the gateway's words for everything else (unreachable, overloaded, refused credentials), never
//! an upstream body that may echo a credential.

use super::{ErrorReply, envelope};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A failed call to a provider.
#[derive(Debug)]
pub struct UpstreamError {
    pub provider: Arc<str>,
    pub kind: UpstreamErrorKind,
}

#[derive(Debug)]
pub enum UpstreamErrorKind {
    /// Could not connect, or the connection broke before a response.
    Connect(String),
    /// No response (or no complete body) within the provider's timeout.
    Timeout(Duration),
    /// The provider answered with a non-success status.
    Status { status: StatusCode, body: Bytes, retry_after: Option<HeaderValue> },
    /// The provider answered with something that is not its API.
    InvalidResponse(String),
    /// No access token for the provider: its token endpoint refused or failed (a log-safe
    /// reason, never the secret or a token).
    Token(String),
}

impl UpstreamError {
    /// The provider cannot take this request as written: answered like OpenAI would (400 with
    /// its envelope), without trying other backends, which would refuse it too.
    pub fn bad_request(provider: &Arc<str>, err: switchboard_llm::openai::RequestError) -> Self {
        let body = envelope(&err.message, "invalid_request_error", err.param.as_deref(), None);
        UpstreamError {
            provider: provider.clone(),
            kind: UpstreamErrorKind::Status { status: StatusCode::BAD_REQUEST, body, retry_after: None },
        }
    }

    /// Whether the next backend of the route should be tried: the provider is unreachable,
    /// overloaded or broken, as opposed to rejecting this particular request.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            UpstreamErrorKind::Connect(_) | UpstreamErrorKind::Timeout(_) => true,
            UpstreamErrorKind::InvalidResponse(_) | UpstreamErrorKind::Token(_) => true,
            // 5xx includes 529, Anthropic's "overloaded". Other 4xx are about the request (or
            // the gateway's credentials): another attempt would get the same answer.
            UpstreamErrorKind::Status { status, .. } => {
                status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS
            }
        }
    }

    /// How long a 429 or 503 (or 529) asked to wait, from `Retry-After` in seconds (an HTTP
    /// date is rare from APIs and is ignored).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        let UpstreamErrorKind::Status { status, retry_after: Some(value), .. } = &self.kind else {
            return None;
        };
        if !(*status == StatusCode::TOO_MANY_REQUESTS || status.as_u16() == 503 || status.as_u16() == 529) {
            return None;
        }
        let seconds: u64 = value.to_str().ok()?.trim().parse().ok()?;
        Some(std::time::Duration::from_secs(seconds))
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let provider = &self.provider;
        match &self.kind {
            UpstreamErrorKind::Connect(reason) => write!(f, "provider {provider:?} is unreachable: {reason}"),
            UpstreamErrorKind::Timeout(after) => {
                write!(f, "provider {provider:?} did not answer within {} ms", after.as_millis())
            }
            UpstreamErrorKind::Status { status, .. } => {
                write!(f, "provider {provider:?} answered with status {}", status.as_u16())
            }
            UpstreamErrorKind::InvalidResponse(reason) => {
                write!(f, "provider {provider:?} sent an invalid response: {reason}")
            }
            UpstreamErrorKind::Token(reason) => {
                write!(f, "provider {provider:?}: no access token: {reason}")
            }
        }
    }
}

impl UpstreamError {
    /// What the caller is told: which provider and what kind of failure, without the detail
    /// (OS errors, TLS reasons) that belongs in the gateway's log, not in a client's hands.
    pub fn client_message(&self) -> String {
        let provider = &self.provider;
        match &self.kind {
            UpstreamErrorKind::Connect(_) => format!("provider {provider:?} is unreachable"),
            UpstreamErrorKind::InvalidResponse(_) => {
                format!("provider {provider:?} sent an invalid response")
            }
            UpstreamErrorKind::Token(_) => format!("provider {provider:?}: could not obtain an access token"),
            UpstreamErrorKind::Timeout(_) | UpstreamErrorKind::Status { .. } => self.to_string(),
        }
    }
}

pub(super) fn render_upstream(err: &UpstreamError) -> ErrorReply {
    match &err.kind {
        UpstreamErrorKind::Timeout(_) => ErrorReply::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            Some("upstream_timeout"),
            err.client_message(),
            None,
        ),
        UpstreamErrorKind::Status { status, retry_after, .. } if *status == StatusCode::TOO_MANY_REQUESTS => {
            ErrorReply {
                retry_after: retry_after.clone(),
                ..ErrorReply::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limit_error",
                    Some("upstream_rate_limited"),
                    format!(
                        "{}: the provider is rate limiting this gateway; retry later",
                        err.client_message()
                    ),
                    None,
                )
            }
        }
        // The provider is overloaded: OpenAI's own word for that is 503; a client retries it.
        UpstreamErrorKind::Status { status, body, retry_after } if overloaded(*status, body) => ErrorReply {
            retry_after: retry_after.clone(),
            ..ErrorReply::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                Some("upstream_overloaded"),
                format!("{}: the provider is overloaded; retry later", err.client_message()),
                None,
            )
        },
        // A 4xx other than auth/rate limiting means the provider rejected this request's content
        // (bad parameter, context too long): the caller must see the provider's own explanation,
        // re-wrapped so the envelope is always OpenAI's even when the server's is not (vLLM).
        UpstreamErrorKind::Status { status, body, .. }
            if status.is_client_error()
                && *status != StatusCode::UNAUTHORIZED
                && *status != StatusCode::FORBIDDEN =>
        {
            let upstream = UpstreamMessage::parse(body);
            let message = upstream.message.unwrap_or_else(|| err.client_message());
            ErrorReply::new(
                *status,
                upstream.kind.as_deref().unwrap_or("invalid_request_error"),
                upstream.code.as_deref(),
                message,
                upstream.param.as_deref(),
            )
        }
        // The provider refused the gateway's own credentials (a wrong key, a bad signature):
        // nothing the client can fix, but it should know it is not its request.
        UpstreamErrorKind::Status { status, .. }
            if *status == StatusCode::UNAUTHORIZED || *status == StatusCode::FORBIDDEN =>
        {
            ErrorReply::new(
                StatusCode::BAD_GATEWAY,
                "server_error",
                Some("upstream_auth_error"),
                format!("{}: the provider refused the gateway's credentials", err.client_message()),
                None,
            )
        }
        _ => ErrorReply::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            Some("upstream_error"),
            err.client_message(),
            None,
        ),
    }
}

/// Whether an error status says "overloaded, retry later" rather than "broken": Anthropic's 529
/// (`overloaded_error`) and Google's 503 `UNAVAILABLE` ("The model is overloaded"; a plain 503
/// from an OpenAI-compatible server stays a 502).
fn overloaded(status: StatusCode, body: &[u8]) -> bool {
    status.as_u16() == 529
        || (status == StatusCode::SERVICE_UNAVAILABLE
            && UpstreamMessage::parse(body).status.as_deref() == Some("UNAVAILABLE"))
}

/// What an upstream said about a rejected request, from OpenAI's envelope or the flat
/// `{"object":"error","message":..}` shape some compatible servers use.
#[derive(Default)]
struct UpstreamMessage {
    message: Option<String>,
    kind: Option<String>,
    param: Option<String>,
    code: Option<String>,
    /// Google's canonical status name (`INVALID_ARGUMENT`), next to its numeric `code`.
    status: Option<String>,
}

impl UpstreamMessage {
    fn parse(body: &[u8]) -> Self {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return UpstreamMessage::default();
        };
        let error = match value.get("error") {
            Some(inner) if inner.is_object() => inner,
            _ => &value,
        };
        let text = |field: &str| match error.get(field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let message =
            text("message").or_else(|| value.get("error").and_then(|e| e.as_str()).map(str::to_owned));
        // Google's canonical name is a string; Azure's envelope repeats the HTTP status as a
        // number next to its own `code` (`content_filter`), which must win.
        let status =
            error.get("status").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_owned);
        // Google's name says more than its number (`NOT_FOUND` rather than `404`).
        let code = status.clone().or_else(|| text("code"));
        UpstreamMessage { message, kind: text("type"), param: text("param"), code, status }
    }
}
