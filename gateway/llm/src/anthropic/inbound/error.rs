//! Anthropic's error envelope, for answers and inside streams.
//!
//! Reference: <https://docs.anthropic.com/en/api/errors>. Every error is
//! `{"type":"error","error":{"type":<error type>,"message":<text>}}`; the error type follows the
//! HTTP status.

use bytes::{Bytes, BytesMut};
use serde::Serialize;

/// The documented error type for an HTTP status.
///
/// Statuses the docs list map as documented. The rest:
/// - 402 is `billing_error`, and 504 `timeout_error`: both are in the official SDKs' error
///   union (`anthropic.types.shared.ErrorObject`), though the errors page does not list them;
/// - 503 is `overloaded_error`: the gateway answers 503 when every backend is overloaded or
///   none is ready, which is what Anthropic's 529 means, and SDKs retry both;
/// - 502 and any other 5xx are `api_error` ("an unexpected error internal to the system"): the
///   upstream failed in a way the client cannot fix;
/// - any other 4xx is `invalid_request_error`, as the docs say Anthropic does itself.
pub fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The error body for `status`, with its documented error type.
pub fn error_body(status: u16, message: &str) -> Bytes {
    error_envelope(error_type(status), message)
}

/// The error body with an explicit error type (`invalid_request_error`, `overloaded_error`...).
pub fn error_envelope(kind: &str, message: &str) -> Bytes {
    #[derive(Serialize)]
    struct Envelope<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        message: &'a str,
    }
    let envelope = Envelope { kind: "error", error: Inner { kind, message } };
    // Strings only: serialization cannot fail.
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// The in-stream `error` event: after the 200 status line, this is how Anthropic ends a stream
/// that failed (<https://docs.anthropic.com/en/api/messages-streaming#error-events>).
pub fn stream_error_event(kind: &str, message: &str) -> Bytes {
    sse_event("error", &error_envelope(kind, message))
}

/// One SSE event with an `event:` line, as every Messages stream event has.
pub(super) fn sse_event(name: &str, data: &[u8]) -> Bytes {
    let mut event = BytesMut::with_capacity(name.len() + data.len() + 16);
    event.extend_from_slice(b"event: ");
    event.extend_from_slice(name.as_bytes());
    event.extend_from_slice(b"\ndata: ");
    event.extend_from_slice(data);
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_gets_its_documented_type() {
        // The list at https://docs.anthropic.com/en/api/errors, then the gateway's own choices.
        for (status, kind) in [
            (400, "invalid_request_error"),
            (401, "authentication_error"),
            (403, "permission_error"),
            (404, "not_found_error"),
            (413, "request_too_large"),
            (429, "rate_limit_error"),
            (500, "api_error"),
            (529, "overloaded_error"),
            (402, "billing_error"),
            (405, "invalid_request_error"),
            (408, "invalid_request_error"),
            (502, "api_error"),
            (503, "overloaded_error"),
            (504, "timeout_error"),
        ] {
            assert_eq!(error_type(status), kind, "{status}");
        }
    }

    #[test]
    fn the_envelope_is_the_documented_shape() {
        // The example of https://docs.anthropic.com/en/api/errors#error-shapes (without
        // `request_id`, which the gateway sends as a header).
        assert_eq!(
            error_body(404, "The requested resource could not be found."),
            Bytes::from_static(
                br#"{"type":"error","error":{"type":"not_found_error","message":"The requested resource could not be found."}}"#
            )
        );
        let quoted = error_envelope("invalid_request_error", "a \"quoted\"\nline");
        let value: serde_json::Value = serde_json::from_slice(&quoted).unwrap();
        assert_eq!(value["error"]["message"], "a \"quoted\"\nline");
    }

    #[test]
    fn stream_errors_are_named_events() {
        assert_eq!(
            stream_error_event("overloaded_error", "Overloaded"),
            Bytes::from_static(
                b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
            )
        );
    }
}
