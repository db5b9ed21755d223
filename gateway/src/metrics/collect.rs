//! The collector that writes the series resolved per config (routes, providers, spend) and
//! the limits' counters at scrape time, through prometheus-client's encoder.

use super::series::{ErrorType, OUTCOMES, RouteMetrics, STATUS_CODES, StreamMetrics};
use super::{ProviderMetrics, UGauge};
use crate::registry::Registry;
use crate::spend::SpendMetrics;
use arc_swap::{ArcSwap, ArcSwapOption};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt::Error;
use std::sync::Arc;

pub(super) struct Series {
    pub routes: Registry<RouteMetrics>,
    pub providers: Registry<ProviderMetrics>,
    pub unrouted: Arc<RouteMetrics>,
    pub spend: Arc<SpendMetrics>,
    /// Set with the gateway's limits, so `/metrics` can report them.
    pub limits: ArcSwapOption<crate::limits::Limits>,
    pub config_hash: ArcSwap<String>,
    pub operator_last_contact_unix: UGauge,
    /// Every backend's circuit (`table/health.rs`), kept across reloads.
    pub backends: ArcSwapOption<crate::table::BackendState>,
}

impl std::fmt::Debug for Series {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Series").finish_non_exhaustive()
    }
}

impl Collector for Series {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), Error> {
        let routes = self.routes.sorted();
        let all: Vec<(&str, &RouteMetrics)> =
            std::iter::once(("", &*self.unrouted)).chain(routes.iter().map(|(n, m)| (&**n, &**m))).collect();

