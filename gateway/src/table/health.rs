//! Passive health of one backend: a circuit breaker, the provider's own `Retry-After`, and the
//! latency estimate latency-aware balancing reads.
//!
//! **Circuit.** Closed, a backend takes traffic. [`OPEN_AFTER_FAILURES`] consecutive failures, or
//! an error rate of [`OPEN_AT_ERROR_PERCENT`] over the last [`WINDOW_SECS`] seconds (once there
//! were [`MIN_WINDOW_ATTEMPTS`] attempts), open it: it gets no traffic while any other backend of
//! the route can take it. After the open period it is half-open: the next request that would use
//! it is its probe, alone (others pass it by until the probe ends); a successful probe closes the
//! circuit, a failed one opens it again for twice as long, up to [`MAX_OPEN`]. Only failures that
//! are the backend's (connection, timeout, 429, 5xx) count; a request the provider refused as
//! invalid says nothing about the backend.
//!
//! **Cooldown.** A 429 or 503 with `Retry-After` keeps the backend out of rotation for that long
//! (at most [`MAX_COOLDOWN`]) without counting against its circuit: the provider said when.
//!
//! **Latency.** A peak-sensitive moving average of the time an attempt took to answer (its first
//! event, for a stream): a slower sample takes over at once, faster ones pull it down with a
//! [`DECAY`] time constant, so a backend that turns slow is avoided immediately and one that
//! recovers wins traffic back gradually. With the attempts in flight it gives the load score.
//!
//! Everything is atomics: requests read and update it without locks. Concurrent updates may
//! interleave (two failures both opening the circuit, a latency sample lost); each field stays a
//! valid state, which is all selection needs. State is kept per upstream across reloads
//! (`state.rs`): a reload that does not touch a backend does not forgive it.

use super::window::SecondsWindow;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit.
pub const OPEN_AFTER_FAILURES: u32 = 3;
/// Error rate, in percent of attempts over the window, that opens the circuit.
pub const OPEN_AT_ERROR_PERCENT: u64 = 50;
/// Attempts the window must hold before its error rate counts.
pub const MIN_WINDOW_ATTEMPTS: u64 = 20;
/// The first open period; each failed probe doubles it.
pub const FIRST_OPEN: Duration = Duration::from_secs(5);
/// The longest open period.
pub const MAX_OPEN: Duration = Duration::from_secs(60);
/// The longest a provider's `Retry-After` keeps a backend out.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(60);
/// Time constant of the latency average's decay.
pub const DECAY: Duration = Duration::from_secs(10);

/// What the circuit lets an attempt do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Closed: go ahead.
    Pass,
    /// Half-open, and this attempt is the probe: its outcome decides.
    Probe,
    /// Open, cooling down, or another request is probing.
    Refused,
}

/// The circuit's state as reported (admin endpoint, metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Default)]
pub struct Health {
    consecutive_failures: AtomicU32,
    /// Milliseconds on [`now_ms`]'s clock until which the circuit is open; 0: closed.
    open_until_ms: AtomicU64,
    /// Times the circuit opened since it last closed: the exponent of the open period.
    reopenings: AtomicU32,
    /// A half-open circuit's probe is out.
    probing: AtomicBool,
    /// Until when the provider asked (`Retry-After`) not to be called.
    cooldown_until_ms: AtomicU64,
    /// Per second: (attempts, failures).
    window: SecondsWindow,
    /// The latency average in microseconds, as `f64` bits, and when it was last updated.
    latency_us: AtomicU64,
    latency_at_ms: AtomicU64,
    in_flight: AtomicU32,
    /// Times the circuit opened, ever (metrics).
    opened_total: AtomicU64,
}

impl Health {
    /// Whether an attempt may go to this backend now, claiming the probe when it is due.
    pub fn admit(&self, now_ms: u64) -> Admission {
        if self.cooldown_until_ms.load(Relaxed) > now_ms {
            return Admission::Refused;
        }
        let open_until = self.open_until_ms.load(Relaxed);
        if open_until == 0 {
            return Admission::Pass;
        }
        if open_until > now_ms {
            return Admission::Refused;
        }
        match self.probing.compare_exchange(false, true, Relaxed, Relaxed) {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Refused,
        }
    }

