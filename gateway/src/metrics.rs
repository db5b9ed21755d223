//! Prometheus metrics, lock-free on the request path.
//!
//! Per-route counters live in [`RouteMetrics`], created when a config is compiled and shared by
//! every table that has the route, so counts survive reloads. A request only touches atomics.
//! Label cardinality is bounded by config: requests for unknown models count under `route=""`.

use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::registry::Registry;
use crate::spend::SpendMetrics;
use arc_swap::ArcSwap;
use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

/// Status codes counted with their own label; anything else counts as `other`.
const STATUS_CODES: [u16; 15] = [200, 400, 401, 403, 404, 405, 408, 413, 429, 499, 500, 502, 503, 504, 0];

/// Latency histogram bounds in seconds (upper bounds; `+Inf` is implied).
const LATENCY_BOUNDS: [f64; 17] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Counters for one public route.
#[derive(Default)]
pub struct RouteMetrics {
    requests: [AtomicU64; STATUS_CODES.len()],
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    latency_sum_micros: AtomicU64,
    streams_aborted: AtomicU64,
}

impl RouteMetrics {
    pub(crate) fn record(&self, status: u16, elapsed: Duration, aborted: bool) {
        let slot = STATUS_CODES.iter().position(|&s| s == status).unwrap_or(STATUS_CODES.len() - 1);
        self.requests[slot].fetch_add(1, Relaxed);
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BOUNDS.iter().position(|&b| secs <= b).unwrap_or(LATENCY_BOUNDS.len());
        self.latency_buckets[bucket].fetch_add(1, Relaxed);
        self.latency_sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
        if aborted {
            self.streams_aborted.fetch_add(1, Relaxed);
        }
    }
}

/// Outcomes of calls to a provider, in label order.
const OUTCOMES: [&str; 7] =
    ["ok", "bad_request", "status_4xx", "status_429", "status_5xx", "timeout", "connect_error"];

/// Counters for one provider: every attempt, including those a fallback recovered from.
#[derive(Default)]
pub struct ProviderMetrics {
    outcomes: [AtomicU64; OUTCOMES.len()],
    ejections: AtomicU64,
}

impl ProviderMetrics {
    pub fn record_ejection(&self) {
        self.ejections.fetch_add(1, Relaxed);
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
        self.outcomes[slot].fetch_add(1, Relaxed);
    }
}

/// Process-wide metrics.
pub struct Metrics {
    routes: Registry<RouteMetrics>,
    providers: Registry<ProviderMetrics>,
    unrouted: Arc<RouteMetrics>,
    pub(crate) in_flight: AtomicI64,
    /// Request-body bytes held in memory right now (the edge's buffer budget, `edge.rs`).
    pub(crate) buffered_body_bytes: AtomicUsize,
    /// Tokens and cost by key, team, route and provider.
    pub spend: SpendMetrics,
    /// Set with the gateway's limits, so `/metrics` can report them.
    limits: arc_swap::ArcSwapOption<crate::limits::Limits>,
    pub config_generation: AtomicU64,
    pub config_reloads: AtomicU64,
    pub config_reload_failures: AtomicU64,
    /// Looks at the config source (file events and the periodic check).
    pub config_checks: AtomicU64,
    pub config_loaded_unix: AtomicU64,
    /// Redis-mode policies and budgets counted per replica because there is no Redis.
    pub policies_counted_locally: AtomicU64,
    /// 1 while the operator's snapshot stream is up (`--operator`).
    pub operator_connected: AtomicU64,
    /// When the operator was last heard from (unix seconds; 0: never).
    pub operator_last_contact_unix: AtomicU64,
    config_hash: ArcSwap<String>,
    /// Whether every request also produces an access log line (`--access-log`).
    pub(crate) access_log: bool,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(false, true)
    }
}

impl Metrics {
    pub fn new(access_log: bool, key_metrics: bool) -> Self {
        Metrics {
            access_log,
            spend: SpendMetrics::new(key_metrics),
            limits: Default::default(),
            routes: Registry::default(),
            providers: Registry::default(),
            unrouted: Arc::default(),
            in_flight: AtomicI64::new(0),
            buffered_body_bytes: AtomicUsize::new(0),
            config_generation: AtomicU64::new(0),
            config_reloads: AtomicU64::new(0),
            config_reload_failures: AtomicU64::new(0),
            config_checks: AtomicU64::new(0),
            config_loaded_unix: AtomicU64::new(0),
            policies_counted_locally: AtomicU64::new(0),
            operator_connected: AtomicU64::new(0),
            operator_last_contact_unix: AtomicU64::new(0),
            config_hash: ArcSwap::from_pointee(String::new()),
        }
    }

