//! Prometheus metrics in OpenMetrics text (`prometheus-client`), lock-free on the request path.
//!
//! Process-wide counters and gauges are the crate's own `Counter`/`Gauge` (atomics behind an
//! `Arc`), registered once. Per-route and per-provider series live in [`RouteMetrics`] and
//! [`ProviderMetrics`], resolved by name while a config compiles and shared by every table that
//! has the route, so counts survive reloads and a request only touches atomics (the crate's
//! `Family` would take a lock per lookup). A collector walks them at scrape time, so a series
//! the config dropped ([`Metrics::retain`]) disappears from `/metrics`. Label cardinality is
//! bounded by config: requests for unknown models count under `route=""`.
//!
//! Adding a family: a counter field on `RouteMetrics`/`ProviderMetrics` (or a new handle type
//! with its `Registry`), its increment at the call site, and its lines in `collect.rs`; a
//! process-wide metric is one field and one `register` call in [`Metrics::new`].

mod collect;
mod histogram;
mod series;

use crate::registry::Registry;
use crate::spend::SpendMetrics;
use arc_swap::{ArcSwap, ArcSwapOption};
pub use histogram::{AtomicHistogram, REDIS_BOUNDS};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
pub use series::{ErrorType, ProviderMetrics, RouteMetrics, StreamMetrics};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A gauge of a non-negative quantity (a count, a generation, a timestamp).
pub type UGauge = Gauge<u64, AtomicU64>;

/// Process-wide metrics.
pub struct Metrics {
    registry: prometheus_client::registry::Registry,
    series: Arc<collect::Series>,
    pub(crate) in_flight: Gauge,
    /// Request-body bytes held in memory right now (the edge's buffer budget, `edge.rs`).
    pub(crate) buffered_body_bytes: Gauge,
    /// Tokens and cost by key, team, route and provider.
    pub spend: Arc<SpendMetrics>,
    pub config_generation: UGauge,
    pub config_reloads: Counter,
    pub config_reload_failures: Counter,
    /// Looks at the config source (file events and the periodic check).
    pub config_checks: Counter,
    pub config_loaded_unix: UGauge,
    /// Redis-mode policies and budgets counted per replica because there is no Redis.
    pub policies_counted_locally: UGauge,
    /// 1 while the operator's snapshot stream is up (`--operator`).
    pub operator_connected: UGauge,
    /// When the operator was last heard from (unix seconds; 0: never).
    pub operator_last_contact_unix: UGauge,
    /// Which requests also produce an access log line (`--access-log`).
    pub(crate) access_log: crate::access_log::Sampler,
    /// Trace spans lost because the export queue was full (a slow or absent collector).
    pub trace_spans_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(crate::access_log::Sampler::off(), true)
    }
}

impl Metrics {
    pub fn new(access_log: crate::access_log::Sampler, key_metrics: bool) -> Self {
        let operator_last_contact_unix = UGauge::default();
        let spend = Arc::new(SpendMetrics::new(key_metrics));
        let series = Arc::new(collect::Series {
            routes: Registry::default(),
            providers: Registry::default(),
            unrouted: Arc::default(),
            spend: spend.clone(),
            limits: ArcSwapOption::empty(),
            config_hash: ArcSwap::from_pointee(String::new()),
            operator_last_contact_unix: operator_last_contact_unix.clone(),
            backends: ArcSwapOption::empty(),
        });
        let metrics = Metrics {
            registry: prometheus_client::registry::Registry::default(),
            series,
            in_flight: Gauge::default(),
            buffered_body_bytes: Gauge::default(),
            spend,
            config_generation: UGauge::default(),
            config_reloads: Counter::default(),
            config_reload_failures: Counter::default(),
            config_checks: Counter::default(),
            config_loaded_unix: UGauge::default(),
            policies_counted_locally: UGauge::default(),
            operator_connected: UGauge::default(),
            operator_last_contact_unix,
            access_log,
            trace_spans_dropped: Counter::default(),
        };
        metrics.registered()
    }

    /// Registers the process-wide metrics (clones share the atomics) and the collector of
    /// the per-route, per-provider, spend and limit series.
    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "switchboard_in_flight_requests",
            "Requests being served right now",
            self.in_flight.clone(),
        );
        r.register(
            "switchboard_buffered_request_body_bytes",
            "Request-body bytes held in memory right now (bounded by --max-buffered-body-bytes)",
            self.buffered_body_bytes.clone(),
        );
        r.register(
            "switchboard_config_generation",
            "Generation of the config being served",
            self.config_generation.clone(),
        );
        r.register(
            "switchboard_config_loaded_timestamp_seconds",
            "When the served config was applied",
            self.config_loaded_unix.clone(),
        );
        r.register(
            "switchboard_config_reloads",
            "Configs applied after startup",
            self.config_reloads.clone(),
        );
        r.register(
            "switchboard_config_reload_failures",
            "Configs rejected; the previous one kept serving",
            self.config_reload_failures.clone(),
        );
        r.register(
            "switchboard_config_checks",
            "Looks at the config file (after a change event, or 5 s after the last look)",
            self.config_checks.clone(),
        );
        r.register(
            "switchboard_policies_counted_locally",
            "Redis-mode policies and budgets counted in this replica only, because it has no Redis",
            self.policies_counted_locally.clone(),
        );
        r.register(
            "switchboard_operator_connected",
            "1 while the operator's snapshot stream is up (with --operator)",
            self.operator_connected.clone(),
        );
        r.register(
            "switchboard_operator_last_contact_timestamp_seconds",
            "When the operator was last heard from (0: never)",
            self.operator_last_contact_unix.clone(),
        );
        r.register(
            "switchboard_trace_spans_dropped",
            "Trace spans dropped because the export queue was full (the collector is slow or down)",
            self.trace_spans_dropped.clone(),
        );
        r.register_collector(Box::new(self.series.clone()));
        self
    }

    /// The counters for `route`, created on first use. Called while compiling a config, never
    /// per request.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        self.series.routes.get(route)
    }

    /// The counters for a provider, created on first use; also only while compiling.
    pub fn provider(&self, provider: &str) -> Arc<ProviderMetrics> {
        self.series.providers.get(provider)
    }

    /// Drops the series of routes and providers the served config no longer has, so
    /// `/metrics` describes the current config (a removed route's counters would otherwise be
    /// exported forever).
    pub fn retain(&self, routes: &HashSet<&str>, providers: &HashSet<&str>) {
        self.series.routes.retain(routes);
        self.series.providers.retain(providers);
        for (_, route) in self.series.routes.sorted() {
            route.streams.retain(providers);
        }
    }

    pub fn unrouted(&self) -> Arc<RouteMetrics> {
        self.series.unrouted.clone()
    }

    pub fn config_applied(&self, generation: u64, hash: &str) {
        self.config_generation.set(generation);
        self.series.config_hash.store(Arc::new(hash.to_owned()));
        self.config_loaded_unix.set(crate::unix_now() as u64);
    }

    /// Gives `/metrics` the backends' circuits to report on.
    pub fn watch_backends(&self, backends: Arc<crate::table::BackendState>) {
        self.series.backends.store(Some(backends));
    }

    /// Gives `/metrics` the limits to report on.
    pub fn watch_limits(&self, limits: Arc<crate::limits::Limits>) {
        self.series.limits.store(Some(limits));
    }

    /// Renders the OpenMetrics text exposition ([`CONTENT_TYPE`]), `# EOF` included.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        // Writing to a String cannot fail, and no collector returns an error of its own.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
