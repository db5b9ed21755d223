//! Latency statistics and their rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest trackable latency in microseconds (60 s).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// How a probe binary ends: its one result line on stdout, or its error on stderr.
pub fn exit_with_line(program: &str, result: Result<String, String>) -> std::process::ExitCode {
    use std::io::Write as _;
    match result {
        Ok(line) => match writeln!(std::io::stdout().lock(), "{line}") {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(_) => std::process::ExitCode::FAILURE,
        },
        Err(err) => {
            eprintln!("{program}: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A latency histogram in microseconds: 1 µs .. 60 s, 3 significant digits.
///
/// # Errors
/// Only if the (constant) bounds were invalid.
pub fn new_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
}

/// Duration to whole microseconds, clamped to the histogram's range.
#[must_use]
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US)
}

/// Percentiles (µs) of a histogram; all zero when it is empty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Latency {
    /// Reads mean, p50, p90, p99, p99.9 and max from `hist`.
    #[must_use]
    pub fn from_histogram(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self { mean_us: 0.0, p50_us: 0, p90_us: 0, p99_us: 0, p999_us: 0, max_us: 0 };
        }
        Self {
            mean_us: hist.mean(),
            // hdrhistogram reports the highest value equivalent to the quantile's bucket, so a
            // reported percentile is never below the true one (error < 0.1% at 3 digits).
            p50_us: hist.value_at_quantile(0.50),
            p90_us: hist.value_at_quantile(0.90),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
        }
    }
}

/// The result of one run; serialised as the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// `"closed"` or `"rate"`.
    pub mode: &'static str,
    /// Workers (closed loop) or connections (fixed rate).
    pub connections: usize,
    /// Scheduled rate in fixed-rate mode.
    pub target_rps: Option<f64>,
    /// Requests completed in the measured window: 2xx + non-2xx + transport errors.
    pub requests: u64,
    /// Responses with a non-2xx status.
    pub errors: u64,
    /// Connect failures, I/O errors, malformed responses and timeouts.
    pub transport_errors: u64,
    /// Fixed rate only: measured requests that were scheduled but never sent because the
    /// generator fell too far behind (they are not in `requests`).
    pub unsent: u64,
    /// From the start of the measured window to the last measured response.
    pub duration_s: f64,
    /// Achieved rate: `requests / duration_s`.
    pub rps: f64,
    /// Latency of 2xx responses only.
    #[serde(flatten)]
    pub latency: Latency,
    /// Response count per HTTP status.
    pub status_counts: BTreeMap<u16, u64>,
}

impl Summary {
    /// Human-readable table.
    #[must_use]
    pub fn to_table(&self, url: &str) -> String {
        let mut out = String::new();
        let mode = match self.target_rps {
            Some(r) => format!("fixed rate {r} req/s over {} connections", self.connections),
            None => format!("closed loop, concurrency {}", self.connections),
        };
        let l = &self.latency;
        let statuses = self.status_counts.iter().map(|(s, n)| format!("{s}: {n}")).collect::<Vec<_>>();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "target            {url}");
        let _ = writeln!(out, "mode              {mode}");
        let _ = writeln!(out, "requests          {}", self.requests);
        let _ = writeln!(out, "errors (non-2xx)  {}", self.errors);
        let _ = writeln!(out, "transport errors  {}", self.transport_errors);
        if self.target_rps.is_some() {
            let _ = writeln!(out, "unsent            {}", self.unsent);
        }
        let _ = writeln!(out, "duration          {:.3} s", self.duration_s);
        let _ = writeln!(out, "achieved rps      {:.1}", self.rps);
        let _ = writeln!(out, "statuses          {}", statuses.join(", "));
        let _ = writeln!(out, "latency (µs, 2xx only)");
        let _ = writeln!(
            out,
            "  {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            "mean", "p50", "p90", "p99", "p99.9", "max"
        );
        let _ = writeln!(
            out,
            "  {:>10.1} {:>10} {:>10} {:>10} {:>10} {:>10}",
            l.mean_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(actual: u64, expected: u64, tolerance_pct: f64) -> bool {
        (actual as f64 - expected as f64).abs() <= expected as f64 * tolerance_pct / 100.0
    }

    #[test]
    fn percentiles_of_known_values() {
        let mut h = new_histogram().unwrap();
        for v in 1..=1000 {
            h.record(v).unwrap();
        }
        let l = Latency::from_histogram(&h);
        assert!((l.mean_us - 500.5).abs() < 1.0, "mean {}", l.mean_us);
        assert!(within(l.p50_us, 500, 0.5), "p50 {}", l.p50_us);
        assert!(within(l.p90_us, 900, 0.5), "p90 {}", l.p90_us);
        assert!(within(l.p99_us, 990, 0.5), "p99 {}", l.p99_us);
        assert!(within(l.p999_us, 999, 0.5), "p99.9 {}", l.p999_us);
        assert!(within(l.max_us, 1000, 0.5), "max {}", l.max_us);
    }

    #[test]
    fn percentiles_keep_three_digits_at_large_values() {
        let mut h = new_histogram().unwrap();
        for _ in 0..990 {
            h.record(100).unwrap();
        }
        for _ in 0..10 {
            h.record(micros(Duration::from_millis(250))).unwrap();
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.p50_us, 100);
        assert_eq!(l.p99_us, 100);
        assert!(within(l.p999_us, 250_000, 0.1), "p99.9 {}", l.p999_us);
        assert!(within(l.max_us, 250_000, 0.1), "max {}", l.max_us);
    }

    #[test]
    fn empty_histogram_reports_zeros() {
        let l = Latency::from_histogram(&new_histogram().unwrap());
        assert_eq!(l.p99_us, 0);
        assert_eq!(l.max_us, 0);
    }

    #[test]
    fn micros_clamps_to_range() {
        assert_eq!(micros(Duration::ZERO), 1);
        assert_eq!(micros(Duration::from_nanos(1500)), 1);
        assert_eq!(micros(Duration::from_micros(1234)), 1234);
        assert_eq!(micros(Duration::from_secs(3600)), MAX_LATENCY_US);
    }

    #[test]
    fn json_field_names() {
        let s = Summary {
            mode: "rate",
            connections: 64,
            target_rps: Some(2000.0),
            requests: 3,
            errors: 1,
            transport_errors: 0,
            unsent: 0,
            duration_s: 1.5,
            rps: 2.0,
            latency: Latency { mean_us: 1.5, p50_us: 1, p90_us: 2, p99_us: 3, p999_us: 4, max_us: 5 },
            status_counts: BTreeMap::from([(200, 2), (503, 1)]),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        for k in [
            "requests",
            "errors",
            "transport_errors",
            "duration_s",
            "rps",
            "mean_us",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
        ] {
            assert!(v.get(k).is_some(), "missing {k} in {v}");
        }
        assert_eq!(v["status_counts"]["503"], 1);
        assert!(s.to_table("http://x/").contains("p99.9"));
    }
}
