//! Backend selection for one route: weighted (or latency-aware) within a priority tier, the
//! next tier only after every available backend of the one before, backends whose circuit is
//! open or that asked to be left alone (`Retry-After`) last.

use super::health::Health;
use super::retry::{RetryBudget, RetryRule};
use crate::limits::policy::{Policy, Price};
use crate::metrics::{ProviderMetrics, RouteMetrics, StreamMetrics};
use crate::telemetry::BackendAttributes;
use http::HeaderValue;
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use switchboard_config::{Balancing, RouteTimeouts};
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
    /// Its provider's stream latencies on this route (set by the compile).
    pub stream_metrics: Arc<StreamMetrics>,
    /// What its spans always say, encoded once (set by the compile).
    pub span_attributes: BackendAttributes,
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
        Backend {
            upstream,
            model,
            metrics,
            provider_header,
            health,
            capabilities,
            price: None,
            stream_metrics: Arc::default(),
            span_attributes: BackendAttributes::default(),
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
    priority: u32,
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
    /// How many attempts a request gets, and the budget retries come out of.
    pub retry: RetryRule,
    pub retry_budget: Arc<RetryBudget>,
    /// The route's own time limits, where it overrides its providers'.
    pub timeouts: RouteTimeouts,
    balancing: Balancing,
    tiers: Box<[Tier]>,
    backend_count: usize,
}

/// The backends one request may try, in order.
pub struct Attempts<'a> {
    pub order: Vec<&'a Backend>,
    /// How many of `order`, from its start, are available now; the rest have an open circuit
    /// or a cooldown, and are a last resort.
    pub available: usize,
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
                priority,
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
            retry: RetryRule::from_config(None, backend_count),
            retry_budget: Arc::default(),
            timeouts: RouteTimeouts::default(),
            balancing: Balancing::Weighted,
            tiers: tiers.into_boxed_slice(),
            backend_count,
        }
    }

    /// Every backend with its priority, in priority order.
    pub fn backends(&self) -> impl Iterator<Item = (u32, &Backend)> {
        self.tiers.iter().flat_map(|tier| tier.backends.iter().map(move |b| (tier.priority, b)))
    }

    pub fn balancing(&self) -> Balancing {
        self.balancing
    }

    pub fn with_balancing(mut self, balancing: Balancing) -> Self {
        self.balancing = balancing;
        self
    }

    /// The backends to try for one request, in order: each tier in priority order, starting
    /// with its weighted pick (or, latency-aware, the better of two random picks, then the rest
    /// by load score), then the rest of the tier. Backends that are unavailable at `now_ms`
    /// keep their relative order but go after every available one.
    pub fn attempts(&self, now_ms: u64) -> Attempts<'_> {
        let mut order = Vec::with_capacity(self.backend_count);
        for tier in &self.tiers {
            let start = order.len();
            let n = tier.backends.len();
            match self.balancing {
                _ if n == 1 => order.push(&tier.backends[0]),
                Balancing::Weighted => {
                    let slot = tier.cursor.fetch_add(1, Relaxed) % tier.schedule.len();
                    let first = usize::from(tier.schedule[slot]);
                    order.extend((0..n).map(|i| &tier.backends[(first + i) % n]));
                }
                Balancing::Latency => {
                    order.extend(tier.backends.iter());
                    let tier_order = &mut order[start..];
                    // Cheapest first; an available backend always before an unavailable one,
                    // so the random pair is drawn from those that can take the request.
                    let key = |b: &&Backend| (b.health.is_unavailable(now_ms), b.health.load_score());
                    tier_order
                        .sort_by(|a, b| key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal));
                    let available = tier_order.iter().filter(|b| !b.health.is_unavailable(now_ms)).count();
                    if available >= 2 {
                        let (i, j) = two_distinct(available);
                        // The better of the two random picks leads; the rest stay cheapest first.
                        let pick = if key(&tier_order[i]).1 <= key(&tier_order[j]).1 { i } else { j };
                        tier_order[..=pick].rotate_right(1);
                    }
                }
            }
        }
        let available = order.iter().filter(|b| !b.health.is_unavailable(now_ms)).count();
        if available < order.len() {
            order.sort_by_key(|b| b.health.is_unavailable(now_ms));
        }
        Attempts { order, available }
    }
}

/// Two different indices below `n` (n ≥ 2), from a per-thread xorshift generator: selection
/// needs spread, not unpredictability, and must not contend on a shared generator.
fn two_distinct(n: usize) -> (usize, usize) {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(0u8) | 1
        });
    }
    let next = || {
        STATE.with(|state| {
            let mut x = state.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            state.set(x);
            x
        })
    };
    let i = (next() % n as u64) as usize;
    let j = (i + 1 + (next() % (n as u64 - 1)) as usize) % n;
    (i, j)
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
            (0..4).map(|_| route.attempts(1).order.iter().map(|b| b.upstream).collect()).collect();
        assert_eq!(orders, vec![vec![0, 1, 9], vec![0, 1, 9], vec![1, 0, 9], vec![0, 1, 9]]);
    }

    #[test]
    fn unavailable_backends_go_last_in_their_order() {
        let route = Route::new(
            "r",
            0,
            Arc::default(),
            vec![(0, 1, backend(0)), (0, 1, backend(1)), (1, 1, backend(2))],
            &mut |_| Arc::default(),
        );
        let now = 1_000;
        route.tiers[0].backends[0].health.cool_down(now, std::time::Duration::from_secs(5));
        for _ in 0..4 {
            let attempts = route.attempts(now);
            let order: Vec<usize> = attempts.order.iter().map(|b| b.upstream).collect();
            assert_eq!(order, vec![1, 2, 0]);
            assert_eq!(attempts.available, 2);
        }
    }

    #[test]
    fn latency_balancing_prefers_the_faster_backend() {
        let route = Route::new(
            "r",
            0,
            Arc::default(),
            vec![(0, 1, backend(0)), (0, 1, backend(1)), (0, 1, backend(2))],
            &mut |_| Arc::default(),
        )
        .with_balancing(Balancing::Latency);
        let ms = std::time::Duration::from_millis;
        route.tiers[0].backends[0].health.record_success(1, ms(200));
        route.tiers[0].backends[1].health.record_success(1, ms(10));
        route.tiers[0].backends[2].health.record_success(1, ms(20));
        let mut first = [0usize; 3];
        for _ in 0..3_000 {
            first[route.attempts(2).order[0].upstream] += 1;
        }
        // Two random picks of three: the slowest only leads if drawn twice, which never
        // happens; the fastest leads whenever it is drawn (2 pairs of 3).
        assert_eq!(first[0], 0);
        assert!(first[1] > 1_800 && first[2] > 700, "{first:?}");
        let order: Vec<usize> = route.attempts(2).order.iter().map(|b| b.upstream).collect();
        assert_eq!(order.len(), 3);
    }
}
