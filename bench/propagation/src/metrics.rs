//! The operator's `/metrics`: bytes sent per replica, the snapshot size, and the counters that
//! tell whether it is still working (compiles, status writes, acks).

use crate::http::Http;
use crate::process::cpu_ticks;
use std::time::{Duration, Instant};

/// Bytes written on each replica's stream, heartbeats included (operator/src/metrics.rs).
const SENT_BYTES: &str = "switchboard_operator_stream_sent_bytes_total";
/// Size of the last published snapshot as JSON.
pub const SNAPSHOT_BYTES: &str = "switchboard_operator_snapshot_bytes";
/// Compiles, under the name of either operator version (a counter, later a histogram's count).
const COMPILES: [&str; 2] =
    ["switchboard_operator_compiles_total", "switchboard_operator_reconcile_duration_seconds_count"];
/// Counters that move while the operator works on a change.
const ACTIVITY: [&str; 6] = [
    COMPILES[0],
    COMPILES[1],
    "switchboard_operator_status_writes_total",
    "switchboard_operator_status_write_errors_total",
    "switchboard_operator_acks_total",
    "switchboard_operator_snapshot_generation",
];

/// Time from a snapshot's publication to a replica's ack, per replica.
pub const PUSH_LATENCY: &str = "switchboard_operator_push_latency_seconds";
/// Time of one reconcile: compile, publish, status computation.
pub const RECONCILE: &str = "switchboard_operator_reconcile_duration_seconds";

/// How often the operator is looked at while waiting for it to go idle.
const POLL_EVERY: Duration = Duration::from_millis(50);
/// CPU ticks the operator may use during a quiet window (heartbeats and these scrapes).
const IDLE_TICKS: u64 = 2;

/// One scrape: every sample as (series with labels, value).
#[derive(Debug, Default, Clone)]
pub struct Scrape(Vec<(String, f64)>);

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Scrape(samples)
    }

    pub fn value(&self, series: &str) -> Option<f64> {
        self.0.iter().find(|(name, _)| name == series).map(|&(_, value)| value)
    }

    /// Bytes sent so far on `replica`'s stream; `None` when the operator does not export them.
    pub fn sent_bytes(&self, replica: &str) -> Option<u64> {
        self.value(&format!("{SENT_BYTES}{{replica=\"{replica}\"}}")).map(|v| v as u64)
    }

    /// A histogram's (sum, count) so far; `labels` is `{replica="gw-0"}` or empty.
    pub fn histogram(&self, name: &str, labels: &str) -> Option<(f64, u64)> {
        let sum = self.value(&format!("{name}_sum{labels}"))?;
        let count = self.value(&format!("{name}_count{labels}"))?;
        Some((sum, count as u64))
    }

    /// Compiles so far, whichever name the operator uses.
    pub fn compiles(&self) -> Option<u64> {
        COMPILES.iter().find_map(|name| self.value(name)).map(|v| v as u64)
    }

    fn activity(&self) -> Vec<Option<f64>> {
        ACTIVITY.iter().map(|name| self.value(name)).collect()
    }
}

/// The operator's admin endpoint and process.
#[derive(Clone)]
pub struct Operator {
    pub http: Http,
    /// `http://ADDR`
    pub admin: String,
    pub pid: u32,
}

impl Operator {
    pub async fn scrape(&self) -> Result<Scrape, String> {
        Ok(Scrape::parse(&self.http.get_text(&format!("{}/metrics", self.admin)).await?))
    }

    /// Waits until the operator is idle: its activity counters unchanged and its CPU time
    /// (almost) unchanged for `quiet`. Returns the last scrape and when the operator went still.
    ///
    /// This polls because there is no event for "nothing more will happen": after a change
    /// the operator compiles, writes statuses, and recompiles on each replica's ack (each
    /// status write and each ack is a new input), and nothing announces the end of that chain.
    /// CPU time catches a compile that is running but has not bumped a counter yet.
    pub async fn settle(&self, quiet: Duration, timeout: Duration) -> Result<(Scrape, Instant), String> {
        let started = Instant::now();
        let mut scrape = self.scrape().await?;
        let mut activity = scrape.activity();
        let mut ticks = cpu_ticks(self.pid)?;
        let mut still_since = Instant::now();
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            let now_scrape = self.scrape().await?;
            let now_ticks = cpu_ticks(self.pid)?;
            let now_activity = now_scrape.activity();
            if now_activity != activity || now_ticks > ticks + IDLE_TICKS {
                (activity, ticks, still_since) = (now_activity, now_ticks, Instant::now());
            } else if still_since.elapsed() >= quiet {
                return Ok((now_scrape, still_since));
            }
            scrape = now_scrape;
            if started.elapsed() > timeout {
                return Err(format!(
                    "the operator did not go idle within {timeout:?} (last compiles {:?}, CPU ticks {now_ticks})",
                    scrape.compiles()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_and_labelled_samples() {
        let text = "# HELP x y\n# TYPE x counter\nswitchboard_operator_compiles_total 7\n\
                    switchboard_operator_stream_sent_bytes_total{replica=\"gw-0\"} 123456\n\
                    switchboard_operator_snapshot_bytes 99\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.compiles(), Some(7));
        assert_eq!(scrape.sent_bytes("gw-0"), Some(123_456));
        assert_eq!(scrape.sent_bytes("gw-1"), None);
        assert_eq!(scrape.value(SNAPSHOT_BYTES), Some(99.0));
        let text = "h_sum{replica=\"a\"} 0.25\nh_count{replica=\"a\"} 2\nh_sum 1.5\nh_count 3\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.histogram("h", "{replica=\"a\"}"), Some((0.25, 2)));
        assert_eq!(scrape.histogram("h", ""), Some((1.5, 3)));
        assert_eq!(scrape.histogram("h", "{replica=\"b\"}"), None);
    }
}
