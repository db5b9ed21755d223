//! Results: what is recorded per change, the figures derived from it (nearest-rank
//! percentiles), the JSON document and the human summary.

use serde::Serialize;
use std::fmt::Write as _;

/// Settings the figures depend on.
#[derive(Debug, Serialize)]
pub struct Settings {
    pub replicas: usize,
    pub keys: usize,
    pub changes: u32,
    pub concurrency: u16,
    pub quiet_ms: u64,
    pub clock_ticks_per_second: u64,
}

/// Loading the keys: the API writes, then every replica serving all of them.
#[derive(Debug, Serialize)]
pub struct Load {
    /// From the first write to the last write's answer.
    pub api_writes_s: f64,
    /// From the first write to each replica's `config applied` line with every key.
    pub replica_served_s: Vec<f64>,
    /// The slowest replica.
    pub all_served_s: f64,
    /// From the first write until the operator went idle (status writes included).
    pub operator_idle_s: f64,
    /// Snapshots each replica applied while the keys were loading.
    pub replica_snapshots: Vec<u32>,
    /// Bytes sent to each replica while the keys were loading.
    pub replica_sent_bytes: Vec<Option<u64>>,
    pub operator_cpu_s: f64,
    pub gateway_cpu_s: Vec<f64>,
    pub apiserver_cpu_s: f64,
    /// Cores' worth of CPU other processes on the machine used meanwhile.
    pub others_cores: f64,
    /// Keys in the table every replica serves afterwards.
    pub keys_served: u64,
}

/// What writing a new key's Secret cost before its VirtualKey was created (outside the clock).
#[derive(Debug, Serialize)]
pub struct SecretWrite {
    /// Compiles the Secret caused (an unreferenced Secret still changes the operator's inputs).
    pub compiles: Option<u64>,
    /// Snapshots published because of it (none expected: the snapshot does not change).
    pub generations: u64,
    pub operator_cpu_ms: f64,
    /// From the write until the operator went idle.
    pub operator_busy_ms: f64,
}

/// One replica's part of one change.
#[derive(Debug, Serialize)]
pub struct ReplicaChange {
    pub name: String,
    /// From the API write to the replica serving the change.
    pub ms: f64,
    pub generation: u64,
    /// `config applied` lines read until it served (1 when the first snapshot had it).
    pub lines: u32,
    /// Probes repeated because the log line preceded the table swap.
    pub reprobes: u32,
    /// Bytes the operator sent it from just before the write until every replica served.
    pub sent_bytes: Option<u64>,
    /// The operator's push latency for it (publication to ack), from its `/metrics`.
    pub push_ms: Option<f64>,
    pub cpu_ms: f64,
}

/// One timed change.
#[derive(Debug, Serialize)]
pub struct Change {
    pub index: u32,
    /// `create` or `delete`.
    pub kind: &'static str,
    pub virtual_key: String,
    /// From the API write to the last replica serving the change.
    pub propagation_ms: f64,
    /// From the API write to the operator's `snapshot published` line for it.
    pub operator_published_ms: Option<f64>,
    /// From the API write until the operator went idle (statuses written, acks processed).
    pub operator_busy_ms: f64,
    /// The API write itself (request sent to answer read).
    pub api_write_ms: f64,
    pub replicas: Vec<ReplicaChange>,
    pub operator_cpu_ms: f64,
    /// Reconciles (compile, publish, statuses) from the write until the operator went idle,
    /// and their total time.
    pub operator_reconciles: Option<u64>,
    pub operator_reconcile_ms: Option<f64>,
    pub apiserver_cpu_ms: f64,
    /// Cores' worth of CPU other processes on the machine used from the write until the
    /// operator went idle.
    pub others_cores: f64,
    pub secret: Option<SecretWrite>,
}

/// Nearest-rank percentiles: the value at rank ceil(p/100 × n) of the sorted samples. With 60
/// samples p99 is the largest one.
#[derive(Debug, Serialize, Clone, Copy, PartialEq)]
pub struct Percentiles {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(samples: impl IntoIterator<Item = f64>) -> Option<Percentiles> {
        let mut sorted: Vec<f64> = samples.into_iter().collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: usize| sorted.get((p * n).div_ceil(100).clamp(1, n.max(1)) - 1).copied();
        Some(Percentiles { n, p50: rank(50)?, p90: rank(90)?, p99: rank(99)?, max: *sorted.last()? })
    }
}

/// One replica's figures over all changes.
#[derive(Debug, Serialize)]
pub struct ReplicaFigures {
    pub name: String,
    pub ms: Option<Percentiles>,
    pub peak_rss_kib: u64,
}

/// Peak RSS (`VmHWM`) of each process at the end of the run.
#[derive(Debug, Serialize)]
pub struct PeakRss {
    pub operator_kib: u64,
    pub apiserver_kib: u64,
    pub gateways_kib: Vec<u64>,
}

