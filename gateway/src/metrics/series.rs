//! The series of one route, one provider, and one provider serving one route: handles the
//! table holds (resolved when a config compiles), so a request only touches their atomics.

use super::histogram::{AtomicHistogram, GAP_BOUNDS, LATENCY_BOUNDS};
use crate::error::{GatewayError, UpstreamError, UpstreamErrorKind};
use crate::limits::RefusalReason;
use crate::registry::Registry;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::time::Duration;

/// Status codes counted with their own label; anything else counts as `other`.
pub(super) const STATUS_CODES: [u16; 15] =
    [200, 400, 401, 403, 404, 405, 408, 413, 429, 499, 500, 502, 503, 504, 0];

/// Counters for one public route.
#[derive(Default)]
pub struct RouteMetrics {
    pub(super) requests: [Counter; STATUS_CODES.len()],
    pub(super) duration: Latency,
    pub(super) streams_aborted: Counter,
    pub(super) errors: [Counter; ErrorType::ALL.len()],
    /// Retries made, and retries the budget refused.
    pub(super) retries: Counter,
    pub(super) retries_refused: Counter,
    /// Per provider serving the route: first-token and between-token latencies.
    pub(super) streams: Registry<StreamMetrics>,
}

/// A whole request's latency histogram (request received to last byte).
#[derive(Debug)]
pub(super) struct Latency(pub(super) AtomicHistogram<{ LATENCY_BOUNDS.len() }>);

impl Default for Latency {
    fn default() -> Self {
        Latency(AtomicHistogram::new(&LATENCY_BOUNDS))
    }
}

impl RouteMetrics {
    pub(crate) fn record(&self, status: u16, elapsed: Duration, aborted: bool, error: Option<ErrorType>) {
        let slot = STATUS_CODES.iter().position(|&s| s == status).unwrap_or(STATUS_CODES.len() - 1);
        self.requests[slot].inc();
        self.duration.0.observe(elapsed);
        if aborted {
            self.streams_aborted.inc();
        }
        if let Some(error) = error {
            self.errors[error as usize].inc();
        }
    }

    /// One retry: made (`true`) or refused by the retry budget.
    pub fn record_retry(&self, granted: bool) {
        if granted {
            self.retries.inc()
        } else {
            self.retries_refused.inc()
        };
    }

    /// The stream latencies of `provider` serving this route, created on first use. Called
    /// while compiling, never per request.
    pub fn stream(&self, provider: &str) -> Arc<StreamMetrics> {
        self.streams.get(provider)
    }
}

/// Stream latencies of one provider serving one route.
#[derive(Debug)]
pub struct StreamMetrics {
    /// Request received to the first event relayed to the client (streams only: a whole
    /// answer's latency is the request duration, not a first token).
    pub(super) first_token: AtomicHistogram<{ LATENCY_BOUNDS.len() }>,
    /// Between consecutive relayed events (per upstream chunk that carried any).
    pub(super) between_tokens: AtomicHistogram<{ GAP_BOUNDS.len() }>,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        StreamMetrics {
            first_token: AtomicHistogram::new(&LATENCY_BOUNDS),
            between_tokens: AtomicHistogram::new(&GAP_BOUNDS),
        }
    }
}

impl StreamMetrics {
    pub fn first_token(&self, elapsed: Duration) {
        self.first_token.observe(elapsed);
    }

    pub fn between_tokens(&self, gap: Duration) {
        self.between_tokens.observe(gap);
    }
}

/// Outcomes of calls to a provider, in label order.
pub(super) const OUTCOMES: [&str; 7] =
    ["ok", "bad_request", "status_4xx", "status_429", "status_5xx", "timeout", "connect_error"];

/// Counters for one provider: every attempt, including those a fallback recovered from.
#[derive(Default)]
pub struct ProviderMetrics {
    pub(super) outcomes: [Counter; OUTCOMES.len()],
    pub(super) ejections: Counter,
}

impl ProviderMetrics {
    pub fn record_ejection(&self) {
        self.ejections.inc();
    }

    pub fn record(&self, outcome: Result<(), &UpstreamError>) {
        let slot = match outcome {
            Ok(()) => 0,
            Err(err) => match &err.kind {
                UpstreamErrorKind::Status { status, .. } if status.as_u16() == 400 => 1,
                UpstreamErrorKind::Status { status, .. } if status.as_u16() == 429 => 3,
                UpstreamErrorKind::Status { status, .. } if status.is_client_error() => 2,
                // A token endpoint's failure is the provider's side failing, as a 5xx is.
                UpstreamErrorKind::Status { .. }
                | UpstreamErrorKind::InvalidResponse(_)
                | UpstreamErrorKind::Token(_) => 4,
                UpstreamErrorKind::Timeout(_) => 5,
                UpstreamErrorKind::Connect(_) => 6,
            },
        };
        self.outcomes[slot].inc();
    }
}

