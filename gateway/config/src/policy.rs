//! Rate-limit policies: how many requests, tokens, concurrent requests or dollars a key, a team,
//! a route or a key on a route may use per window, and budgets in dollars per UTC day and month.
//!
//! A policy is bound by reference: a key's `policies` apply to that key's requests, a route's
//! `policies` to every request on the route. Its `scope` says whose counter a request charges:
//! the key's, its team's (the key's `team` label), the route's (shared by every key), or one per
//! key×route pair.

use crate::ObjectRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Referenced from keys and routes; also the label in metrics and errors.
    pub name: String,
    pub scope: PolicyScope,
    /// Window length in seconds for the per-window limits (requests, tokens, usd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// Requests in flight at once (no window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_requests: Option<u64>,
    /// Spend in US dollars per window, as a decimal string (`"25.00"`): exact, unlike a float.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usd: Option<String>,
    /// Spend in US dollars per UTC calendar day (a budget: the window is the day, not a rolling
    /// `window_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<String>,
    /// Spend in US dollars per UTC calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<String>,
    #[serde(default)]
    pub mode: PolicyMode,
    #[serde(default)]
    pub failure_mode: FailureMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

impl PolicyConfig {
    /// Whether any budget (a calendar-window spend limit) is set.
    pub fn has_budget(&self) -> bool {
        self.daily_usd.is_some() || self.monthly_usd.is_some()
    }

    /// Whether any limit that needs a window is set.
    pub fn has_windowed_limit(&self) -> bool {
        self.requests.is_some()
            || self.input_tokens.is_some()
            || self.output_tokens.is_some()
            || self.total_tokens.is_some()
            || self.usd.is_some()
    }
}

/// Whose counter a request charges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyScope {
    /// One counter per key, over every route it uses.
    Key,
    /// One counter per team (the key's `team` label), shared by the team's keys; a key without
    /// a team label is not charged.
    Team,
    /// One counter per route, shared by every key.
    Route,
    /// One counter per key on each route.
    KeyRoute,
}

/// Where counters live.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// In each replica's memory: the limit holds per replica.
    #[default]
    Local,
    /// In Redis: the limit holds across the fleet.
    Redis,
}

/// What a `redis` policy does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Let requests through (availability first).
    #[default]
    Open,
    /// Refuse requests (the limit first).
    Closed,
}

/// A virtual key's own budget: US dollars per UTC calendar day and month, decimal strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<String>,
    /// Where the spend is counted. Redis by default: a budget is meant to hold across the fleet.
    #[serde(default = "redis_mode")]
    pub mode: PolicyMode,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

fn redis_mode() -> PolicyMode {
    PolicyMode::Redis
}

/// Parses a non-negative decimal with at most 6 fractional digits (`"25"`, `"0.50"`) into
/// millionths of a dollar, so budgets add up exactly.
pub fn parse_usd(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an amount like \"25.00\" (digits, at most 6 decimals)");
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return Err(bad()),
        Some(parts) => parts,
        None => (text, ""),
    };
    if whole.is_empty() || whole.len() > 12 || fraction.len() > 6 {
        return Err(bad());
    }
    if !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let fraction: u64 =
        if fraction.is_empty() { 0 } else { format!("{fraction:0<6}").parse().map_err(|_| bad())? };
    Ok(whole * 1_000_000 + fraction)
}

#[cfg(test)]
mod tests {
    use super::parse_usd;

    #[test]
    fn usd_amounts_parse_exactly() {
        assert_eq!(parse_usd("25"), Ok(25_000_000));
        assert_eq!(parse_usd("0.5"), Ok(500_000));
        assert_eq!(parse_usd("12.000001"), Ok(12_000_001));
        for bad in ["", ".5", "1.", "-1", "1e3", "1.0000001", "ten"] {
            assert!(parse_usd(bad).is_err(), "{bad:?}");
        }
    }
}
