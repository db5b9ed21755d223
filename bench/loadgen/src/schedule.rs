//! The fixed-rate schedule.
//!
//! Request `i` (0-based) is *intended* to start at `t0 + i / rate`. In fixed-rate mode the latency
//! of a request is measured from this intended time, not from when it was actually written to the
//! socket. If the server (or the generator) stalls, requests queue up behind the stall and every
//! one of them is charged the time it waited; a generator that measured from the actual send time
//! would silently skip that wait ("coordinated omission") and report a far too rosy tail.

use std::time::Duration;

/// Offset from `t0` at which request `i` is intended to start.
///
/// `rate` must be positive and finite (guaranteed by argument parsing).
#[must_use]
pub fn intended_offset(i: u64, rate: f64) -> Duration {
    // f64 holds integers exactly up to 2^53 ns (~104 days), so this is nanosecond-exact for any
    // realistic run.
    Duration::try_from_secs_f64(i as f64 / rate).unwrap_or(Duration::MAX)
}

/// Number of requests whose intended start lies in `[0, window)`.
#[must_use]
pub fn requests_within(window: Duration, rate: f64) -> u64 {
    if window.is_zero() {
        return 0;
    }
    // Float estimate, then fixed up so the result agrees exactly with `intended_offset`.
    let mut n = (window.as_secs_f64() * rate).ceil().max(0.0) as u64;
    while n > 0 && intended_offset(n - 1, rate) >= window {
        n -= 1;
    }
    while intended_offset(n, rate) < window {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_time_of_request_i() {
        assert_eq!(intended_offset(0, 2000.0), Duration::ZERO);
        assert_eq!(intended_offset(1, 2000.0), Duration::from_micros(500));
        assert_eq!(intended_offset(2000, 2000.0), Duration::from_secs(1));
        assert_eq!(intended_offset(19_999, 2000.0), Duration::from_micros(9_999_500));
        assert_eq!(intended_offset(3, 0.5), Duration::from_secs(6));
        assert_eq!(intended_offset(1, 3.0), Duration::from_nanos(333_333_333));
        // Monotonic.
        let mut last = Duration::ZERO;
        for i in 1..10_000 {
            let t = intended_offset(i, 1234.5);
            assert!(t > last);
            last = t;
        }
    }

    #[test]
    fn request_counts_per_window() {
        assert_eq!(requests_within(Duration::from_secs(10), 2000.0), 20_000);
        assert_eq!(requests_within(Duration::from_secs(2), 2000.0), 4_000);
        assert_eq!(requests_within(Duration::ZERO, 2000.0), 0);
        // 0, 1/3, 2/3 s fall inside [0, 1 s); 1 s itself does not.
        assert_eq!(requests_within(Duration::from_secs(1), 3.0), 3);
        // Float-unfriendly products: 0.3 s * 10/s = 3 requests (0, 0.1, 0.2).
        assert_eq!(requests_within(Duration::from_millis(300), 10.0), 3);
        assert_eq!(requests_within(Duration::from_millis(1), 2000.0), 2);
        assert_eq!(requests_within(Duration::from_micros(1), 2000.0), 1);
    }
}