/// Everything one run found.
#[derive(Debug, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub load: Load,
    /// How percentiles are computed.
    pub percentile_method: &'static str,
    pub propagation_ms: Option<Percentiles>,
    pub create_ms: Option<Percentiles>,
    pub delete_ms: Option<Percentiles>,
    pub operator_published_ms: Option<Percentiles>,
    /// From the API write to the first replica serving the change (with `propagation_ms`, the
    /// spread across the fleet).
    pub first_replica_ms: Option<Percentiles>,
    /// Publication to ack, per replica and change (the operator's histogram).
    pub push_ms: Option<Percentiles>,
    pub per_replica: Vec<ReplicaFigures>,
    /// Bytes sent to one replica for one one-key change, over every replica and change.
    pub sent_bytes_per_replica_change: Option<Percentiles>,
    /// The operator's `switchboard_operator_snapshot_bytes` after the last change.
    pub snapshot_bytes: Option<u64>,
    pub operator_cpu_ms_per_change: Option<Percentiles>,
    /// Per replica and change.
    pub gateway_cpu_ms_per_change: Option<Percentiles>,
    pub apiserver_cpu_ms_per_change: Option<Percentiles>,
    pub operator_busy_ms_per_change: Option<Percentiles>,
    pub operator_reconciles_per_change: Option<Percentiles>,
    pub operator_reconcile_ms_per_change: Option<Percentiles>,
    pub secret_write_compiles: Option<Percentiles>,
    pub secret_write_operator_cpu_ms: Option<Percentiles>,
    pub reprobes: u32,
    pub peak_rss: PeakRss,
    /// Cores' worth of CPU processes other than the bench's used while the changes ran: work
    /// that competed with the system under test (the machine has few cores).
    pub others_cores_during_changes: f64,
    /// The target: p99 under 1 s at 10 replicas (judged at any replica count).
    pub p99_under_1s: Option<bool>,
    pub changes: Vec<Change>,
}

impl Report {
    pub fn new(settings: Settings, load: Load, changes: Vec<Change>, peak_rss: PeakRss) -> Report {
        let each = |f: &dyn Fn(&Change) -> Option<f64>| Percentiles::of(changes.iter().filter_map(f));
        let replica_count = settings.replicas;
        let per_replica = (0..replica_count)
            .map(|i| ReplicaFigures {
                name: crate::stack::replica_name(i),
                ms: each(&|c| c.replicas.get(i).map(|r| r.ms)),
                peak_rss_kib: peak_rss.gateways_kib.get(i).copied().unwrap_or_default(),
            })
            .collect();
        let all_replicas = |f: &dyn Fn(&ReplicaChange) -> Option<f64>| {
            Percentiles::of(changes.iter().flat_map(|c| c.replicas.iter().filter_map(f)))
        };
        let propagation_ms = each(&|c| Some(c.propagation_ms));
        Report {
            percentile_method: "nearest rank: the value at rank ceil(p/100 * n) of the sorted samples",
            propagation_ms,
            create_ms: each(&|c| (c.kind == "create").then_some(c.propagation_ms)),
            delete_ms: each(&|c| (c.kind == "delete").then_some(c.propagation_ms)),
            operator_published_ms: each(&|c| c.operator_published_ms),
            first_replica_ms: each(&|c| c.replicas.iter().map(|r| r.ms).min_by(f64::total_cmp)),
            push_ms: all_replicas(&|r| r.push_ms),
            per_replica,
            sent_bytes_per_replica_change: all_replicas(&|r| r.sent_bytes.map(|b| b as f64)),
            snapshot_bytes: None,
            operator_cpu_ms_per_change: each(&|c| Some(c.operator_cpu_ms)),
            gateway_cpu_ms_per_change: all_replicas(&|r| Some(r.cpu_ms)),
            apiserver_cpu_ms_per_change: each(&|c| Some(c.apiserver_cpu_ms)),
            operator_busy_ms_per_change: each(&|c| Some(c.operator_busy_ms)),
            operator_reconciles_per_change: each(&|c| c.operator_reconciles.map(|n| n as f64)),
            operator_reconcile_ms_per_change: each(&|c| c.operator_reconcile_ms),
            secret_write_compiles: each(&|c| c.secret.as_ref()?.compiles.map(|n| n as f64)),
            secret_write_operator_cpu_ms: each(&|c| Some(c.secret.as_ref()?.operator_cpu_ms)),
            reprobes: changes.iter().flat_map(|c| &c.replicas).map(|r| r.reprobes).sum(),
            p99_under_1s: propagation_ms.map(|p| p.p99 < 1000.0),
            others_cores_during_changes: 0.0,
            settings,
            load,
            peak_rss,
            changes,
        }
    }