    /// Whether [`Health::admit`] would refuse, without claiming anything: for ordering.
    pub fn is_unavailable(&self, now_ms: u64) -> bool {
        if self.cooldown_until_ms.load(Relaxed) > now_ms {
            return true;
        }
        let open_until = self.open_until_ms.load(Relaxed);
        open_until != 0 && (open_until > now_ms || self.probing.load(Relaxed))
    }

    pub fn state(&self, now_ms: u64) -> CircuitState {
        match self.open_until_ms.load(Relaxed) {
            0 => CircuitState::Closed,
            until if until > now_ms => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    /// A successful attempt: closes the circuit (a probe's success, or any success at all: the
    /// backend answers).
    pub fn record_success(&self, now_ms: u64, latency: Duration) {
        self.window.add(now_ms, 1, 0);
        self.sample_latency(now_ms, latency);
        // Read first: the common case (all well) then never writes the shared cache lines.
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
        if self.open_until_ms.load(Relaxed) != 0 {
            self.open_until_ms.store(0, Relaxed);
            self.reopenings.store(0, Relaxed);
            self.probing.store(false, Relaxed);
        }
    }

    /// A failure that is the backend's. Returns true when it opened the circuit.
    pub fn record_failure(&self, now_ms: u64, latency: Duration, probe: bool) -> bool {
        self.window.add(now_ms, 1, 1);
        self.sample_latency(now_ms, latency);
        let failures = self.consecutive_failures.fetch_add(1, Relaxed).saturating_add(1);
        let should_open = probe || failures >= OPEN_AFTER_FAILURES || self.error_rate_exceeded(now_ms);
        let open_until = self.open_until_ms.load(Relaxed);
        // Already open and not yet due for a probe: nothing new (late failures of attempts that
        // started before it opened).
        if !should_open || (open_until > now_ms && !probe) {
            return false;
        }
        let exponent = self.reopenings.fetch_add(1, Relaxed).min(16);
        let period = FIRST_OPEN.saturating_mul(1 << exponent).min(MAX_OPEN);
        self.open_until_ms.store(now_ms + period.as_millis() as u64, Relaxed);
        self.probing.store(false, Relaxed);
        self.opened_total.fetch_add(1, Relaxed);
        true
    }

    fn error_rate_exceeded(&self, now_ms: u64) -> bool {
        let (attempts, failures) = self.window.sums(now_ms);
        attempts >= MIN_WINDOW_ATTEMPTS && failures * 100 >= OPEN_AT_ERROR_PERCENT * attempts
    }

    /// A probe that ended without an outcome (the client left): the next request probes again.
    pub fn release_probe(&self) {
        self.probing.store(false, Relaxed);
    }

    /// The provider asked not to be called for `wait` (`Retry-After`).
    pub fn cool_down(&self, now_ms: u64, wait: Duration) {
        let until = now_ms + wait.min(MAX_COOLDOWN).as_millis() as u64;
        self.cooldown_until_ms.fetch_max(until, Relaxed);
    }

    /// Milliseconds of cooldown left.
    pub fn cooldown_left_ms(&self, now_ms: u64) -> u64 {
        self.cooldown_until_ms.load(Relaxed).saturating_sub(now_ms)
    }

    /// Milliseconds until an open circuit lets a probe through.
    pub fn open_left_ms(&self, now_ms: u64) -> u64 {
        self.open_until_ms.load(Relaxed).saturating_sub(now_ms)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Relaxed)
    }

    pub fn opened_total(&self) -> u64 {
        self.opened_total.load(Relaxed)
    }

    /// Attempts and failures in the window.
    pub fn window_counts(&self, now_ms: u64) -> (u64, u64) {
        self.window.sums(now_ms)
    }

    pub fn start_attempt(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    pub fn end_attempt(&self) {
        self.in_flight.fetch_sub(1, Relaxed);
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// The latency average in microseconds (0: never measured).
    pub fn latency_us(&self) -> f64 {
        f64::from_bits(self.latency_us.load(Relaxed))
    }

    /// What latency-aware balancing minimises: the latency average times the attempts that
    /// would queue with this one. An unmeasured backend scores 0, so it gets tried.
    pub fn load_score(&self) -> f64 {
        self.latency_us() * f64::from(self.in_flight() + 1)
    }

    fn sample_latency(&self, now_ms: u64, latency: Duration) {
        let sample = latency.as_secs_f64() * 1e6;
        let current = self.latency_us();
        let elapsed = now_ms.saturating_sub(self.latency_at_ms.load(Relaxed));
        let next = if sample >= current {
            sample
        } else {
            let keep = (-(elapsed as f64) / DECAY.as_millis() as f64).exp();
            current * keep + sample * (1.0 - keep)
        };
        self.latency_us.store(next.to_bits(), Relaxed);
        self.latency_at_ms.store(now_ms, Relaxed);
    }
}

/// Monotonic milliseconds since the process started (never 0, so 0 can mean "not set").
pub fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn consecutive_failures_open_then_a_probe_decides() {
        let health = Health::default();
        assert!(!health.record_failure(1, MS, false));
        health.record_success(1, MS);
        assert!(!health.record_failure(1, MS, false));
        assert!(!health.record_failure(1, MS, false));
        assert!(health.record_failure(1, MS, false), "third consecutive failure opens");
        assert_eq!(health.admit(4_999), Admission::Refused);
        assert_eq!(health.state(4_999), CircuitState::Open);
        assert_eq!(health.admit(5_001), Admission::Probe, "due: one probe");
        assert_eq!(health.admit(5_001), Admission::Refused, "only one probe at a time");
        assert!(health.record_failure(5_002, MS, true), "a failed probe opens again");
        assert_eq!(health.open_left_ms(5_002), 10_000, "for twice as long");
        assert_eq!(health.admit(15_002), Admission::Probe);
        health.record_success(15_003, MS);
        assert_eq!(health.state(15_003), CircuitState::Closed);
        assert_eq!(health.admit(15_003), Admission::Pass);
        assert_eq!(health.opened_total(), 2);
        // Closed again: the next opening starts from the first period.
        for _ in 0..3 {
            health.record_failure(20_000, MS, false);
        }
        assert_eq!(health.open_left_ms(20_000), 5_000);
    }

    #[test]
    fn open_periods_stop_growing() {
        let health = Health::default();
        let mut now = 1;
        for _ in 0..3 {
            health.record_failure(now, MS, false);
        }
        for _ in 0..10 {
            now += health.open_left_ms(now);
            assert_eq!(health.admit(now), Admission::Probe);
            health.record_failure(now, MS, true);
        }
        assert_eq!(health.open_left_ms(now), MAX_OPEN.as_millis() as u64);
    }

    #[test]
    fn an_error_rate_opens_without_consecutive_failures() {
        let health = Health::default();
        let mut opened = false;
        for i in 0..40u64 {
            if i % 2 == 0 {
                health.record_success(1_000 + i, MS);
            } else {
                opened |= health.record_failure(1_000 + i, MS, false);
            }
        }
        assert!(opened, "half of 40 attempts failed");
        assert_eq!(health.window_counts(1_040), (40, 20));
        assert_eq!(health.window_counts(1_040 + 10_000), (0, 0), "the window moves on");
    }

    #[test]
    fn retry_after_cools_down_without_opening() {
        let health = Health::default();
        health.cool_down(1, Duration::from_secs(2));
        assert_eq!(health.admit(1_000), Admission::Refused);
        assert!(health.is_unavailable(1_000));
        assert_eq!(health.state(1_000), CircuitState::Closed);
        assert_eq!(health.admit(2_001), Admission::Pass);
        health.cool_down(1, Duration::from_secs(3600));
        assert_eq!(health.cooldown_left_ms(1), MAX_COOLDOWN.as_millis() as u64, "capped");
    }

    #[test]
    fn latency_rises_at_once_and_decays_slowly() {
        let health = Health::default();
        health.record_success(1, Duration::from_millis(100));
        assert_eq!(health.latency_us(), 100_000.0);
        health.record_success(2, Duration::from_millis(10));
        assert!(health.latency_us() > 99_000.0, "one fast answer right after does not erase it");
        health.record_success(2 + 10 * DECAY.as_millis() as u64, Duration::from_millis(10));
        assert!(health.latency_us() < 11_000.0, "after many time constants it follows");
        health.start_attempt();
        assert!(health.load_score() > health.latency_us(), "in-flight attempts raise the score");
        health.end_attempt();
    }
}
