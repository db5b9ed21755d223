//! The operator's Prometheus metrics: what the controller and the stream count, rendered in the
//! text exposition format on the admin port's `/metrics`.

use crate::publish::Publisher;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Counters the controller and the stream update.
#[derive(Default)]
pub struct OperatorMetrics {
    /// 1 while this replica holds the Lease.
    pub leading: AtomicU64,
    /// Time from the first change of a burst being noticed to its statuses being queued:
    /// compile, publish and status computation.
    pub reconcile: Histogram,
    pub snapshot_generation: AtomicU64,
    /// Size of the last published snapshot as JSON.
    pub snapshot_bytes: AtomicU64,
    pub status_writes: AtomicU64,
    /// Status writes the API server refused (they are retried at the next reconcile).
    pub status_write_errors: AtomicU64,
    /// Rounds that read every VirtualKey's spend from Redis (`--redis-url`).
    pub spend_reads: AtomicU64,
    /// Rounds that could not (Redis down, slow or refusing); statuses keep their last spend.
    pub spend_read_errors: AtomicU64,
    /// The publisher, once leading (replica counts, acks, nacks, per-replica stream figures).
    pub publisher: OnceLock<Arc<Publisher>>,
}

/// Upper bounds of the latency histograms, in seconds: from a fast local push (milliseconds)
/// to a reconcile of many thousands of objects.
const BUCKETS_SECONDS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A Prometheus histogram with fixed buckets, updated with atomics.
#[derive(Default)]
pub struct Histogram {
    /// Observations at or under each bound (not cumulative; summed when rendered).
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS_SECONDS.iter().position(|&bound| seconds <= bound) {
            self.buckets[bucket].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The `_bucket`, `_sum` and `_count` lines, with `labels` (`name="value",` pairs, each
    /// followed by a comma, or empty).
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let labels = match labels.trim_end_matches(',') {
            "" => String::new(),
            labels => format!("{{{labels}}}"),
        };
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{labels} {sum}\n{name}_count{labels} {count}");
    }
}

/// What the stream counts for one replica.
#[derive(Default)]
pub struct ReplicaStats {
    /// Every byte written on its stream: snapshots, heartbeats, the welcome.
    pub sent_bytes: AtomicU64,
    /// From a snapshot's publication (or the replica's hello, when it connected later) to its
    /// ack.
    pub push_latency: Histogram,
}

impl OperatorMetrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let header = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let series = |out: &mut String, name: &str, kind: &str, help: &str, value: u64| {
            header(out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        };
        series(
            &mut out,
            "switchboard_operator_leading",
            "gauge",
            "1 while this replica holds the leader Lease.",
            self.leading.load(Relaxed),
        );
        header(
            &mut out,
            "switchboard_operator_reconcile_duration_seconds",
            "histogram",
            "Compile, publish and status computation after a change.",
        );
        self.reconcile.render(&mut out, "switchboard_operator_reconcile_duration_seconds", "");
        series(
            &mut out,
            "switchboard_operator_snapshot_generation",
            "gauge",
            "Generation of the last published snapshot.",
            self.snapshot_generation.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_snapshot_bytes",
            "gauge",
            "Size of the last published snapshot (JSON).",
            self.snapshot_bytes.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_status_writes_total",
            "counter",
            "Status patches written (only changed statuses are written).",
            self.status_writes.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_status_write_errors_total",
            "counter",
            "Status patches that failed (retried at the next reconcile).",
            self.status_write_errors.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_spend_reads_total",
            "counter",
            "Rounds that read VirtualKey spend from Redis.",
            self.spend_reads.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_spend_read_errors_total",
            "counter",
            "Rounds that could not read VirtualKey spend from Redis (statuses keep their last spend).",
            self.spend_read_errors.load(Relaxed),
        );
        let Some(publisher) = self.publisher.get() else {
            return out;
        };
        let connected = publisher.replicas().iter().filter(|r| r.connected).count() as u64;
        series(
            &mut out,
            "switchboard_operator_replicas_connected",
            "gauge",
            "Gateway replicas connected to the snapshot stream.",
            connected,
        );
        series(
            &mut out,
            "switchboard_operator_acks_total",
            "counter",
            "Snapshots gateway replicas applied.",
            publisher.acks.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_nacks_total",
            "counter",
            "Snapshots gateway replicas refused.",
            publisher.nacks.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_resyncs_total",
            "counter",
            "Deltas a replica could not apply to the document it held (each answered with the whole snapshot).",
            publisher.resyncs.load(Relaxed),
        );
        series(
            &mut out,
            "switchboard_operator_deltas_total",
            "counter",
            "Snapshots sent to a replica as the changes from the one before, rather than whole.",
            publisher.deltas_sent.load(Relaxed),
        );
        let stats = publisher.stats();
        header(
            &mut out,
            "switchboard_operator_stream_sent_bytes_total",
            "counter",
            "Bytes written on a replica's stream (snapshots, deltas and heartbeats).",
        );
        for (replica, stats) in &stats {
            let _ = writeln!(
                out,
                "switchboard_operator_stream_sent_bytes_total{{replica=\"{}\"}} {}",
                label_value(replica),
                stats.sent_bytes.load(Relaxed)
            );
        }
        header(
            &mut out,
            "switchboard_operator_push_latency_seconds",
            "histogram",
            "From a snapshot's publication (or the replica's connection) to the replica's ack.",
        );
        for (replica, stats) in &stats {
            let labels = format!("replica=\"{}\",", label_value(replica));
            stats.push_latency.render(&mut out, "switchboard_operator_push_latency_seconds", &labels);
        }
        out
    }
}

/// Escapes a label value as the exposition format requires (replica names come from the
/// replicas themselves).
fn label_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(800));
        histogram.observe(Duration::from_millis(30));
        histogram.observe(Duration::from_secs(9));
        let mut out = String::new();
        histogram.render(&mut out, "h", "replica=\"a\",");
        assert!(out.contains("h_bucket{replica=\"a\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{replica=\"a\",le=\"0.025\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{replica=\"a\",le=\"0.05\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{replica=\"a\",le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{replica=\"a\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("h_sum{replica=\"a\"} 9.0308\nh_count{replica=\"a\"} 3\n"), "{out}");
        let mut bare = String::new();
        Histogram::default().render(&mut bare, "h", "");
        assert!(bare.ends_with("h_sum 0\nh_count 0\n"), "{bare}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("gw-\"0\"\\\n"), "gw-\\\"0\\\"\\\\\\n");
    }
}
