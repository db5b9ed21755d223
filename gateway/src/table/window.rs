//! Two counts per second over the last [`WINDOW_SECS`] seconds, lock-free: a backend's attempts
//! and failures (its error rate), a route's requests and retries (its retry budget).
//!
//! Each one-second bucket is one `AtomicU64`: the second it belongs to (upper 24 bits) and the two
//! counts (20 bits each, saturating). A bucket from an older second is reset by the first add of
//! its new second; sums skip buckets outside the window.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How many one-second buckets a window spans.
pub const WINDOW_SECS: usize = 10;

const COUNT_BITS: u32 = 20;
const COUNT_MAX: u64 = (1 << COUNT_BITS) - 1;
const STAMP_MASK: u64 = (1 << 24) - 1;

#[derive(Debug, Default)]
pub struct SecondsWindow {
    buckets: [AtomicU64; WINDOW_SECS],
}

impl SecondsWindow {
    /// Adds `a` and `b` to the current second's counts.
    pub fn add(&self, now_ms: u64, a: u64, b: u64) {
        let second = now_ms / 1000;
        let bucket = &self.buckets[(second % WINDOW_SECS as u64) as usize];
        let stamp = second & STAMP_MASK;
        let mut current = bucket.load(Relaxed);
        loop {
            let (mut first, mut second_count) = (0, 0);
            if current >> (2 * COUNT_BITS) == stamp {
                first = current & COUNT_MAX;
                second_count = (current >> COUNT_BITS) & COUNT_MAX;
            }
            first = (first + a).min(COUNT_MAX);
            second_count = (second_count + b).min(COUNT_MAX);
            let next = (stamp << (2 * COUNT_BITS)) | (second_count << COUNT_BITS) | first;
            match bucket.compare_exchange_weak(current, next, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// The sums of both counts over the last [`WINDOW_SECS`] seconds, this one included.
    pub fn sums(&self, now_ms: u64) -> (u64, u64) {
        let second = now_ms / 1000;
        let oldest = second.saturating_sub(WINDOW_SECS as u64 - 1) & STAMP_MASK;
        let newest = second & STAMP_MASK;
        let (mut a, mut b) = (0, 0);
        for bucket in &self.buckets {
            let value = bucket.load(Relaxed);
            let stamp = value >> (2 * COUNT_BITS);
            if value != 0 && (oldest..=newest).contains(&stamp) {
                a += value & COUNT_MAX;
                b += (value >> COUNT_BITS) & COUNT_MAX;
            }
        }
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_ten_seconds() {
        let window = SecondsWindow::default();
        window.add(500, 3, 1);
        window.add(1_500, 2, 0);
        assert_eq!(window.sums(1_600), (5, 1));
        assert_eq!(window.sums(10_400), (2, 0), "second 0 has left the window");
        window.add(10_400, 1, 1);
        assert_eq!(window.sums(10_400), (3, 1), "its bucket starts over for second 10");
        assert_eq!(window.sums(30_000), (0, 0));
    }

    #[test]
    fn counts_saturate() {
        let window = SecondsWindow::default();
        window.add(0, COUNT_MAX, 0);
        window.add(0, 5, 0);
        assert_eq!(window.sums(0), (COUNT_MAX, 0));
    }
}
