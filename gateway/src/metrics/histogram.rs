//! A latency histogram a request observes into with two relaxed atomic adds.
//!
//! prometheus-client's own `Histogram` takes a lock per observation; the request path takes
//! none (docs/architecture.md), so this one keeps fixed bounds and atomics and implements the
//! crate's `EncodeMetric`, which writes it in OpenMetrics form like any of the crate's metrics.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::{MetricType, TypedMetric};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds in seconds (`+Inf` is implied): 0.5 ms to 5 min, for whole requests and
/// for first tokens, which a slow model takes tens of seconds to produce.
pub const LATENCY_BOUNDS: [f64; 17] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Upper bounds in seconds for the gaps between streamed events: tokens arrive every few to
/// a few hundred milliseconds, so the resolution is below a second.
pub const GAP_BOUNDS: [f64; 14] =
    [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Upper bounds in seconds for calls to Redis: a loopback round trip is tens of microseconds, a
/// cross-zone one a millisecond or two, the admission timeout at most a few hundred ms.
pub const REDIS_BOUNDS: [f64; 12] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

#[derive(Debug)]
pub struct AtomicHistogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Observations at or under each bound (and over the one before).
    buckets: [AtomicU64; N],
    /// Observations above every bound.
    over: AtomicU64,
    /// Microseconds, so the sum is an integer atomic add; exact to a microsecond.
    sum_micros: AtomicU64,
}

impl<const N: usize> AtomicHistogram<N> {
    pub const fn new(bounds: &'static [f64; N]) -> Self {
        AtomicHistogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; N],
            over: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        match self.bounds.iter().position(|&bound| secs <= bound) {
            Some(bucket) => self.buckets[bucket].fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }
}

impl<const N: usize> TypedMetric for AtomicHistogram<N> {
    const TYPE: MetricType = MetricType::Histogram;
}

impl<const N: usize> EncodeMetric for AtomicHistogram<N> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        // Per-bucket counts: the encoder makes them cumulative. Read without a snapshot, so a
        // scrape racing an observation may see the bucket and not yet the sum: Prometheus
        // tolerates that, and a lock per request would cost more than it is worth.
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .zip(&self.buckets)
            .map(|(&bound, count)| (bound, count.load(Relaxed)))
            .chain(std::iter::once((f64::INFINITY, self.over.load(Relaxed))))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::{AtomicHistogram, LATENCY_BOUNDS};
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use std::time::Duration;

    #[derive(Debug)]
    struct One(AtomicHistogram<17>);

    impl prometheus_client::collector::Collector for One {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            let metric = encoder.encode_descriptor("h_seconds", "A test.", None, self.0.metric_type())?;
            self.0.encode(metric)
        }
    }

    #[test]
    fn observations_land_in_their_bucket_and_the_sum() {
        let histogram = AtomicHistogram::new(&LATENCY_BOUNDS);
        histogram.observe(Duration::from_micros(400));
        histogram.observe(Duration::from_millis(700));
        histogram.observe(Duration::from_secs(400));
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(One(histogram)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("h_seconds_bucket{le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"0.5\"} 1\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"1.0\"} 2\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"300.0\"} 2\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("h_seconds_sum 400.7004\n"), "{text}");
        assert!(text.contains("h_seconds_count 3\n"), "{text}");
    }
}
