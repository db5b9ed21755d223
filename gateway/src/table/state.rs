//! Backend state that must outlive config swaps.
//!
//! With an operator pushing a new snapshot on every key change, a table rebuilt from scratch
//! would forget which backends are failing (an ejected backend would get traffic again after
//! every push) and restart every weighted schedule at its first backend. So health (circuit,
//! cooldown, latency) is kept per upstream (provider and model: two routes on the same upstream
//! share what they learn), cursors per route tier and retry budgets per route, outside the
//! swapped table.

use super::health::Health;
use super::retry::RetryBudget;
use crate::registry::Registry;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

#[derive(Default)]
pub struct BackendState {
    health: Registry<Health>,
    cursors: Registry<AtomicUsize>,
    budgets: Registry<RetryBudget>,
}

impl BackendState {
    pub fn health(&self, provider: &str, model: &str) -> Arc<Health> {
        self.health.get(&health_key(provider, model))
    }

    pub fn cursor(&self, route: &str, priority: u32) -> Arc<AtomicUsize> {
        self.cursors.get(&cursor_key(route, priority))
    }

    pub fn retry_budget(&self, route: &str) -> Arc<RetryBudget> {
        self.budgets.get(route)
    }

    /// Every backend's health, by (provider, model), for the admin endpoint.
    pub fn each_health(&self, mut visit: impl FnMut(&str, &str, &Health)) {
        for (key, health) in self.health.sorted() {
            if let Some((provider, model)) = key.split_once('\0') {
                visit(provider, model, &health);
            }
        }
    }

    /// Keeps only what `used` names (what the table now being served uses).
    pub fn retain(&self, used: &UsedState) {
        self.health.retain(&used.health.iter().map(String::as_str).collect::<HashSet<_>>());
        self.cursors.retain(&used.cursors.iter().map(String::as_str).collect::<HashSet<_>>());
        self.budgets.retain(&used.budgets.iter().map(String::as_str).collect::<HashSet<_>>());
    }
}

/// The state entries one compiled table uses.
#[derive(Default, Debug)]
pub struct UsedState {
    health: HashSet<String>,
    cursors: HashSet<String>,
    budgets: HashSet<String>,
}

impl UsedState {
    pub fn health(&mut self, provider: &str, model: &str) {
        self.health.insert(health_key(provider, model));
    }

    pub fn cursor(&mut self, route: &str, priority: u32) {
        self.cursors.insert(cursor_key(route, priority));
    }

    pub fn retry_budget(&mut self, route: &str) {
        self.budgets.insert(route.to_owned());
    }
}

// NUL cannot appear in a validated name, so these keys cannot collide.
fn health_key(provider: &str, model: &str) -> String {
    format!("{provider}\0{model}")
}

fn cursor_key(route: &str, priority: u32) -> String {
    format!("{route}\0{priority}")
}
