//! The access log (`--access-log`): one JSON object per line on stdout for each request, naming
//! the key by its id, never the key. `--access-log-sample` keeps a fraction of the successful
//! requests; an error (status 400 and up) is always written.
//!
//! Lines go straight to stdout, apart from the diagnostic log on stderr, so a log pipeline
//! can take them as they are. The line is written when the request's ledger settles (after its
//! last byte), on the thread that served it, as the diagnostic log is.

use serde::Serialize;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Which requests get a line.
#[derive(Debug)]
pub struct Sampler {
    enabled: bool,
    /// Successful requests logged per million.
    per_million: u64,
    /// Requests seen, for a deterministic sample: exactly `per_million` in every million.
    seen: AtomicU64,
}

impl Sampler {
    pub fn off() -> Self {
        Sampler { enabled: false, per_million: 0, seen: AtomicU64::new(0) }
    }

    /// Logging on, keeping `rate` (0 to 1) of the successful requests.
    pub fn new(rate: f64) -> Self {
        let per_million = (rate.clamp(0.0, 1.0) * 1e6).round() as u64;
        Sampler { enabled: true, per_million, seen: AtomicU64::new(0) }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether this request's line is kept if it succeeds. Decided once, when it arrives: one
    /// relaxed increment, and only when sampling is neither all nor nothing.
    pub fn sample(&self) -> bool {
        match self.per_million {
            0 => false,
            1_000_000.. => true,
            rate => {
                let n = self.seen.fetch_add(1, Relaxed) % 1_000_000;
                // Request n is kept when it moves rate*n/1e6 to the next integer: evenly spread.
                (n + 1) * rate / 1_000_000 > n * rate / 1_000_000
            }
        }
    }
}

/// One access log line.
#[derive(Serialize)]
pub struct Line<'a> {
    /// Unix time in milliseconds when the request ended.
    pub ts_ms: u64,
    pub request_id: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub key: Option<&'a str>,
    pub team: Option<&'a str>,
    pub route: Option<&'a str>,
    pub provider: Option<&'a str>,
    /// Backends tried (0: none was, the request ended before).
    pub attempts: u32,
    pub status: u16,
    /// The error's type as in `switchboard_errors_total` (`None` for a success).
    pub error: Option<&'a str>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    /// Streams only: request received to the first event relayed.
    pub ttft_ms: Option<f64>,
}

impl Line<'_> {
    pub fn write(&self) {
        let Ok(mut text) = serde_json::to_vec(self) else { return };
        text.push(b'\n');
        // One write of the whole line, so lines from concurrent requests never interleave.
        let _ = std::io::stdout().lock().write_all(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::Sampler;

    #[test]
    fn a_sample_keeps_its_fraction_evenly() {
        let kept = |rate: f64, n: usize| {
            let sampler = Sampler::new(rate);
            (0..n).filter(|_| sampler.sample()).count()
        };
        assert_eq!(kept(0.0, 1000), 0);
        assert_eq!(kept(1.0, 1000), 1000);
        assert_eq!(kept(0.25, 1000), 250);
        assert_eq!(kept(0.001, 10_000), 10);
        let sampler = Sampler::new(0.5);
        let first: Vec<bool> = (0..4).map(|_| sampler.sample()).collect();
        assert_eq!(first, [false, true, false, true], "spread, not bunched");
        assert!(!Sampler::off().enabled());
    }
}
