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

use crate::access_log;
use crate::limits::policy::{Demand, Price};
use crate::limits::{Charge, Limits};
use crate::metrics::{ErrorType, Metrics, RouteMetrics, StreamMetrics};
use crate::spend::Labels;
use crate::telemetry::{RequestSpan, Settled};
use http::{HeaderValue, Method};
use std::sync::Arc;
use std::time::Instant;
use switchboard_llm::Usage;
use switchboard_llm::stream::StreamFailure;

pub struct Ledger {
    metrics: Arc<Metrics>,
    route_metrics: Arc<RouteMetrics>,
    status: u16,
    start: Instant,
    usage: Usage,
    /// Stream events relayed to the client.
    relayed: u64,
    /// When the first and the latest stream events were relayed.
    first_event: Option<Instant>,
    last_event: Option<Instant>,
    /// Backends tried: 0 until one is; forward.rs sets the count when it tries more.
    attempts: u32,
    /// What the client was answered with, when it was an error.
    error: Option<ErrorType>,
    /// The serving provider's latencies on this route.
    stream_metrics: Option<Arc<StreamMetrics>>,
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
    /// Only allocated when access logging is on.
    log: Option<Box<AccessLog>>,
    /// The request's trace span, only when tracing is on (ends when the ledger settles).
    trace: Option<Box<RequestSpan>>,
}

/// What one access log line says beyond the ledger's fields. Names only: the key's id, never
/// the key.
struct AccessLog {
    request_id: HeaderValue,
    method: Method,
    path: Box<str>,
    /// Whether the line is written if the request succeeds (errors always are).
    sampled: bool,
}

impl Ledger {
    /// Starts accounting for one request.
    pub fn open(metrics: &Arc<Metrics>, request_id: &HeaderValue, method: &Method, path: &str) -> Self {
        metrics.in_flight.inc();
        let log = metrics.access_log.enabled().then(|| {
            Box::new(AccessLog {
                request_id: request_id.clone(),
                method: method.clone(),
                path: path.into(),
                sampled: metrics.access_log.sample(),
            })
        });
        Ledger {
            metrics: metrics.clone(),
            route_metrics: metrics.unrouted(),
            status: 0,
            start: Instant::now(),
            usage: Usage::default(),
            relayed: 0,
            first_event: None,
            last_event: None,
            attempts: 0,
            error: None,
            stream_metrics: None,
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
            log,
            trace: None,
        }
    }

    pub fn trace(&mut self, span: Box<RequestSpan>) {
        self.trace = Some(span);
    }

    pub fn trace_mut(&mut self) -> Option<&mut RequestSpan> {
        self.trace.as_deref_mut()
    }

    /// A piece of the answer on its way to the client, for the trace.
    pub fn observe(&mut self, frame: &[u8]) {
        if let Some(trace) = &mut self.trace {
            trace.observe(frame);
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

    /// The backend that answered, what its tokens cost, and its latency series on this route.
    pub fn set_provider(
        &mut self,
        name: &Arc<str>,
        price: Option<Price>,
        stream_metrics: &Arc<StreamMetrics>,
    ) {
        self.provider = Some(name.clone());
        self.price = price;
        self.stream_metrics = Some(stream_metrics.clone());
        self.attempts = self.attempts.max(1);
    }

    /// How many backends this request tried (the one that answered included).
    pub fn set_attempts(&mut self, attempts: u32) {
        self.attempts = attempts;
    }

    /// The stream broke off after its first event: the client got an error event in-band.
    pub fn stream_failed(&mut self, failure: StreamFailure) {
        let error = match failure {
            StreamFailure::Stalled => ErrorType::UpstreamTimeout,
            StreamFailure::TimeLimit => ErrorType::Timeout,
            StreamFailure::BrokenOff => ErrorType::UpstreamUnreachable,
            StreamFailure::EventTooLarge | StreamFailure::InvalidFrame => ErrorType::UpstreamInvalidResponse,
        };
        self.set_error(error);
        if let Some(trace) = &mut self.trace {
            trace.failed(error.as_str());
        }
    }

    /// The error the client is answered with.
    pub fn set_error(&mut self, error: ErrorType) {
        self.error = Some(error);
        if error.is_upstream() {
            self.attempts = self.attempts.max(1);
        }
    }

    /// Takes over admission's charges; from now on they settle with this ledger.
    pub fn hold(&mut self, limits: &Arc<Limits>, charges: Vec<Charge>, reserved: Demand) {
        if !charges.is_empty() {
            self.limits = Some(limits.clone());
            self.charges = charges;
        }
        self.reserved = reserved;
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

    /// Counts stream events relayed to the client, and times them: the first one's delay is
    /// the time to first token, later ones the gaps between tokens (one clock read per
    /// upstream read that carried events; events read together are one gap).
    pub fn relayed(&mut self, events: u64) {
        if events == 0 {
            return;
        }
        self.relayed += events;
        let now = Instant::now();
        if let Some(metrics) = &self.stream_metrics {
            match self.last_event {
                None => metrics.first_token(now - self.start),
                Some(last) => metrics.between_tokens(now - last),
            }
        }
        self.first_event.get_or_insert(now);
        self.last_event = Some(now);
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
        self.metrics.in_flight.dec();
        let status = if self.finished || self.status != 200 { self.status } else { 499 };
        let elapsed = self.start.elapsed();
        self.route_metrics.record(status, elapsed, !self.finished, self.error);
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
        if let Some(trace) = self.trace.take() {
            trace.end(&Settled {
                status,
                usage: self.provider.as_ref().map(|_| &usage),
                route: self.route.as_deref(),
                key: self.key.as_deref(),
            });
        }
        if let Some(log) = self.log.take()
            && (log.sampled || status >= 400)
        {
            let millis = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            access_log::Line {
                ts_ms: crate::unix_now_ms(),
                request_id: log.request_id.to_str().unwrap_or("?"),
                method: log.method.as_str(),
                path: &log.path,
                key: self.key.as_deref(),
                team: self.team.as_deref(),
                route: self.route.as_deref(),
                provider: self.provider.as_deref(),
                attempts: self.attempts,
                status,
                error: self.error.map(ErrorType::as_str),
                tokens_in: usage.input,
                tokens_out: usage.output,
                cost_usd: cost as f64 / 1e9,
                latency_ms: millis(elapsed),
                ttft_ms: self.first_event.map(|first| millis(first - self.start)),
            }
            .write();
        }
    }
}
