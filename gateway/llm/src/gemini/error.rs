//! What a Google error body says beyond its status and message, for the gateway to act on.
//!
//! Google puts machine-readable detail in `error.details` (`google.rpc.*` messages,
//! <https://cloud.google.com/apis/design/errors#error_details>) rather than in headers:
//! - a rate limit (429 `RESOURCE_EXHAUSTED`) says when to retry in a `RetryInfo.retryDelay`
//!   (a protobuf `Duration` in JSON, `"7s"`, `"0.5s"`), with no `Retry-After` header;
//! - a wrong API key is a 400 `INVALID_ARGUMENT` with an `ErrorInfo` reason `API_KEY_INVALID`
//!   (<https://ai.google.dev/gemini-api/docs/troubleshooting>), not a 401: it is the gateway's
//!   credential that is wrong, not the client's request.

use serde::Deserialize;

const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";

/// The details of a Google error body the gateway acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetails {
    /// `RetryInfo.retryDelay` in whole seconds, rounded up (a client told 0 would retry at once).
    pub retry_after_secs: Option<u64>,
    /// An `ErrorInfo` with reason `API_KEY_INVALID`: the provider's key was refused.
    pub invalid_api_key: bool,
}

#[derive(Deserialize)]
struct Envelope {
    error: Status,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    details: Vec<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    #[serde(rename = "@type", default)]
    kind: String,
    #[serde(default)]
    retry_delay: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The details of an error body (`{"error":{"code","message","status","details"}}`), or the
/// defaults when it is not one.
pub fn error_details(body: &[u8]) -> ErrorDetails {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return ErrorDetails::default();
    };
    let mut found = ErrorDetails::default();
    for detail in envelope.error.details {
        match detail.kind.as_str() {
            RETRY_INFO => found.retry_after_secs = detail.retry_delay.as_deref().and_then(whole_seconds),
            ERROR_INFO => found.invalid_api_key |= detail.reason.as_deref() == Some("API_KEY_INVALID"),
            _ => {}
        }
    }
    found
}

/// A JSON `Duration` (`"7s"`, `"1.5s"`, `"0.000001s"`) in whole seconds, rounded up.
fn whole_seconds(duration: &str) -> Option<u64> {
    let number = duration.strip_suffix('s')?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().ok()?;
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let round_up = fraction.bytes().any(|b| b != b'0');
    // Saturating: "18446744073709551615.5s" parses, and overflowing panicked in debug builds
    // (and wrapped to a retry after 0 s in release).
    Some(whole.saturating_add(u64::from(round_up)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_and_invalid_keys() {
        let rate_limited =
            br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
            {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}"#;
        assert_eq!(
            error_details(rate_limited),
            ErrorDetails { retry_after_secs: Some(7), invalid_api_key: false }
        );
        let bad_key = br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[
            {"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        assert!(error_details(bad_key).invalid_api_key);
        let plain = br#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(error_details(plain), ErrorDetails::default());
        assert_eq!(error_details(b"<html>"), ErrorDetails::default());
    }

    #[test]
    fn durations_round_up() {
        for (text, secs) in
            [("7s", Some(7)), ("0s", Some(0)), ("1.5s", Some(2)), ("0.000001s", Some(1)), ("2.000s", Some(2))]
        {
            assert_eq!(whole_seconds(text), secs, "{text}");
        }
        for bad in ["7", "s", "-1s", "1.x5s", "abc"] {
            assert_eq!(whole_seconds(bad), None, "{bad}");
        }
    }
}
