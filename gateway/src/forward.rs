//! Forwarding, shared by every API: the route's backends tried in order until one answers, with
//! retries, time limits and each backend's circuit, and the answer turned into the client's
//! response.

use crate::admission::Admitted;
use crate::body::{GatewayBody, StartFailure};
use crate::error::{GatewayError, UpstreamError, UpstreamErrorKind};
use crate::inbound::Inbound;
use crate::ledger::Ledger;
use crate::limits::reply;
use crate::table::{Admission, Backend, Health, Route, RoutingTable, now_ms};
use crate::telemetry::Attempt;
use crate::upstream::{Call, Reply};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Sends `request` to the admitted route's backends until one answers: the first available
/// backend in the route's order (`Route::attempts`), then, on a failure that is the backend's
/// (connection, timeout, 429, 5xx; never another 4xx), the next, as far as the route's
/// `max_attempts` and its retry budget allow. A stream counts as answered at its first event:
/// until then the client has received nothing and a failure can still move on.
///
/// Backends whose circuit is open or that are cooling down are a last resort, tried only after
/// every available one failed: retries are paid from the route's budget, so an outage costs its
/// providers at most that.
pub async fn forward(
    table: &RoutingTable,
    admitted: Admitted<'_>,
    request: &Inbound<'_>,
    request_id: &HeaderValue,
    deadline: Duration,
    ledger: &mut Ledger,
) -> Result<Response<GatewayBody>, GatewayError> {
    let route = admitted.route;
    let limit = route.timeouts.total_ms.map_or(deadline, |ms| deadline.min(Duration::from_millis(ms)));
    let give_up_at = Instant::now() + limit;
    let now = now_ms();
    route.retry_budget.deposit(now);
    let needs = request.needs();
    let mut lacking = None;
    let attempts = route.attempts(now);
    let mut capable = attempts.order;
    let mut available = 0;
    let mut position = 0;
    // In place: the order's own allocation is the only one a request makes here.
    capable.retain(|backend| {
        let was_available = position < attempts.available;
        position += 1;
        // Not tried at all: the backend would refuse it with an error that rarely says why.
        if let Some(capability) = backend.capabilities.missing(&needs) {
            lacking.get_or_insert(capability);
            return false;
        }
        available += usize::from(was_available);
        true
    });
    let max_attempts = route.retry.max_attempts as usize;
    let mut last_error: Option<UpstreamError> = None;
    let mut tried = 0;
    // The backends in order, round again while attempts remain. Those that were unavailable
    // when the order was made come last: they are tried only after every available one failed
    // (a backend that recovered while its circuit is open can still save the request), each
    // retry paid from the budget. One that became unavailable since (its circuit opened, its
    // probe taken by another request) is passed by without counting as an attempt.
    for (position, backend) in capable.iter().enumerate().cycle().take(max_attempts + capable.len()) {
        if tried == max_attempts {
            break;
        }
        let probe = match backend.health.admit(now_ms()) {
            Admission::Pass => false,
            Admission::Probe => true,
            Admission::Refused if position >= available => false,
            Admission::Refused => continue,
        };
        if tried > 0 {
            let granted = route.retry_budget.withdraw(now_ms(), &route.retry);
            route.metrics.record_retry(granted);
            if !granted {
                tracing::debug!(route = %route.model, "retry budget spent; not retrying");
                break;
            }
        }
        tried += 1;
        ledger.set_attempts(tried as u32);
        // The attempt's span (when tracing), whose context goes upstream in `traceparent`.
        let span = ledger.trace_mut().map(|trace| trace.attempt(&backend.span_attributes, &backend.model));
        let call = Call {
            api: request.api(),
            model: &backend.model,
            request_id,
            default_max_tokens: route.default_max_tokens,
            client: request.client(),
            trace: span.as_ref().map(Attempt::trace_headers),
        };
        let outcome = attempt(table, route, backend, call, request, give_up_at, probe).await;
        if let (Some(span), Some(trace)) = (span, ledger.trace_mut()) {
            let deadline;
            let ended = match &outcome {
                Ok(_) => Ok(()),
                Err(Failure::Upstream(err)) => Err(err),
                Err(Failure::Deadline) => {
                    let provider = table.upstreams[backend.upstream].name().clone();
                    deadline = UpstreamError { provider, kind: UpstreamErrorKind::Timeout(limit) };
                    Err(&deadline)
                }
            };
            trace.attempted(span, &backend.span_attributes, ended);
        }
        match outcome {
            Ok(reply) => {
                let upstream = &table.upstreams[backend.upstream];
                ledger.set_provider(upstream.name(), backend.price, &backend.stream_metrics);
                let mut response = respond(reply, backend.provider_header.as_ref(), ledger);
                reply::write(&admitted.headroom, response.headers_mut());
                return Ok(response);
            }
            Err(Failure::Deadline) => return Err(GatewayError::DeadlineExceeded { deadline: limit }),
            Err(Failure::Upstream(err)) if err.is_retryable() => {
                tracing::debug!(route = %route.model, error = %err, "attempt failed; trying again where allowed");
                last_error = Some(err);
            }
            Err(Failure::Upstream(err)) => return Err(err.into()),
        }
    }
    // A route always has at least one backend (validated), so there is an error to report:
    // the last attempt's failure, or what every backend lacked.
    Err(match (last_error, lacking) {
        (Some(err), _) => GatewayError::Upstream(err),
        (None, Some(capability)) => {
            GatewayError::Unsupported { model: request.model().to_owned(), capability }
        }
        (None, None) => GatewayError::NotReady,
    })
}

