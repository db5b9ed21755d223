//! Decoding the `model` string into a behaviour, and OpenAI error envelopes/responses.

use std::time::Duration;

use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::body::MockBody;
use crate::json::push_str;

/// What the request's `model` asks the mock to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behavior {
    Default,
    /// `error-<status>`: fail with this status before any body bytes.
    Error(StatusCode),
    /// `slow-<ms>`: wait before the response headers, then behave as default.
    Slow(Duration),
    /// `stream-<n>-<ms>`: n words, `ms` apart.
    Stream {
        words: u32,
        gap: Duration,
    },
    /// `midstream-error`: two content chunks then an SSE error event.
    Midstream,
    /// `continuous-usage`: every stream chunk carries the running usage total, as vLLM does with
    /// `stream_options.continuous_usage_stats`.
    ContinuousUsage,
    /// `<model>-tool`: one call of the request's first tool.
    Tool,
    /// `<model>-parallel-tools`: calls of the request's first two tools in one answer.
    ParallelTools,
    /// `<model>-cache`: half the prompt (rounded up) reported as cached.
    Cache,
    /// `<model>-malformed`: an answer cut off mid-JSON (a stream: one event cut off).
    Malformed,
    /// `<model>-disconnect`: the connection drops mid-answer (a stream: after two content
    /// chunks).
    Disconnect,
}

/// The keyword suffixes, named as `tests/mock-providers` names them (one per model id here).
/// Longest first, so `-parallel-tools` wins over `-tool`.
const SUFFIXES: [(&str, Behavior); 6] = [
    ("-parallel-tools", Behavior::ParallelTools),
    ("-midstream-error", Behavior::Midstream),
    ("-disconnect", Behavior::Disconnect),
    ("-malformed", Behavior::Malformed),
    ("-cache", Behavior::Cache),
    ("-tool", Behavior::Tool),
];

/// Upper bound on `stream-<n>-..` words, so a typo cannot allocate gigabytes.
const MAX_WORDS: u32 = 1_000_000;

impl Behavior {
    pub(crate) fn from_model(model: &str) -> Self {
        if let Some(s) = model.strip_prefix("error-") {
            if let Ok(code) = s.parse::<u16>()
                && (400..=599).contains(&code)
                && let Ok(status) = StatusCode::from_u16(code)
            {
                return Self::Error(status);
            }
        } else if let Some(ms) = model.strip_prefix("slow-").and_then(|s| s.parse().ok()) {
            return Self::Slow(Duration::from_millis(ms));
        } else if let Some((n, ms)) = model.strip_prefix("stream-").and_then(|s| s.split_once('-'))
            && let (Ok(n), Ok(ms)) = (n.parse::<u32>(), ms.parse::<u64>())
        {
            return Self::Stream { words: n.min(MAX_WORDS), gap: Duration::from_millis(ms) };
        } else if model == "midstream-error" {
            return Self::Midstream;
        } else if model == "continuous-usage" {
            return Self::ContinuousUsage;
        } else if let Some((_, behavior)) = SUFFIXES.iter().find(|(suffix, _)| model.ends_with(suffix)) {
            return *behavior;
        }
        Self::Default
    }
}

/// `{"error":{"message":..,"type":..,"param":null,"code":..}}` with the given status.
pub(crate) fn error_response(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: &str,
) -> Response<MockBody> {
    let mut buf = Vec::with_capacity(64 + message.len() + kind.len() + code.len());
    buf.extend_from_slice(b"{\"error\":{\"message\":");
    push_str(&mut buf, message);
    buf.extend_from_slice(b",\"type\":");
    push_str(&mut buf, kind);
    buf.extend_from_slice(b",\"param\":null,\"code\":");
    push_str(&mut buf, code);
    buf.extend_from_slice(b"}}");
    let mut resp = json_response(MockBody::full(buf));
    *resp.status_mut() = status;
    if status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("7"));
    }
    resp
}

/// The error a `error-<status>` model produces.
pub(crate) fn status_error(status: StatusCode) -> Response<MockBody> {
    let (message, kind, code) = match status.as_u16() {
        400 => ("Invalid request (mock error-400).", "invalid_request_error", "invalid_request_error"),
        401 => ("Incorrect API key provided (mock error-401).", "authentication_error", "invalid_api_key"),
        403 => ("Permission denied (mock error-403).", "permission_error", "permission_denied"),
        404 => ("The model does not exist (mock error-404).", "invalid_request_error", "model_not_found"),
        429 => ("Rate limit reached (mock error-429).", "requests", "rate_limit_exceeded"),
        500..=599 => {
            ("The server had an error processing your request (mock).", "server_error", "server_error")
        }
        _ => ("Mock upstream error.", "invalid_request_error", "invalid_request_error"),
    };
    error_response(status, message, kind, code)
}

pub(crate) fn bad_request(message: &str) -> Response<MockBody> {
    error_response(StatusCode::BAD_REQUEST, message, "invalid_request_error", "invalid_request_error")
}

/// OpenAI's 400 for a request it refuses, naming the parameter (`messages.[2].role`); boxed,
/// as it travels in `Err`s.
pub(crate) fn invalid(message: &str, param: &str) -> Box<Response<MockBody>> {
    let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error",
        "param": param, "code": null}});
    let mut resp = json_response(MockBody::full(body.to_string()));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    Box::new(resp)
}

pub(crate) fn unauthorized() -> Response<MockBody> {
    error_response(
        StatusCode::UNAUTHORIZED,
        "Incorrect API key provided.",
        "authentication_error",
        "invalid_api_key",
    )
}

pub(crate) fn not_found(path: &str) -> Response<MockBody> {
    let message = format!("Invalid URL ({path})");
    error_response(StatusCode::NOT_FOUND, &message, "invalid_request_error", "unknown_url")
}

/// A 200 response with `content-type: application/json`.
pub(crate) fn json_response(body: MockBody) -> Response<MockBody> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_models() {
        assert_eq!(Behavior::from_model("gpt-4o"), Behavior::Default);
        assert_eq!(Behavior::from_model("error-503"), Behavior::Error(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(Behavior::from_model("error-200"), Behavior::Default);
        assert_eq!(Behavior::from_model("slow-15"), Behavior::Slow(Duration::from_millis(15)));
        assert_eq!(
            Behavior::from_model("stream-3-20"),
            Behavior::Stream { words: 3, gap: Duration::from_millis(20) }
        );
        assert_eq!(Behavior::from_model("midstream-error"), Behavior::Midstream);
        assert_eq!(Behavior::from_model("continuous-usage"), Behavior::ContinuousUsage);
        assert_eq!(Behavior::from_model("gpt-mock-tool"), Behavior::Tool);
        assert_eq!(Behavior::from_model("gpt-mock-parallel-tools"), Behavior::ParallelTools);
        assert_eq!(Behavior::from_model("gpt-mock-cache"), Behavior::Cache);
        assert_eq!(Behavior::from_model("gpt-mock-malformed"), Behavior::Malformed);
        assert_eq!(Behavior::from_model("gpt-mock-midstream-error"), Behavior::Midstream);
        assert_eq!(Behavior::from_model("gpt-mock-disconnect"), Behavior::Disconnect);
        assert_eq!(Behavior::from_model("tool"), Behavior::Default, "a suffix follows a dash");
    }
}
