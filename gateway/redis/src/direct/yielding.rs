//! Whether a call waiting inline first reads without blocking, yielding its thread between
//! tries, before it blocks: learnt from the round trips the inline connection has seen.
//!
//! On a VM whose idle vCPUs halt at once (the benchmark VM: `cpuidle-haltpoll` with its polling
//! off), a thread that blocks leaves its vCPU to halt, and the reply must then wake it, which
//! leaves the guest: when Redis ran on the other vCPU, an admission's round trip took 154 µs at
//! p50 blocking, and 82 yielding, where a plain client's `PING` took 113–127 (traced runs,
//! bench/governed-2.md). Yielding rather than spinning matters: a Redis woken onto this vCPU runs
//! at the first yield instead of waiting for the spin to end (a spinning build was slower than
//! a blocking one).
//!
//! Yielding costs CPU for as long as it lasts, so it lasts at most [`YIELD_WAIT`], and only while
//! round trips are typically short enough to end within it: to a Redis elsewhere on the network
//! (hundreds of µs) a call blocks at once, except one call in [`PROBE_EVERY`], which yields to
//! notice the round trips getting short again.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The longest a call yields before it blocks.
pub(super) const YIELD_WAIT: Duration = Duration::from_micros(100);

/// Calls yield while the typical round trip is at most this: beyond it most replies would
/// arrive after [`YIELD_WAIT`] anyway, and the yielding would be CPU spent for nothing.
const WORTH_YIELDING_NS: u64 = 2 * YIELD_WAIT.as_nanos() as u64;

/// While calls do not yield, one in this many does, to learn that round trips got short again.
const PROBE_EVERY: u64 = 256;

/// What recent round trips took, and so whether the next call yields.
#[derive(Default)]
pub(super) struct Yielding {
    /// A moving average of round trips, in nanoseconds (each new one weighs 1/8): starts at 0,
    /// so the first calls yield and learn.
    typical_ns: AtomicU64,
    calls: AtomicU64,
}

impl Yielding {
    /// How long the next call yields before it blocks; `None`: it blocks at once.
    pub(super) fn window(&self) -> Option<Duration> {
        if self.typical_ns.load(Relaxed) <= WORTH_YIELDING_NS {
            return Some(YIELD_WAIT);
        }
        self.calls.fetch_add(1, Relaxed).is_multiple_of(PROBE_EVERY).then_some(YIELD_WAIT)
    }

    /// Records one round trip, from the commands' write to their last reply.
    pub(super) fn observe(&self, round_trip: Duration) {
        let sample = u64::try_from(round_trip.as_nanos()).unwrap_or(u64::MAX);
        // One call at a time uses the inline connection, so load-then-store loses nothing.
        let typical = self.typical_ns.load(Relaxed);
        let next = if sample >= typical {
            typical.saturating_add((sample - typical) / 8)
        } else {
            typical - (typical - sample) / 8
        };
        self.typical_ns.store(next, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yielded(yielding: &Yielding, calls: u64) -> u64 {
        (0..calls).filter(|_| yielding.window().is_some()).count() as u64
    }

    #[test]
    fn calls_yield_until_round_trips_are_long_then_only_probes_do_until_they_are_short_again() {
        let yielding = Yielding::default();
        assert_eq!(yielding.window(), Some(YIELD_WAIT), "the first call yields, to learn");
        // A Redis across a network: 500 µs round trips.
        for _ in 0..40 {
            yielding.observe(Duration::from_micros(500));
        }
        assert_eq!(yielded(&yielding, 4 * PROBE_EVERY), 4, "one call in {PROBE_EVERY} probes");
        // The round trips get short (a Redis on the same machine): calls yield again.
        for _ in 0..40 {
            yielding.observe(Duration::from_micros(30));
        }
        assert_eq!(yielded(&yielding, 100), 100);
    }

    #[test]
    fn one_slow_round_trip_among_short_ones_does_not_stop_the_yielding() {
        let yielding = Yielding::default();
        for _ in 0..40 {
            yielding.observe(Duration::from_micros(40));
        }
        yielding.observe(Duration::from_millis(1));
        assert_eq!(yielding.window(), Some(YIELD_WAIT));
    }
}
