//! Policies as the request path uses them: amounts parsed once, each limit a (what, how much).

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use switchboard_config::counters::{self, NANO_USD_PER_USD};
use switchboard_config::{BudgetConfig, FailureMode, PolicyConfig, PolicyMode, PolicyScope, parse_usd};

/// What a windowed limit counts. The index is the counter's slot; the name its Redis field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Requests = 0,
    InputTokens = 1,
    OutputTokens = 2,
    TotalTokens = 3,
    /// Nano-dollars.
    Usd = 4,
}

impl Counted {
    pub const ALL: [Counted; 5] =
        [Counted::Requests, Counted::InputTokens, Counted::OutputTokens, Counted::TotalTokens, Counted::Usd];

    pub fn field(self) -> &'static str {
        match self {
            Counted::Requests => "req",
            Counted::InputTokens => "in",
            Counted::OutputTokens => "out",
            Counted::TotalTokens => "tot",
            Counted::Usd => "usd",
        }
    }

    /// The amount of a request's demand this limit counts.
    pub fn of(self, demand: &Demand) -> u64 {
        match self {
            Counted::Requests => demand.requests,
            Counted::InputTokens => demand.input,
            Counted::OutputTokens => demand.output,
            Counted::TotalTokens => demand.input.saturating_add(demand.output),
            Counted::Usd => demand.cost_nano_usd,
        }
    }

    pub fn is_tokens(self) -> bool {
        matches!(self, Counted::InputTokens | Counted::OutputTokens | Counted::TotalTokens)
    }
}

/// What one request takes: reserved from estimates at admission, settled from exact usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// 1 at admission; a settlement keeps it (an admitted request counts, whatever happened).
    pub requests: u64,
    pub input: u64,
    pub output: u64,
    pub cost_nano_usd: u64,
}

/// A rate-limit policy, or a key's own budget, ready for the request path.
#[derive(Debug)]
pub struct Policy {
    /// The policy's name (its metric label and error text); empty for a key's own budget.
    pub name: Arc<str>,
    pub scope: PolicyScope,
    /// 0 when the policy has no windowed limit.
    pub window_ms: u64,
    /// Windowed limits (Usd in nano-dollars).
    pub windowed: Vec<(Counted, u64)>,
    /// Nano-dollars per UTC day and month.
    pub daily: Option<u64>,
    pub monthly: Option<u64>,
    pub concurrent: Option<u64>,
    pub mode: PolicyMode,
    pub failure: FailureMode,
}

impl Policy {
    /// From a validated policy (a value that does not parse cannot reach here; it would be
    /// skipped rather than enforced as something else).
    pub fn from_config(config: &PolicyConfig) -> Self {
        let windowed = [
            (Counted::Requests, config.requests),
            (Counted::InputTokens, config.input_tokens),
            (Counted::OutputTokens, config.output_tokens),
            (Counted::TotalTokens, config.total_tokens),
            (Counted::Usd, config.usd.as_deref().and_then(nano_usd)),
        ];
        Policy {
            name: Arc::from(config.name.as_str()),
            scope: config.scope,
            window_ms: config.window_seconds.unwrap_or(0).saturating_mul(1000),
            windowed: windowed.into_iter().filter_map(|(what, limit)| Some((what, limit?))).collect(),
            daily: config.daily_usd.as_deref().and_then(nano_usd),
            monthly: config.monthly_usd.as_deref().and_then(nano_usd),
            concurrent: config.concurrent_requests,
            mode: config.mode,
            failure: config.failure_mode,
        }
    }

    /// A key's own budget: a key-scoped policy with only the calendar limits.
    pub fn key_budget(config: &BudgetConfig) -> Self {
        Policy {
            name: Arc::from(""),
            scope: PolicyScope::Key,
            window_ms: 0,
            windowed: Vec::new(),
            daily: config.daily_usd.as_deref().and_then(nano_usd),
            monthly: config.monthly_usd.as_deref().and_then(nano_usd),
            concurrent: None,
            mode: config.mode,
            failure: config.failure_mode,
        }
    }

    pub fn is_key_budget(&self) -> bool {
        self.name.is_empty()
    }

    /// Whether admission needs a token estimate for this policy.
    pub fn counts_tokens(&self) -> bool {
        self.windowed.iter().any(|(what, _)| what.is_tokens())
    }

    /// Whether admission needs a cost estimate for this policy.
    pub fn counts_cost(&self) -> bool {
        self.daily.is_some()
            || self.monthly.is_some()
            || self.windowed.iter().any(|(w, _)| *w == Counted::Usd)
    }

    /// The Redis hash tag of the counter this request charges (`None`: a team policy and a key
    /// without a team, which charges nothing).
    pub fn tag(&self, key: &str, team: Option<&str>, route: &str) -> Option<String> {
        if self.is_key_budget() {
            return Some(counters::key_budget_tag(key));
        }
        counters::policy_tag(&self.name, self.scope, key, team, route)
    }