/// The kind of error a client was answered with, as `switchboard_errors_total{type}`: a fixed
/// set, whatever a provider's own error codes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Auth,
    Forbidden,
    NotFound,
    ClientTimeout,
    RateLimited,
    BudgetExceeded,
    LimitsUnavailable,
    Overloaded,
    NotReady,
    StoreUnavailable,
    Timeout,
    UpstreamTimeout,
    UpstreamUnreachable,
    UpstreamRateLimited,
    Upstream4xx,
    Upstream5xx,
    UpstreamAuth,
    UpstreamInvalidResponse,
}

impl ErrorType {
    pub const ALL: [ErrorType; 19] = [
        ErrorType::InvalidRequest,
        ErrorType::Auth,
        ErrorType::Forbidden,
        ErrorType::NotFound,
        ErrorType::ClientTimeout,
        ErrorType::RateLimited,
        ErrorType::BudgetExceeded,
        ErrorType::LimitsUnavailable,
        ErrorType::Overloaded,
        ErrorType::NotReady,
        ErrorType::StoreUnavailable,
        ErrorType::Timeout,
        ErrorType::UpstreamTimeout,
        ErrorType::UpstreamUnreachable,
        ErrorType::UpstreamRateLimited,
        ErrorType::Upstream4xx,
        ErrorType::Upstream5xx,
        ErrorType::UpstreamAuth,
        ErrorType::UpstreamInvalidResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Auth => "auth",
            ErrorType::Forbidden => "forbidden",
            ErrorType::NotFound => "not_found",
            ErrorType::ClientTimeout => "client_timeout",
            ErrorType::RateLimited => "rate_limited",
            ErrorType::BudgetExceeded => "budget_exceeded",
            ErrorType::LimitsUnavailable => "limits_unavailable",
            ErrorType::Overloaded => "overloaded",
            ErrorType::NotReady => "not_ready",
            ErrorType::StoreUnavailable => "store_unavailable",
            ErrorType::Timeout => "timeout",
            ErrorType::UpstreamTimeout => "upstream_timeout",
            ErrorType::UpstreamUnreachable => "upstream_unreachable",
            ErrorType::UpstreamRateLimited => "upstream_rate_limited",
            ErrorType::Upstream4xx => "upstream_4xx",
            ErrorType::Upstream5xx => "upstream_5xx",
            ErrorType::UpstreamAuth => "upstream_auth",
            ErrorType::UpstreamInvalidResponse => "upstream_invalid_response",
        }
    }

    /// Whether a provider was called (an upstream failure is at least one attempt).
    pub fn is_upstream(self) -> bool {
        self.as_str().starts_with("upstream_")
    }

    pub fn of(err: &GatewayError) -> ErrorType {
        use GatewayError as E;
        match err {
            E::BadRequest { .. }
            | E::Unsupported { .. }
            | E::MethodNotAllowed
            | E::BodyTooLarge { .. }
            | E::PreviousResponseNotFound { .. }
            | E::ConversationTooLarge { .. } => ErrorType::InvalidRequest,
            E::MissingKey | E::InvalidKey | E::KeyDisabled | E::KeyExpired => ErrorType::Auth,
            E::ModelNotAllowed { .. } => ErrorType::Forbidden,
            E::UnknownModel { .. } | E::NotFound { .. } | E::ResponseNotFound { .. } => ErrorType::NotFound,
            E::BodyTimeout => ErrorType::ClientTimeout,
            E::NotReady => ErrorType::NotReady,
            E::Limited(refusal) => match refusal.reason {
                RefusalReason::Budget { .. } => ErrorType::BudgetExceeded,
                RefusalReason::Unavailable => ErrorType::LimitsUnavailable,
                RefusalReason::Window { .. } | RefusalReason::Concurrent { .. } => ErrorType::RateLimited,
            },
            E::StoreUnavailable => ErrorType::StoreUnavailable,
            E::Overloaded(_) => ErrorType::Overloaded,
            E::DeadlineExceeded { .. } => ErrorType::Timeout,
            E::Upstream(err) => match &err.kind {
                UpstreamErrorKind::Timeout(_) => ErrorType::UpstreamTimeout,
                UpstreamErrorKind::Connect(_) => ErrorType::UpstreamUnreachable,
                UpstreamErrorKind::InvalidResponse(_) => ErrorType::UpstreamInvalidResponse,
                UpstreamErrorKind::Token(_) => ErrorType::UpstreamAuth,
                UpstreamErrorKind::Status { status, .. } => match status.as_u16() {
                    429 => ErrorType::UpstreamRateLimited,
                    401 | 403 => ErrorType::UpstreamAuth,
                    400..=499 => ErrorType::Upstream4xx,
                    _ => ErrorType::Upstream5xx,
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorType;

    #[test]
    fn error_types_are_listed_once_in_their_index_order() {
        for (index, kind) in ErrorType::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index, "{}", kind.as_str());
        }
    }
}