        let mut family = encoder.encode_descriptor(
            "switchboard_requests",
            "API requests by public route and response status.",
            None,
            MetricType::Counter,
        )?;
        for (route, m) in &all {
            for (code, counter) in STATUS_CODES.iter().zip(&m.requests) {
                if counter.get() > 0 {
                    let status = if *code == 0 { "other".to_owned() } else { code.to_string() };
                    counter.encode(family.encode_family(&[("route", *route), ("status", &status)])?)?;
                }
            }
        }
        let mut family = encoder.encode_descriptor(
            "switchboard_request_duration_seconds",
            "Time from request received to the last response byte (streams included).",
            None,
            MetricType::Histogram,
        )?;
        for (route, m) in &all {
            m.duration.0.encode(family.encode_family(&[("route", *route)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "switchboard_errors",
            "Requests answered with an error, by route and the error's type (a fixed set; the route is empty for requests that never reached one).",
            None,
            MetricType::Counter,
        )?;
        for (route, m) in &all {
            for (kind, counter) in ErrorType::ALL.iter().zip(&m.errors) {
                if counter.get() > 0 {
                    counter.encode(family.encode_family(&[("route", *route), ("type", kind.as_str())])?)?;
                }
            }
        }
        let streams: Vec<_> = routes.iter().map(|(route, m)| (route, m.streams.sorted())).collect();
        stream_histogram(
            &mut encoder,
            "switchboard_time_to_first_token_seconds",
            "Streamed responses: time from request received to the first event relayed to the client.",
            &streams,
            |m| &m.first_token,
        )?;
        stream_histogram(
            &mut encoder,
            "switchboard_time_between_tokens_seconds",
            "Streamed responses: time between consecutive upstream reads that relayed events to the client.",
            &streams,
            |m| &m.between_tokens,
        )?;
        self.spend.encode(&mut encoder)?;
        let mut family = encoder.encode_descriptor(
            "switchboard_streams_aborted",
            "Responses whose client went away before the last byte.",
            None,
            MetricType::Counter,
        )?;
        for (route, m) in all.iter().skip(1) {
            m.streams_aborted.encode(family.encode_family(&[("route", *route)])?)?;
        }
        let providers = self.providers.sorted();
        let mut family = encoder.encode_descriptor(
            "switchboard_upstream_requests",
            "Calls to providers by outcome, including attempts a fallback recovered from.",
            None,
            MetricType::Counter,
        )?;
        for (provider, m) in &providers {
            for (outcome, counter) in OUTCOMES.iter().zip(&m.outcomes) {
                counter.encode(family.encode_family(&[("provider", &**provider), ("outcome", outcome)])?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "switchboard_backend_ejections",
            "Times a backend of this provider was moved to the back after repeated failures.",
            None,
            MetricType::Counter,
        )?;
        for (provider, m) in &providers {
            m.ejections.encode(family.encode_family(&[("provider", &**provider)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "switchboard_retries",
            "Retries of failed attempts by route: made, or refused by the route's retry budget.",
            None,
            MetricType::Counter,
        )?;
        for (route, m) in all.iter().skip(1) {
            m.retries.encode(family.encode_family(&[("route", *route), ("outcome", "retried")])?)?;
            m.retries_refused
                .encode(family.encode_family(&[("route", *route), ("outcome", "budget_exhausted")])?)?;
        }
        if let Some(backends) = self.backends.load_full() {
            encode_circuits(&mut encoder, &backends)?;
        }
        let hash = self.config_hash.load();
        encoder
            .encode_descriptor(
                "switchboard_config",
                "The config being served, by fingerprint.",
                None,
                MetricType::Info,
            )?
            .encode_info(&[("hash", hash.as_str())])?;
        let last_contact = self.operator_last_contact_unix.get();
        if last_contact > 0 {
            gauge(
                &mut encoder,
                "switchboard_operator_seconds_since_contact",
                "Seconds since the operator was last heard from (a replica keeps serving meanwhile).",
                (crate::unix_now() as u64).saturating_sub(last_contact),
            )?;
        }
        if let Some(limits) = self.limits.load_full() {
            encode_limits(&mut encoder, &limits)?;
        }
        Ok(())
    }
}

/// Per backend (provider and upstream model): 1 for its circuit's state, 0 for the others, and
/// how often it opened.
fn encode_circuits(
    encoder: &mut DescriptorEncoder,
    backends: &crate::table::BackendState,
) -> Result<(), Error> {
    use crate::table::CircuitState;
    let now = crate::table::now_ms();
    let mut states = Vec::new();
    backends.each_health(|provider, model, health| {
        states.push((provider.to_owned(), model.to_owned(), health.state(now), health.opened_total()));
    });
    let mut family = encoder.encode_descriptor(
        "switchboard_backend_circuit_state",
        "Circuit breaker state per backend: 1 for the current state (closed, open, half_open).",
        None,
        MetricType::Gauge,
    )?;
    for (provider, model, state, _) in &states {
        for candidate in [CircuitState::Closed, CircuitState::Open, CircuitState::HalfOpen] {
            let labels =
                [("provider", provider.as_str()), ("backend", model.as_str()), ("state", candidate.as_str())];
            ConstGauge::new(i64::from(*state == candidate)).encode(family.encode_family(&labels)?)?;
        }
    }
    let mut family = encoder.encode_descriptor(
        "switchboard_backend_circuit_openings",
        "Times a backend's circuit opened (repeated failures, an error rate, or a failed probe).",
        None,
        MetricType::Counter,
    )?;
    for (provider, model, _, opened) in &states {
        let labels = [("provider", provider.as_str()), ("backend", model.as_str())];
        ConstCounter::new(*opened).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_limits(encoder: &mut DescriptorEncoder, limits: &crate::limits::Limits) -> Result<(), Error> {
    use std::sync::atomic::Ordering::Relaxed;
    counter(
        encoder,
        "switchboard_rate_limited",
        "Requests refused by a rate limit, concurrency limit or budget (429), or because Redis was unreachable and the policy fails closed (503).",
        limits.refused.load(Relaxed),
    )?;
    counter(
        encoder,
        "switchboard_limits_unenforced",
        "Requests let through uncounted because Redis was unreachable and the policy fails open.",
        limits.unenforced.load(Relaxed),
    )?;
    gauge(
        encoder,
        "switchboard_limit_counters_local",
        "Counters of local limits held in this replica's memory (one per policy and key, team or route).",
        limits.local_subjects() as u64,
    )?;
    if let Some(redis) = limits.redis() {
        gauge(
            encoder,
            "switchboard_redis_up",
            "1 while the last Redis call succeeded.",
            u64::from(redis.is_up()),
        )?;
        let mut family = encoder.encode_descriptor(
            "switchboard_redis_errors",
            "Redis calls that failed or timed out, by operation.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(redis.admit_errors()).encode(family.encode_family(&[("op", "admit")])?)?;
        ConstCounter::new(redis.settle_errors()).encode(family.encode_family(&[("op", "settle")])?)?;
        let family = encoder.encode_descriptor(
            "switchboard_redis_admission_duration_seconds",
            "Admission calls to Redis (one round trip each, failures included), as the request waited for them.",
            None,
            MetricType::Histogram,
        )?;
        redis.admit_latency().encode(family)?;
        counter(
            encoder,
            "switchboard_redis_settlements_dropped",
            "Settlements dropped because the queue to Redis was full.",
            redis.settle_dropped(),
        )?;
    }
    Ok(())
}

/// One unlabelled counter read from state kept elsewhere (`name` without `_total`).
fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// Each route's stream metrics per provider, sorted by route and provider.
type RouteStreams<'a> = [(&'a Arc<str>, Vec<(Arc<str>, Arc<StreamMetrics>)>)];

/// One of each route's per-provider stream histograms (`histogram` picks it), labelled by both.
fn stream_histogram<H: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    streams: &RouteStreams<'_>,
    histogram: impl Fn(&StreamMetrics) -> &H,
) -> Result<(), Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (route, per_provider) in streams {
        for (provider, m) in per_provider {
            let labels = [("route", &***route), ("provider", &**provider)];
            histogram(m).encode(family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// One unlabelled gauge read from state kept elsewhere.
fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}
