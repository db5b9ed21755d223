//! The routing table: everything a request needs, compiled from one config snapshot.
//!
//! A table is immutable once built. [`compile`] does all fallible work (resolving credentials,
//! building upstream clients, hashing keys); [`TableHolder::swap`] then publishes it with one
//! atomic store. A request loads the table once at its start and keeps that `Arc` to its end, so
//! it never sees two configs, and a reload never waits for requests.

mod compile;
mod health;
mod report;
mod retry;
mod route;
mod state;
mod window;

pub use compile::{CompileContext, compile, compile_accepted};
pub use health::{Admission, CircuitState, Health, now_ms};
pub use report::backends_json;
pub use retry::{RetryBudget, RetryRule};
pub use route::{Backend, Route};
pub use state::{BackendState, UsedState};

use crate::auth::KeyTable;
use crate::upstream::Upstream;
use arc_swap::ArcSwapOption;
use std::collections::HashMap;
use std::sync::Arc;

pub struct RoutingTable {
    /// Generation from the snapshot (0 for hand-written files).
    pub generation: u64,
    /// Short content hash of the source document, to tell configs apart in logs and metrics.
    pub hash: String,
    pub routes: Vec<Route>,
    route_index: HashMap<Arc<str>, usize>,
    pub keys: KeyTable,
    pub upstreams: Vec<Upstream>,
    /// Rate-limit policies and key budgets, and how many of them count in Redis.
    pub policies: usize,
    pub redis_policies: usize,
    /// When the table was compiled; reported as `created` by `/v1/models`.
    pub created_unix: i64,
    /// Credential files the config names: part of its fingerprint, so a rotated Secret is
    /// noticed without the config text changing.
    pub credential_files: Vec<String>,
    /// The shared backend state this table uses; everything else is dropped once it serves.
    pub used_state: UsedState,
}

impl RoutingTable {
    pub fn route(&self, model: &str) -> Option<&Route> {
        self.route_index.get(model).map(|&i| &self.routes[i])
    }
}

/// The one place that holds the current table. Request handlers receive a loaded
/// `Arc<RoutingTable>`, never this holder, so a request cannot observe a swap half-way.
#[derive(Default)]
pub struct TableHolder {
    current: ArcSwapOption<RoutingTable>,
}

impl TableHolder {
    pub fn load(&self) -> Option<Arc<RoutingTable>> {
        self.current.load_full()
    }

    /// Publishes a compiled table. Infallible by construction: everything that can fail happened
    /// in [`compile`].
    pub fn swap(&self, table: RoutingTable) {
        self.current.store(Some(Arc::new(table)));
    }

    pub fn is_loaded(&self) -> bool {
        self.current.load().is_some()
    }
}
