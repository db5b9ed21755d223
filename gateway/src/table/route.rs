//! Backend selection for one route: weighted within a priority tier, fallback across tiers,
//! backends that keep failing last.

use super::health::{Health, now_ms};
use crate::limits::policy::{Policy, Price};
use crate::metrics::{ProviderMetrics, RouteMetrics};
use http::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use switchboard_llm::capability::Capabilities;

/// One way to serve a route: a provider and the model id it knows.
pub struct Backend {
    /// Index into the table's upstreams.
    pub upstream: usize,
    /// The model id sent upstream.
    pub model: Arc<str>,
    /// The provider's counters, shared by every backend that uses it.
    pub metrics: Arc<ProviderMetrics>,
    /// The provider's name as the `x-switchboard-provider` response header, built once (`None`
    /// for a name that is not a valid header value, e.g. non-ASCII).
    pub provider_header: Option<HeaderValue>,
    /// Shared with every table that has this upstream (see [`super::state`]).
    pub health: Arc<Health>,
    /// What this backend can do: its provider type's, narrowed by config.
    pub capabilities: Capabilities,
    /// What its tokens cost; `None`: nothing (no price configured).
    pub price: Option<Price>,
}

impl Backend {
    pub fn new(
        upstream: usize,
        model: Arc<str>,
        provider: &str,
        metrics: Arc<ProviderMetrics>,
        health: Arc<Health>,
        capabilities: Capabilities,
    ) -> Self {
        let provider_header = HeaderValue::from_str(provider).ok();
        Backend { upstream, model, metrics, provider_header, health, capabilities, price: None }
    }

    /// Records one attempt's outcome: `None` for success, `Some(retryable)` for a failure.
    /// Failures that are about the request, not the backend, leave its health alone.
    pub fn record(&self, failure: Option<bool>) {
        match failure {
            None => self.health.record_success(),
            Some(true) => {
                if self.health.record_failure(now_ms()) {
                    self.metrics.record_ejection();
                    tracing::warn!(model = %self.model, "backend ejected after repeated failures; trying it last for 5 s");
                }
            }
            Some(false) => {}
        }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("upstream", &self.upstream).field("model", &self.model).finish()
    }
}

/// Backends of the same priority, sharing traffic by weight.
#[derive(Debug)]
struct Tier {
    backends: Box<[Backend]>,
    /// Backend indices in smooth weighted round-robin order (weights 3:1 give a,a,b,a rather
    /// than a,a,a,b), precomputed so picking a backend is one atomic increment.
    schedule: Box<[u16]>,
    /// Kept across reloads with the tier's priority (see [`super::state`]).
    cursor: Arc<AtomicUsize>,
}

pub struct Route {
    pub model: Arc<str>,
    pub index: usize,
    pub metrics: Arc<RouteMetrics>,
    /// `max_tokens` for backends that need one when the client sent none.
    pub default_max_tokens: Option<u32>,
    /// The route's own policies, which every request on it faces.
    pub policies: Arc<[Arc<Policy>]>,
    /// The highest price of each token class among the backends: what a reservation assumes,
    /// since any backend may end up serving the request.
    pub reserve_price: Price,
    tiers: Box<[Tier]>,
    backend_count: usize,
}

/// The longest schedule kept per tier; larger weight sums are scaled down proportionally.
const MAX_SCHEDULE: u32 = 1024;

impl Route {
    /// `backends` are (priority, weight, backend), in config order; `cursor` gives the shared
    /// round-robin position of the tier with a given priority.
    pub fn new(
        model: &str,
        index: usize,
        metrics: Arc<RouteMetrics>,
        mut backends: Vec<(u32, u32, Backend)>,
        cursor: &mut dyn FnMut(u32) -> Arc<AtomicUsize>,
    ) -> Self {
        backends.sort_by_key(|(priority, _, _)| *priority);
        let backend_count = backends.len();
        let reserve_price =
            backends.iter().filter_map(|(_, _, b)| b.price).fold(Price::default(), Price::max);
        let mut tiers = Vec::new();
        let mut rest = backends.into_iter().peekable();
        while let Some((priority, weight, backend)) = rest.next() {
            let mut members = vec![(weight, backend)];
            while let Some((_, w, b)) = rest.next_if(|(p, _, _)| *p == priority) {
                members.push((w, b));
            }
            let weights: Vec<u32> = members.iter().map(|(w, _)| *w).collect();
            tiers.push(Tier {
                schedule: smooth_weighted_schedule(&weights),
                backends: members.into_iter().map(|(_, b)| b).collect(),
                cursor: cursor(priority),
            });
        }
        Route {
            model: Arc::from(model),
            index,
            metrics,
            default_max_tokens: None,
            policies: Arc::from([]),
            reserve_price,
            tiers: tiers.into_boxed_slice(),
            backend_count,
        }
    }

    /// The backends to try for one request, in order: the weighted pick of the first tier, the
    /// rest of that tier, then each fallback tier the same way; ejected backends (see
    /// [`Health`]) keep their relative order but go after every healthy one.
    pub fn attempts(&self) -> Vec<&Backend> {
        let mut order = Vec::with_capacity(self.backend_count);
        for tier in &self.tiers {
            let n = tier.backends.len();
            let first = if n == 1 {
                0
            } else {
                let slot = tier.cursor.fetch_add(1, Relaxed) % tier.schedule.len();
                usize::from(tier.schedule[slot])
            };
            order.extend((0..n).map(|i| &tier.backends[(first + i) % n]));
        }
        let now = now_ms();
        if order.iter().any(|b| b.health.is_ejected(now)) {
            order.sort_by_key(|b| b.health.is_ejected(now));
        }
        order
    }
}

fn smooth_weighted_schedule(weights: &[u32]) -> Box<[u16]> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let weights: Vec<i64> = if total > u64::from(MAX_SCHEDULE) {
        weights.iter().map(|&w| ((u64::from(w) * u64::from(MAX_SCHEDULE) / total).max(1)) as i64).collect()
    } else {
        let divisor = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
        weights.iter().map(|&w| i64::from(w / divisor)).collect()
    };
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        let (best, _) = current.iter().enumerate().max_by_key(|&(i, c)| (*c, -(i as i64))).unwrap_or((0, &0));
        current[best] -= total;
        schedule.push(best as u16);
    }
    schedule.into_boxed_slice()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(upstream: usize) -> Backend {
        Backend::new(upstream, Arc::from("m"), "p", Arc::default(), Arc::default(), Capabilities::default())
    }

    #[test]
    fn weights_share_traffic_smoothly() {
        assert_eq!(&*smooth_weighted_schedule(&[3, 1]), &[0, 0, 1, 0]);
        assert_eq!(&*smooth_weighted_schedule(&[20, 10]), &[0, 1, 0]);
        let big = smooth_weighted_schedule(&[10_000, 10_000, 1]);
        assert!(big.len() <= 1024 && big.contains(&2));
    }

    #[test]
    fn attempts_go_through_the_tier_then_the_fallbacks() {
        let route = Route::new(
            "r",
            0,
            Arc::default(),
            vec![(1, 1, backend(9)), (0, 3, backend(0)), (0, 1, backend(1))],
            &mut |_| Arc::default(),
        );
        let orders: Vec<Vec<usize>> =
            (0..4).map(|_| route.attempts().iter().map(|b| b.upstream).collect()).collect();
        assert_eq!(orders, vec![vec![0, 1, 9], vec![0, 1, 9], vec![1, 0, 9], vec![0, 1, 9]]);
    }
}