    /// The counters for `route`, created on first use. Called while compiling a config, never
    /// per request.
    pub fn route(&self, route: &str) -> Arc<RouteMetrics> {
        self.routes.get(route)
    }

    /// The counters for a provider, created on first use; also only while compiling.
    pub fn provider(&self, provider: &str) -> Arc<ProviderMetrics> {
        self.providers.get(provider)
    }

    /// Drops the series of routes and providers the served config no longer has, so
    /// `/metrics` describes the current config (a removed route's counters would otherwise be
    /// exported forever).
    pub fn retain(&self, routes: &HashSet<&str>, providers: &HashSet<&str>) {
        self.routes.retain(routes);
        self.providers.retain(providers);
    }

    pub fn unrouted(&self) -> Arc<RouteMetrics> {
        self.unrouted.clone()
    }

    pub fn config_applied(&self, generation: u64, hash: &str) {
        self.config_generation.store(generation, Relaxed);
        self.config_hash.store(Arc::new(hash.to_owned()));
        self.config_loaded_unix.store(crate::unix_now() as u64, Relaxed);
    }

    /// Gives `/metrics` the limits to report on.
    pub fn watch_limits(&self, limits: Arc<crate::limits::Limits>) {
        self.limits.store(Some(limits));
    }

    /// Renders the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let routes = self.routes.sorted();
        let all: Vec<(&str, &RouteMetrics)> =
            std::iter::once(("", &*self.unrouted)).chain(routes.iter().map(|(n, m)| (&**n, &**m))).collect();

