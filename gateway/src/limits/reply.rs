//! What a client is told about limits: a refusal's status and envelope, and OpenAI's rate-limit
//! response headers, from the headroom admission reports:
//! `x-ratelimit-{limit,remaining,reset}-requests` and `-tokens`
//! (<https://platform.openai.com/docs/guides/rate-limits#rate-limits-in-headers>). With several
//! limits on a request, each header pair shows the one with the least room left, as OpenAI's
//! single pair would.

use super::policy::Counted;
use super::window::format_reset;
use super::{Headroom, Period, Refusal, RefusalReason};
use crate::error::ErrorReply;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

static REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
static TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// Adds the headers for the tightest request limit and the tightest token limit.
pub fn write(headroom: &[Headroom], headers: &mut HeaderMap) {
    let tightest = |tokens: bool| {
        headroom
            .iter()
            .filter(|h| h.what.is_tokens() == tokens && h.what != Counted::Usd)
            .min_by_key(|h| h.remaining)
    };
    for (names, found) in [(&REQUESTS, tightest(false)), (&TOKENS, tightest(true))] {
        if let Some(h) = found {
            insert(headers, names, h.limit, h.remaining, h.reset_ms);
        }
    }
}

/// The headers of a 429 for a windowed limit: that limit, with nothing remaining.
pub fn write_refusal(refusal: &Refusal, headers: &mut HeaderMap) {
    if let RefusalReason::Window { what, limit } = refusal.reason {
        let names = match what {
            Counted::Requests => &REQUESTS,
            Counted::Usd => return,
            _ => &TOKENS,
        };
        insert(headers, names, limit, 0, refusal.retry_after_ms);
    }
}

fn insert(headers: &mut HeaderMap, names: &[HeaderName; 3], limit: u64, remaining: u64, reset_ms: u64) {
    headers.insert(names[0].clone(), HeaderValue::from(limit));
    headers.insert(names[1].clone(), HeaderValue::from(remaining));
    if let Ok(value) = HeaderValue::from_str(&format_reset(reset_ms)) {
        headers.insert(names[2].clone(), value);
    }
}

/// 429 like OpenAI's own limits (`rate_limit_exceeded`; a spent budget is OpenAI's
/// `insufficient_quota`, coded `budget_exceeded`), or 503 when a fail-closed policy cannot
/// reach Redis. `Retry-After` says when trying again can help.
pub fn render_refusal(refusal: &Refusal) -> ErrorReply {
    let whose = if refusal.policy.is_empty() {
        "this API key's budget".to_owned()
    } else {
        format!("rate-limit policy '{}'", refusal.policy)
    };
    let wait = refusal.retry_after_ms.div_ceil(1000).max(1);
    let (status, kind, code, message) = match &refusal.reason {
        RefusalReason::Window { what, limit } => {
            let unit = match what {
                Counted::Requests => "requests",
                Counted::InputTokens => "input tokens",
                Counted::OutputTokens => "output tokens",
                Counted::TotalTokens => "tokens",
                Counted::Usd => "nano-dollars of spend",
            };
            let kind = if *what == Counted::Requests { "requests" } else { "tokens" };
            let limit =
                if *what == Counted::Usd { format!("${}", *limit as f64 / 1e9) } else { limit.to_string() };
            let unit = if *what == Counted::Usd { "spend" } else { unit };
            (
                StatusCode::TOO_MANY_REQUESTS,
                kind,
                "rate_limit_exceeded",
                format!(
                    "Rate limit reached for {whose}: {limit} {unit} per window. Please try again in {wait}s."
                ),
            )
        }
        RefusalReason::Concurrent { limit } => (
            StatusCode::TOO_MANY_REQUESTS,
            "requests",
            "rate_limit_exceeded",
            format!(
                "Too many concurrent requests for {whose}: at most {limit} at a time. Please try again shortly."
            ),
        ),
        RefusalReason::Budget { period } => {
            let period = match period {
                Period::Day => "daily (UTC)",
                Period::Month => "monthly (UTC)",
            };
            (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "budget_exceeded",
                format!("The {period} budget of {whose} is spent. It renews in {wait}s."),
            )
        }
        RefusalReason::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "limits_unavailable",
            format!(
                "The counters of {whose} cannot be reached, and it refuses requests until they can. Please try again shortly."
            ),
        ),
    };
    ErrorReply {
        retry_after: HeaderValue::from_str(&wait.to_string()).ok(),
        ..ErrorReply::new(status, kind, Some(code), message, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tightest_limit_of_each_kind_is_shown() {
        let headroom = [
            Headroom { what: Counted::Requests, limit: 100, remaining: 40, reset_ms: 1500 },
            Headroom { what: Counted::Requests, limit: 10, remaining: 9, reset_ms: 20 },
            Headroom { what: Counted::TotalTokens, limit: 10_000, remaining: 7000, reset_ms: 360_000 },
            Headroom { what: Counted::Usd, limit: 1, remaining: 0, reset_ms: 0 },
        ];
        let mut headers = HeaderMap::new();
        write(&headroom, &mut headers);
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(get("x-ratelimit-limit-requests"), "10");
        assert_eq!(get("x-ratelimit-remaining-requests"), "9");
        assert_eq!(get("x-ratelimit-reset-requests"), "20ms");
        assert_eq!(get("x-ratelimit-remaining-tokens"), "7000");
        assert_eq!(get("x-ratelimit-reset-tokens"), "6m0s");
    }
}