    /// The identity of the same counter in this process, without building the tag: a hash of
    /// exactly what the tag is made of.
    pub fn subject(&self, key: &str, team: Option<&str>, route: &str) -> Option<u64> {
        let mut hasher = std::hash::DefaultHasher::new();
        self.name.hash(&mut hasher);
        match (self.is_key_budget(), self.scope) {
            (true, _) | (false, PolicyScope::Key) => (0u8, key).hash(&mut hasher),
            (false, PolicyScope::Team) => (1u8, team?).hash(&mut hasher),
            (false, PolicyScope::Route) => (2u8, route).hash(&mut hasher),
            (false, PolicyScope::KeyRoute) => (3u8, key, route).hash(&mut hasher),
        }
        Some(hasher.finish())
    }
}

/// A validated decimal dollar amount in nano-dollars.
fn nano_usd(text: &str) -> Option<u64> {
    // parse_usd gives millionths; a validated amount is at most 12 integer digits, so this fits.
    parse_usd(text).ok().map(|micro| micro.saturating_mul(NANO_USD_PER_USD / 1_000_000))
}

/// A backend's prices, as picodollars per token: a price per million tokens in dollars is the
/// same number in micro-dollars per token, i.e. `parse_usd` of it counts picodollars per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Price {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Price {
    pub fn from_config(config: &switchboard_config::PriceConfig) -> Self {
        let per_token = |price: &Option<String>| price.as_deref().and_then(|p| parse_usd(p).ok());
        let input = per_token(&config.input).unwrap_or(0);
        Price {
            input,
            output: per_token(&config.output).unwrap_or(0),
            cache_read: per_token(&config.cache_read).unwrap_or(input),
            cache_write: per_token(&config.cache_write).unwrap_or(input),
        }
    }

    /// Each component the largest of the two: what a reservation prices a request at when any
    /// of a route's backends may serve it.
    pub fn max(self, other: Price) -> Price {
        Price {
            input: self.input.max(other.input),
            output: self.output.max(other.output),
            cache_read: self.cache_read.max(other.cache_read),
            cache_write: self.cache_write.max(other.cache_write),
        }
    }

    /// The cost of a request's tokens in nano-dollars, rounded up (a budget errs on the side of
    /// holding). `cache_read` and `cache_write` are parts of `input` (the usage model).
    pub fn cost_nano_usd(&self, usage: &switchboard_llm::Usage) -> u64 {
        let cached = usage.cache_read.saturating_add(usage.cache_write).min(usage.input);
        let uncached = usage.input - cached;
        let cache_read = usage.cache_read.min(cached);
        let cache_write = cached - cache_read;
        let pico = u128::from(uncached) * u128::from(self.input)
            + u128::from(cache_read) * u128::from(self.cache_read)
            + u128::from(cache_write) * u128::from(self.cache_write)
            + u128::from(usage.output) * u128::from(self.output);
        u64::try_from(pico.div_ceil(1000)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_config::PriceConfig;
    use switchboard_llm::Usage;

    #[test]
    fn cost_is_exact_per_token_class() {
        let price = Price::from_config(&PriceConfig {
            input: Some("2.50".into()),
            output: Some("10".into()),
            cache_read: Some("1.25".into()),
            cache_write: None,
        });
        assert_eq!(price.input, 2_500_000, "picodollars per token");
        let usage = Usage { input: 1000, output: 200, cache_read: 400, cache_write: 100, reasoning: 0 };
        // 500 uncached × 2.5 µ$ + 400 × 1.25 µ$ + 100 (written, at input) × 2.5 µ$ + 200 × 10 µ$
        assert_eq!(price.cost_nano_usd(&usage), 1_250_000 + 500_000 + 250_000 + 2_000_000);
        let tiny = Price::from_config(&PriceConfig { input: Some("0.0375".into()), ..Default::default() });
        let one = Usage { input: 1, ..Usage::default() };
        assert_eq!(tiny.cost_nano_usd(&one), 38, "37.5 n$ rounds up");
    }

    #[test]
    fn subjects_differ_by_scope_and_team() {
        let policy = |scope| {
            Policy::from_config(&PolicyConfig {
                name: "p".into(),
                scope,
                window_seconds: Some(60),
                requests: Some(1),
                input_tokens: None,
                output_tokens: None,
                total_tokens: None,
                concurrent_requests: None,
                usd: None,
                daily_usd: None,
                monthly_usd: None,
                mode: PolicyMode::Local,
                failure_mode: FailureMode::Open,
                source: None,
            })
        };
        let key = policy(PolicyScope::Key);
        assert_eq!(key.subject("k", None, "a"), key.subject("k", Some("t"), "b"));
        let pair = policy(PolicyScope::KeyRoute);
        assert_ne!(pair.subject("k", None, "a"), pair.subject("k", None, "b"));
        assert_eq!(policy(PolicyScope::Team).subject("k", None, "a"), None);
        assert_eq!(policy(PolicyScope::Team).tag("k", Some("t"), "a").as_deref(), Some("t p t"));
    }
}