        header(
            &mut out,
            "switchboard_requests_total",
            "counter",
            "API requests by public route and response status.",
        );
        for (route, m) in &all {
            for (i, code) in STATUS_CODES.iter().enumerate() {
                let n = m.requests[i].load(Relaxed);
                if n > 0 {
                    let status = if *code == 0 { "other".to_owned() } else { code.to_string() };
                    let _ = writeln!(
                        out,
                        "switchboard_requests_total{{route=\"{}\",status=\"{status}\"}} {n}",
                        escape(route)
                    );
                }
            }
        }
        header(
            &mut out,
            "switchboard_request_duration_seconds",
            "histogram",
            "Time from request received to the last response byte (streams included).",
        );
        for (route, m) in &all {
            let mut cumulative = 0;
            let route = escape(route);
            for (i, bound) in LATENCY_BOUNDS.iter().enumerate() {
                cumulative += m.latency_buckets[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "switchboard_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += m.latency_buckets[LATENCY_BOUNDS.len()].load(Relaxed);
            let sum = m.latency_sum_micros.load(Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "switchboard_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(out, "switchboard_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ =
                writeln!(out, "switchboard_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}");
        }
        self.spend.render(&mut out);
        header(
            &mut out,
            "switchboard_streams_aborted_total",
            "counter",
            "Responses whose client went away before the last byte.",
        );
        for (route, m) in all.iter().skip(1) {
            let _ = writeln!(
                out,
                "switchboard_streams_aborted_total{{route=\"{}\"}} {}",
                escape(route),
                m.streams_aborted.load(Relaxed)
            );
        }
        header(
            &mut out,
            "switchboard_upstream_requests_total",
            "counter",
            "Calls to providers by outcome, including attempts a fallback recovered from.",
        );
        for (provider, m) in self.providers.sorted() {
            for (i, outcome) in OUTCOMES.iter().enumerate() {
                let n = m.outcomes[i].load(Relaxed);
                let _ = writeln!(
                    out,
                    "switchboard_upstream_requests_total{{provider=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(&provider)
                );
            }
        }
        header(
            &mut out,
            "switchboard_backend_ejections_total",
            "counter",
            "Times a backend of this provider was moved to the back after repeated failures.",
        );
        for (provider, m) in self.providers.sorted() {
            let _ = writeln!(
                out,
                "switchboard_backend_ejections_total{{provider=\"{}\"}} {}",
                escape(&provider),
                m.ejections.load(Relaxed)
            );
        }
        let load = |counter: &AtomicU64| counter.load(Relaxed);
        scalar(
            &mut out,
            "switchboard_in_flight_requests",
            "gauge",
            "Requests being served right now.",
            self.in_flight.load(Relaxed),
        );
        scalar(
            &mut out,
            "switchboard_buffered_request_body_bytes",
            "gauge",
            "Request-body bytes held in memory right now (bounded by --max-buffered-body-bytes).",
            self.buffered_body_bytes.load(Relaxed),
        );
        scalar(
            &mut out,
            "switchboard_config_generation",
            "gauge",
            "Generation of the config being served.",
            load(&self.config_generation),
        );
        header(&mut out, "switchboard_config_info", "gauge", "The config being served, by fingerprint.");
        let _ = writeln!(out, "switchboard_config_info{{hash=\"{}\"}} 1", escape(&self.config_hash.load()));
        scalar(
            &mut out,
            "switchboard_config_loaded_timestamp_seconds",
            "gauge",
            "When the served config was applied.",
            load(&self.config_loaded_unix),
        );
        scalar(
            &mut out,
            "switchboard_config_reloads_total",
            "counter",
            "Configs applied after startup.",
            load(&self.config_reloads),
        );
        scalar(
            &mut out,
            "switchboard_config_reload_failures_total",
            "counter",
            "Configs rejected; the previous one kept serving.",
            load(&self.config_reload_failures),
        );
        scalar(
            &mut out,
            "switchboard_config_checks_total",
            "counter",
            "Looks at the config file (after a change event, or 5 s after the last look).",
            load(&self.config_checks),
        );
        scalar(
            &mut out,
            "switchboard_policies_counted_locally",
            "gauge",
            "Redis-mode policies and budgets counted in this replica only, because it has no Redis.",
            load(&self.policies_counted_locally),
        );
        scalar(
            &mut out,
            "switchboard_operator_connected",
            "gauge",
            "1 while the operator's snapshot stream is up (with --operator).",
            load(&self.operator_connected),
        );
        scalar(
            &mut out,
            "switchboard_operator_last_contact_timestamp_seconds",
            "gauge",
            "When the operator was last heard from (0: never).",
            load(&self.operator_last_contact_unix),
        );
        let last_contact = load(&self.operator_last_contact_unix);
        if last_contact > 0 {
            scalar(
                &mut out,
                "switchboard_operator_seconds_since_contact",
                "gauge",
                "Seconds since the operator was last heard from (a replica keeps serving meanwhile).",
                (crate::unix_now() as u64).saturating_sub(last_contact),
            );
        }
        if let Some(limits) = self.limits.load_full() {
            render_limits(&mut out, &limits);
        }
        out
    }
}

fn render_limits(out: &mut String, limits: &crate::limits::Limits) {
    scalar(
        out,
        "switchboard_rate_limited_total",
        "counter",
        "Requests refused by a rate limit, concurrency limit or budget (429), or because Redis was unreachable and the policy fails closed (503).",
        limits.refused.load(Relaxed),
    );
    scalar(
        out,
        "switchboard_limits_unenforced_total",
        "counter",
        "Requests let through uncounted because Redis was unreachable and the policy fails open.",
        limits.unenforced.load(Relaxed),
    );
    scalar(
        out,
        "switchboard_limit_counters_local",
        "gauge",
        "Counters of local limits held in this replica's memory (one per policy and key, team or route).",
        limits.local_subjects(),
    );
    if let Some(redis) = limits.redis() {
        scalar(
            out,
            "switchboard_redis_up",
            "gauge",
            "1 while the last Redis call succeeded.",
            u8::from(redis.is_up()),
        );
        header(
            out,
            "switchboard_redis_errors_total",
            "counter",
            "Redis calls that failed or timed out, by operation.",
        );
        let _ = writeln!(out, "switchboard_redis_errors_total{{op=\"admit\"}} {}", redis.admit_errors());
        let _ = writeln!(out, "switchboard_redis_errors_total{{op=\"settle\"}} {}", redis.settle_errors());
        scalar(
            out,
            "switchboard_redis_settlements_dropped_total",
            "counter",
            "Settlements dropped because the queue to Redis was full.",
            redis.settle_dropped(),
        );
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One unlabelled series with its HELP and TYPE lines.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

pub(crate) fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
