//! Backend state that must outlive config swaps.
//!
//! With an operator pushing a new snapshot on every key change, a table rebuilt from scratch
//! would forget which backends are failing (an ejected backend would get traffic again after
//! every push) and restart every weighted schedule at its first backend. So health is kept per
//! upstream (provider and model: two routes on the same upstream share what they learn) and
//! cursors per route tier, outside the swapped table.

use super::health::Health;
use crate::registry::Registry;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

#[derive(Default)]
pub struct BackendState {
    health: Registry<Health>,
    cursors: Registry<AtomicUsize>,
}

impl BackendState {
    pub fn health(&self, provider: &str, model: &str) -> Arc<Health> {
        self.health.get(&health_key(provider, model))
    }

    pub fn cursor(&self, route: &str, priority: u32) -> Arc<AtomicUsize> {
        self.cursors.get(&cursor_key(route, priority))
    }

    /// Keeps only what `used` names (what the table now being served uses).
    pub fn retain(&self, used: &UsedState) {
        self.health.retain(&used.health.iter().map(String::as_str).collect::<HashSet<_>>());
        self.cursors.retain(&used.cursors.iter().map(String::as_str).collect::<HashSet<_>>());
    }
}

/// The state entries one compiled table uses.
#[derive(Default, Debug)]
pub struct UsedState {
    health: HashSet<String>,
    cursors: HashSet<String>,
}

impl UsedState {
    pub fn health(&mut self, provider: &str, model: &str) {
        self.health.insert(health_key(provider, model));
    }

    pub fn cursor(&mut self, route: &str, priority: u32) {
        self.cursors.insert(cursor_key(route, priority));
    }
}

// NUL cannot appear in a validated name, so these keys cannot collide.
fn health_key(provider: &str, model: &str) -> String {
    format!("{provider}\0{model}")
}

fn cursor_key(route: &str, priority: u32) -> String {
    format!("{route}\0{priority}")
}
