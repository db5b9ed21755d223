//! The request ledger: the one place a request's accounting lives, from arrival to its last byte.
//!
//! It is created when the request arrives (counting it in flight), learns the key, route and
//! serving backend as the request path finds them, holds the limit charges admission made, and
//! receives usage only from the body (the relay sets the running total; a full reply sets it
//! once). It travels inside the response body, so it ends when the body does: after the last
//! byte, or when the client goes away. Then it settles, once: metrics, tokens and cost, and every
//! charge corrected from its reservation to what the request took.
//!
//! A request cut short (the client left mid-stream, or the upstream never reported usage) is
//! settled from what is known: the prompt estimate for the input, and at least one token per
//! stream event relayed for the output (providers stream about a token per event).

use crate::limits::policy::{Demand, Price};
use crate::limits::{Charge, Limits};
use crate::metrics::{Metrics, RouteMetrics};
use crate::spend::Labels;
use http::{HeaderValue, Method};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use switchboard_llm::Usage;

pub struct Ledger {
    metrics: Arc<Metrics>,
    route_metrics: Arc<RouteMetrics>,
    status: u16,
    start: Instant,
    usage: Usage,
    /// Stream events relayed to the client.
    relayed: u64,
    finished: bool,
    key: Option<Arc<str>>,
    team: Option<Arc<str>>,
    route: Option<Arc<str>>,
    provider: Option<Arc<str>>,
    /// The serving backend's prices.
    price: Option<Price>,
    /// What admission charged, to be settled.
    charges: Vec<Charge>,
    reserved: Demand,
    limits: Option<Arc<Limits>>,
    /// Estimated prompt tokens, for a request whose usage never arrived.
    prompt_estimate: u64,
    /// Upstream attempts made (retries included).
    attempts: u32,
    /// Only allocated when access logging is on.
    log: Option<Box<AccessLog>>,
}

/// What one access log line says beyond the ledger's fields. Names only: the key's id, never
/// the key.
struct AccessLog {
    request_id: HeaderValue,
    method: Method,
    path: Box<str>,
}

impl Ledger {
    /// Starts accounting for one request.
    pub fn open(metrics: &Arc<Metrics>, request_id: &HeaderValue, method: &Method, path: &str) -> Self {
        metrics.in_flight.fetch_add(1, Relaxed);
        let log = metrics.access_log.then(|| {
            Box::new(AccessLog { request_id: request_id.clone(), method: method.clone(), path: path.into() })
        });
        Ledger {
            metrics: metrics.clone(),
            route_metrics: metrics.unrouted(),
            status: 0,
            start: Instant::now(),
            usage: Usage::default(),
            relayed: 0,
            finished: false,
            key: None,
            team: None,
            route: None,
            provider: None,
            price: None,
            charges: Vec::new(),
            reserved: Demand::default(),
            limits: None,
            prompt_estimate: 0,
            attempts: 0,
            log,
        }
    }

    pub fn set_key(&mut self, id: &Arc<str>, team: Option<&Arc<str>>) {
        self.key = Some(id.clone());
        self.team = team.cloned();
    }

    pub fn set_route(&mut self, name: &Arc<str>, metrics: Arc<RouteMetrics>) {
        self.route = Some(name.clone());
        self.route_metrics = metrics;
    }

    /// The backend that answered, and what its tokens cost.
    pub fn set_provider(&mut self, name: &Arc<str>, price: Option<Price>) {
        self.provider = Some(name.clone());
        self.price = price;
    }

    /// Takes over admission's charges; from now on they settle with this ledger.
    pub fn hold(&mut self, limits: &Arc<Limits>, charges: Vec<Charge>, reserved: Demand) {
        if !charges.is_empty() {
            self.limits = Some(limits.clone());
            self.charges = charges;
        }
        self.reserved = reserved;
    }

    pub fn set_attempts(&mut self, attempts: u32) {
        self.attempts = attempts;
    }

    pub fn set_prompt_estimate(&mut self, tokens: u64) {
        self.prompt_estimate = tokens;
    }

    pub fn set_status(&mut self, status: u16) {
        self.status = status;
    }

    /// Records the request's usage so far (a running total: it replaces what was set before).
    pub fn set_usage(&mut self, usage: Usage) {
        self.usage = usage;
    }

    /// Counts stream events relayed to the client.
    pub fn relayed(&mut self, events: u64) {
        self.relayed += events;
    }

    /// The body reached its end; anything else at drop time means the client went away.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Usage as settled: what the provider reported, completed from what is known where the
    /// report is missing: a stream cut short (the provider reports its totals at the end), or
    /// a server that never reports usage.
    fn settled_usage(&self) -> Usage {
        let mut usage = self.usage;
        if self.provider.is_none() || self.status != 200 {
            return usage;
        }
        let unreported = usage == Usage::default();
        if unreported || !self.finished {
            if usage.input == 0 {
                usage.input = self.prompt_estimate;
            }
            usage.output = usage.output.max(self.relayed);
        }
        usage
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.metrics.in_flight.fetch_sub(1, Relaxed);
        let status = if self.finished || self.status != 200 { self.status } else { 499 };
        let elapsed = self.start.elapsed();
        self.route_metrics.record(status, elapsed, !self.finished);
        let usage = self.settled_usage();
        let cost = self.price.map_or(0, |price| price.cost_nano_usd(&usage));
        if let (Some(route), Some(provider)) = (&self.route, &self.provider) {
            let labels = Labels {
                key: self.key.clone(),
                team: self.team.clone(),
                route: route.clone(),
                provider: provider.clone(),
            };
            self.metrics.spend.record(&labels, &usage, cost);
        }
        if let Some(limits) = self.limits.take() {
            let actual =
                Demand { requests: 1, input: usage.input, output: usage.output, cost_nano_usd: cost };
            limits.settle(std::mem::take(&mut self.charges), &self.reserved, &actual);
        }
        if let Some(log) = self.log.take() {
            tracing::info!(
                target: "access",
                request_id = %log.request_id.to_str().unwrap_or("?"),
                method = %log.method,
                path = %log.path,
                route = %self.route.as_deref().unwrap_or("-"),
                key = %self.key.as_deref().unwrap_or("-"),
                provider = %self.provider.as_deref().unwrap_or("-"),
                status,
                attempts = self.attempts,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                tokens_in = usage.input,
                tokens_out = usage.output,
                cost_usd = cost as f64 / 1e9,
                "access"
            );
        }
    }
}
