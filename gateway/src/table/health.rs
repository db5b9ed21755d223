//! Passive health: a backend that keeps failing is tried last for a while.
//!
//! Without this, a black-holed backend would cost every request its full connect timeout before
//! the fallback answers. After [`EJECT_AFTER`] consecutive failures a backend is ejected for
//! [`EJECT_FOR`]: it moves behind the healthy backends (still tried as a last resort, so an
//! all-failing route behaves as before). When the time is up it is tried again in its normal
//! place; one more failure ejects it again, one success clears it. State is kept per upstream
//! across reloads (see `state.rs`): a reload that does not touch a backend does not forgive it.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Consecutive failures that eject a backend.
pub const EJECT_AFTER: u32 = 3;
/// How long an ejected backend waits behind the healthy ones.
pub const EJECT_FOR: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Health {
    consecutive_failures: AtomicU32,
    /// Milliseconds on [`now_ms`]'s clock until which the backend is ejected.
    ejected_until_ms: AtomicU64,
}

impl Health {
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Relaxed) > now_ms
    }

    pub fn record_success(&self) {
        // Read first: the common case (no failures) then never writes the shared cache line.
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
    }

    /// Counts a failure; returns true when this failure ejected the backend.
    pub fn record_failure(&self, now_ms: u64) -> bool {
        let failures = self.consecutive_failures.fetch_add(1, Relaxed).saturating_add(1);
        if failures >= EJECT_AFTER && !self.is_ejected(now_ms) {
            self.ejected_until_ms.store(now_ms + EJECT_FOR.as_millis() as u64, Relaxed);
            return true;
        }
        false
    }
}

/// Monotonic milliseconds since the process started.
pub fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejects_after_consecutive_failures_and_recovers() {
        let health = Health::default();
        assert!(!health.record_failure(0));
        health.record_success();
        assert!(!health.record_failure(0));
        assert!(!health.record_failure(0));
        assert!(health.record_failure(0), "third consecutive failure ejects");
        assert!(health.is_ejected(4_999));
        assert!(!health.is_ejected(5_000), "tried again when the time is up");
        assert!(health.record_failure(5_000), "one more failure ejects it again");
        health.record_success();
        assert!(!health.record_failure(20_000), "a success starts the count over");
    }
}