enum Failure {
    /// The request's own deadline passed: no more attempts.
    Deadline,
    Upstream(UpstreamError),
}

/// One attempt at `backend`, its outcome recorded in the backend's health and metrics.
async fn attempt(
    table: &RoutingTable,
    route: &Route,
    backend: &Backend,
    call: Call<'_>,
    request: &Inbound<'_>,
    give_up_at: Instant,
    probe: bool,
) -> Result<Reply, Failure> {
    let upstream = &table.upstreams[backend.upstream];
    let started = Instant::now();
    // The provider's limit on the whole attempt, if it has one, and the request's.
    let attempt_by = upstream.total_timeout().map_or(give_up_at, |total| give_up_at.min(started + total));
    let first_byte_by = match route.timeouts.first_byte_ms {
        Some(ms) => attempt_by.min(started + Duration::from_millis(ms)),
        None => attempt_by,
    };
    let mut guard = InFlight::start(&backend.health, probe);
    let outcome = match timeout_at(first_byte_by, upstream.send(call, request)).await {
        Ok(Ok(Reply::Stream(mut relay))) => {
            if let Some(ms) = route.timeouts.idle_ms {
                relay.tighten_idle_timeout(Duration::from_millis(ms));
            }
            // Until the first event the provider's own limit applies too (it bounds silence).
            let first_event_by = first_byte_by.min(Instant::now() + relay.idle_timeout());
            match timeout_at(first_event_by, relay.prime()).await {
                Ok(Ok(())) => {
                    if route.timeouts.total_ms.is_some() || attempt_by < give_up_at {
                        relay.end_by(attempt_by);
                    }
                    Ok(Reply::Stream(relay))
                }
                Ok(Err(StartFailure(reason))) => Err(UpstreamError {
                    provider: upstream.name().clone(),
                    kind: UpstreamErrorKind::Connect(reason),
                }),
                Err(_) if first_event_by == give_up_at => {
                    guard.finish();
                    return Err(Failure::Deadline);
                }
                Err(_) => Err(timed_out(upstream.name(), started)),
            }
        }
        Ok(outcome) => outcome,
        Err(_) if first_byte_by == give_up_at => {
            guard.finish();
            return Err(Failure::Deadline);
        }
        Err(_) => Err(timed_out(upstream.name(), started)),
    };
    guard.finish();
    let elapsed = started.elapsed();
    backend.metrics.record(outcome.as_ref().map(|_| ()));
    let now = now_ms();
    match &outcome {
        Ok(_) => backend.health.record_success(now, elapsed),
        Err(err) if err.is_retryable() => {
            if let Some(wait) = err.retry_after() {
                // The provider said when to come back: not the backend failing.
                backend.health.cool_down(now, wait);
                if probe {
                    backend.health.release_probe();
                }
            } else if backend.health.record_failure(now, elapsed, probe) {
                backend.metrics.record_ejection();
                tracing::warn!(
                    provider = %upstream.name(), model = %backend.model,
                    open_ms = backend.health.open_left_ms(now),
                    "circuit opened: the backend keeps failing"
                );
            }
        }
        // About the request, not the backend.
        Err(_) if probe => backend.health.release_probe(),
        Err(_) => {}
    }
    outcome.map_err(Failure::Upstream)
}

fn timed_out(provider: &std::sync::Arc<str>, started: Instant) -> UpstreamError {
    UpstreamError { provider: provider.clone(), kind: UpstreamErrorKind::Timeout(started.elapsed()) }
}

/// Counts an attempt in flight (the load score of latency-aware balancing) and, for a probe
/// whose request is dropped before it ends (the client left), hands the probe back.
struct InFlight<'a> {
    health: &'a Health,
    probe: bool,
    finished: bool,
}

impl<'a> InFlight<'a> {
    fn start(health: &'a Health, probe: bool) -> Self {
        health.start_attempt();
        InFlight { health, probe, finished: false }
    }

    fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.health.end_attempt();
        if self.probe && !self.finished {
            self.health.release_probe();
        }
    }
}

fn respond(
    reply: Reply,
    provider_header: Option<&HeaderValue>,
    ledger: &mut Ledger,
) -> Response<GatewayBody> {
    let (body, content_type) = match reply {
        Reply::Full { body, usage } => {
            ledger.set_usage(usage);
            (GatewayBody::full(body), APPLICATION_JSON.clone())
        }
        Reply::Stream(relay) => (GatewayBody::relay(relay), HeaderValue::from_static("text/event-stream")),
    };
    let streaming = content_type != APPLICATION_JSON;
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, content_type);
    if streaming {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Some(value) = provider_header {
        headers.insert("x-switchboard-provider", value.clone());
    }
    response
}
