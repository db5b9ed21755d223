//! The retry budget of one route: retries may be at most a share of its requests plus a floor,
//! over the last ten seconds, so a total outage costs its providers a bounded extra load instead
//! of every request's full set of attempts.
//!
//! Requests deposit, retries withdraw; both are counted in one [`SecondsWindow`] kept across
//! reloads (`state.rs`). The check and the withdrawal are two steps, so retries that start at the
//! same instant may overshoot by as many as run concurrently: a budget, not a hard quota.

use super::window::{SecondsWindow, WINDOW_SECS};
use switchboard_config::RetryConfig;

/// The budget's rule, from the route's config.
#[derive(Debug, Clone, Copy)]
pub struct RetryRule {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub budget_percent: u64,
    pub min_per_second: u64,
}

impl RetryRule {
    /// The route's rule; `backends` sets the default number of attempts (3, or one per backend).
    pub fn from_config(config: Option<&RetryConfig>, backends: usize) -> Self {
        let config = config.copied().unwrap_or_default();
        let backends = u32::try_from(backends).unwrap_or(u32::MAX);
        RetryRule {
            max_attempts: config.max_attempts.unwrap_or(backends.max(3)),
            budget_percent: u64::from(config.budget_percent),
            min_per_second: u64::from(config.min_per_second),
        }
    }
}

/// Per second: (requests, retries).
#[derive(Debug, Default)]
pub struct RetryBudget {
    window: SecondsWindow,
}

impl RetryBudget {
    /// Counts one request.
    pub fn deposit(&self, now_ms: u64) {
        self.window.add(now_ms, 1, 0);
    }

    /// Takes one retry from the budget, if it has one.
    pub fn withdraw(&self, now_ms: u64, rule: &RetryRule) -> bool {
        let (requests, retries) = self.window.sums(now_ms);
        let allowed = requests * rule.budget_percent / 100 + rule.min_per_second * WINDOW_SECS as u64;
        if retries >= allowed {
            return false;
        }
        self.window.add(now_ms, 0, 1);
        true
    }

    /// (requests, retries) over the window, for the admin endpoint.
    pub fn sums(&self, now_ms: u64) -> (u64, u64) {
        self.window.sums(now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_are_a_share_of_requests_plus_a_floor() {
        let rule = RetryRule { max_attempts: 3, budget_percent: 20, min_per_second: 1 };
        let budget = RetryBudget::default();
        for _ in 0..100 {
            budget.deposit(1);
        }
        // 20 % of 100 requests, plus 1 per second over 10 seconds.
        let granted = (0..100).filter(|_| budget.withdraw(1, &rule)).count();
        assert_eq!(granted, 30);
        assert!(budget.withdraw(20_000, &rule), "the window moved on: the floor is back");
    }

    #[test]
    fn the_default_tries_every_backend_and_at_least_three_times() {
        assert_eq!(RetryRule::from_config(None, 1).max_attempts, 3);
        assert_eq!(RetryRule::from_config(None, 5).max_attempts, 5);
        let one = RetryConfig { max_attempts: Some(1), ..RetryConfig::default() };
        assert_eq!(RetryRule::from_config(Some(&one), 5).max_attempts, 1);
    }
}
