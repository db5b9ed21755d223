//! What the admin port's `/backends` shows: each route's backends in priority order with their
//! circuit, cooldown, error-rate window and latency average, and the route's retry budget. For
//! people and scripts finding out why traffic goes where it goes; names and numbers only.

use super::RoutingTable;
use super::health::CircuitState;
use super::window::WINDOW_SECS;
use serde::Serialize;
use switchboard_config::Balancing;

#[derive(Serialize)]
struct Report<'a> {
    generation: u64,
    window_seconds: usize,
    routes: Vec<RouteReport<'a>>,
}

#[derive(Serialize)]
struct RouteReport<'a> {
    model: &'a str,
    balancing: Balancing,
    max_attempts: u32,
    /// Requests and retries over the window.
    requests: u64,
    retries: u64,
    backends: Vec<BackendReport<'a>>,
}

#[derive(Serialize)]
struct BackendReport<'a> {
    provider: &'a str,
    model: &'a str,
    priority: u32,
    circuit: &'static str,
    /// Until an open circuit lets a probe through.
    open_ms_left: u64,
    /// Until a `Retry-After` is over.
    cooldown_ms_left: u64,
    consecutive_failures: u32,
    window_attempts: u64,
    window_failures: u64,
    /// The peak-sensitive latency average (0: not measured yet).
    latency_ms: f64,
    in_flight: u32,
    circuit_openings: u64,
}

/// The report as JSON.
pub fn backends_json(table: &RoutingTable, now_ms: u64) -> Vec<u8> {
    let routes = table
        .routes
        .iter()
        .map(|route| {
            let (requests, retries) = route.retry_budget.sums(now_ms);
            let backends = route
                .backends()
                .map(|(priority, backend)| {
                    let health = &backend.health;
                    let (window_attempts, window_failures) = health.window_counts(now_ms);
                    BackendReport {
                        provider: table.upstreams[backend.upstream].name(),
                        model: &backend.model,
                        priority,
                        circuit: health.state(now_ms).as_str(),
                        open_ms_left: match health.state(now_ms) {
                            CircuitState::Open => health.open_left_ms(now_ms),
                            _ => 0,
                        },
                        cooldown_ms_left: health.cooldown_left_ms(now_ms),
                        consecutive_failures: health.consecutive_failures(),
                        window_attempts,
                        window_failures,
                        latency_ms: (health.latency_us() / 10.0).round() / 100.0,
                        in_flight: health.in_flight(),
                        circuit_openings: health.opened_total(),
                    }
                })
                .collect();
            RouteReport {
                model: &route.model,
                balancing: route.balancing(),
                max_attempts: route.retry.max_attempts,
                requests,
                retries,
                backends,
            }
        })
        .collect();
    let report = Report { generation: table.generation, window_seconds: WINDOW_SECS, routes };
    serde_json::to_vec_pretty(&report).unwrap_or_default()
}