    /// The human summary.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(
            out,
            "Propagation: {} replica(s), {} keys, {} changes (create and delete alternately)",
            s.replicas, s.keys, s.changes
        );
        self.summarize_load(&mut out);
        let _ =
            writeln!(out, "propagation, API write -> every replica serving (ms; nearest-rank percentiles):");
        line(&mut out, "  all changes", self.propagation_ms, "");
        line(&mut out, "  creates", self.create_ms, "");
        line(&mut out, "  deletes", self.delete_ms, "");
        line(&mut out, "  write -> operator published", self.operator_published_ms, "");
        line(&mut out, "  write -> first replica serving", self.first_replica_ms, "");
        line(&mut out, "  published -> replica ack", self.push_ms, "");
        for replica in &self.per_replica {
            line(&mut out, &format!("  {}", replica.name), replica.ms, "");
        }
        if let Some(n) = self.propagation_ms.map(|p| p.n)
            && n < 100
        {
            let _ = writeln!(out, "  (with {n} samples, nearest-rank p99 is the largest sample)");
        }
        let _ = writeln!(out, "bytes sent per replica for a one-key change:");
        line(&mut out, "  per replica and change", self.sent_bytes_per_replica_change, " B");
        if self.sent_bytes_per_replica_change.is_none() {
            let _ = writeln!(
                out,
                "  (the operator does not export switchboard_operator_stream_sent_bytes_total)"
            );
        }
        if let Some(bytes) = self.snapshot_bytes {
            let _ = writeln!(out, "  snapshot (switchboard_operator_snapshot_bytes): {bytes} B");
        }
        let _ = writeln!(out, "CPU per change, API write -> operator idle (ms):");
        line(&mut out, "  operator", self.operator_cpu_ms_per_change, "");
        line(&mut out, "  each gateway", self.gateway_cpu_ms_per_change, "");
        line(&mut out, "  API server", self.apiserver_cpu_ms_per_change, "");
        line(&mut out, "  operator busy for", self.operator_busy_ms_per_change, " ms");
        line(&mut out, "  operator reconciles", self.operator_reconciles_per_change, "");
        line(&mut out, "  operator reconcile time", self.operator_reconcile_ms_per_change, " ms");
        line(&mut out, "  new key's Secret: compiles", self.secret_write_compiles, "");
        line(&mut out, "  new key's Secret: operator CPU", self.secret_write_operator_cpu_ms, " ms");
        let rss = &self.peak_rss;
        let gateways = Percentiles::of(rss.gateways_kib.iter().map(|&k| k as f64));
        let _ = writeln!(
            out,
            "peak RSS (VmHWM): operator {:.1} MiB, API server {:.1} MiB, gateways max {:.1} MiB",
            rss.operator_kib as f64 / 1024.0,
            rss.apiserver_kib as f64 / 1024.0,
            gateways.map_or(0.0, |g| g.max / 1024.0),
        );
        let _ = writeln!(
            out,
            "probes repeated because a replica logged `config applied` before serving: {}",
            self.reprobes
        );
        let _ = writeln!(
            out,
            "other processes on this machine used {:.2} cores during the load and {:.2} during the changes",
            self.load.others_cores, self.others_cores_during_changes
        );
        if let Some(pass) = self.p99_under_1s {
            let _ = writeln!(out, "target p99 < 1 s: {}", if pass { "PASS" } else { "FAIL" });
        }
        out
    }

    fn summarize_load(&self, out: &mut String) {
        let l = &self.load;
        let _ = writeln!(
            out,
            "load: {} keys written in {:.1} s ({} writes in flight); every replica serving them {:.1} s after \
             the first write; operator idle after {:.1} s",
            self.settings.keys, l.api_writes_s, self.settings.concurrency, l.all_served_s, l.operator_idle_s
        );
        let cpu = Percentiles::of(l.gateway_cpu_s.iter().copied());
        let snapshots = Percentiles::of(l.replica_snapshots.iter().map(|&n| f64::from(n)));
        let _ = writeln!(
            out,
            "  CPU during the load: operator {:.1} s, API server {:.1} s, gateway max {:.1} s; snapshots applied \
             per replica: max {:.0}",
            l.operator_cpu_s,
            l.apiserver_cpu_s,
            cpu.map_or(0.0, |c| c.max),
            snapshots.map_or(0.0, |s| s.max),
        );
    }
}

fn line(out: &mut String, label: &str, p: Option<Percentiles>, unit: &str) {
    let Some(p) = p else { return };
    // Bytes are whole numbers; times and CPU get one decimal.
    let digits = if unit == " B" { 0 } else { 1 };
    let _ = writeln!(
        out,
        "{label:<34} p50 {:>10.digits$}{unit}  p90 {:>10.digits$}{unit}  p99 {:>10.digits$}{unit}  max {:>10.digits$}{unit}  (n={})",
        p.p50, p.p90, p.p99, p.max, p.n
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let p = Percentiles::of((1..=60).map(f64::from)).unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.max), (30.0, 54.0, 60.0, 60.0));
        let p = Percentiles::of((1..=200).rev().map(f64::from)).unwrap();
        assert_eq!((p.p50, p.p90, p.p99), (100.0, 180.0, 198.0));
        let one = Percentiles::of([7.0]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert!(Percentiles::of([]).is_none());
    }
}
