//! The sliding-window arithmetic every rate limit shares, local or in Redis.
//!
//! A window of length W is approximated from two fixed windows, the current one and the one
//! before it: the count is `previous × (time left in the current window / W) + current`. This is
//! the sliding window counter of Cloudflare's and Redis's rate limiters. It was chosen over GCRA
//! because a fresh window admits exactly the limit however fast requests arrive (what users
//! test a "100 per minute" limit with), it takes variable amounts (tokens, dollars) and later
//! corrections of them (a reservation settled with exact usage is one addition to the window it
//! was charged to), and it needs two integers per limit, not a timestamp per request.

use std::fmt::Write as _;

/// Where `now_ms` falls for a window of `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPosition {
    /// Index of the current fixed window (`now / W`).
    pub index: u64,
    /// Milliseconds left until the current fixed window ends.
    pub left_ms: u64,
    pub window_ms: u64,
}

impl WindowPosition {
    pub fn at(now_ms: u64, window_ms: u64) -> Self {
        let window_ms = window_ms.max(1);
        WindowPosition { index: now_ms / window_ms, left_ms: window_ms - now_ms % window_ms, window_ms }
    }

    /// The sliding count from the previous and current fixed windows' counts (negative counts,
    /// left by a settlement below its reservation, count as zero). The previous window's share
    /// is rounded up: a limit errs on the side of holding.
    pub fn count(&self, previous: i64, current: i64) -> u64 {
        let previous = previous.max(0) as u128;
        let weighted = (previous * u128::from(self.left_ms)).div_ceil(u128::from(self.window_ms));
        (weighted as u64).saturating_add(current.max(0) as u64)
    }

    /// How long until `needed` more fits under `limit`, for `Retry-After` and the `reset`
    /// headers: the previous window's share decays linearly; what the current window holds only
    /// goes when it has become the previous one and decays in turn.
    pub fn reset_ms(&self, previous: i64, current: i64, limit: u64, needed: u64) -> u64 {
        let (previous, current) = (previous.max(0) as u64, current.max(0) as u64);
        let over = (self.count(previous as i64, current as i64) + needed).saturating_sub(limit);
        if over == 0 {
            return 0;
        }
        let weighted = self.count(previous as i64, 0);
        if over <= weighted && previous > 0 {
            // The previous window's share must shrink by `over`: it loses previous/W per ms.
            let ms = (u128::from(over) * u128::from(self.window_ms)).div_ceil(u128::from(previous));
            return (ms as u64).min(self.left_ms);
        }
        // The previous share alone is not enough: wait for this window to end, then for its
        // count (now the previous one) to decay by what is still over.
        let still_over = over.saturating_sub(weighted);
        let after = if current == 0 {
            0
        } else {
            (u128::from(still_over) * u128::from(self.window_ms)).div_ceil(u128::from(current)) as u64
        };
        self.left_ms + after.min(self.window_ms)
    }
}

/// A duration the way OpenAI's `x-ratelimit-reset-*` headers write it: `20ms`, `1s`, `1.5s`,
/// `6m0s`, `1h2m3s` (Go's duration format, at millisecond precision).
pub fn format_reset(ms: u64) -> String {
    let mut out = String::new();
    if ms < 1000 {
        let _ = write!(out, "{ms}ms");
        return out;
    }
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let _ = write!(out, "{seconds}");
    if millis > 0 {
        let fraction = format!("{millis:03}");
        let _ = write!(out, ".{}", fraction.trim_end_matches('0'));
    }
    out.push('s');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_window_weighs_what_is_left_of_the_current_one() {
        let at = WindowPosition::at(60_000 * 10 + 15_000, 60_000);
        assert_eq!((at.index, at.left_ms), (10, 45_000));
        assert_eq!(at.count(100, 0), 75);
        assert_eq!(WindowPosition::at(60_000 * 10 + 1, 60_000).count(100, 0), 100, "rounded up");
        assert_eq!(at.count(100, 20), 95);
        assert_eq!(at.count(-5, 20), 20, "a negative count is zero");
        // A fresh window admits exactly the limit.
        assert_eq!(WindowPosition::at(60_000 * 10, 60_000).count(0, 99), 99);
    }

    #[test]
    fn reset_is_when_the_needed_amount_fits_again() {
        let at = WindowPosition::at(15_000, 60_000); // 45 s left
        assert_eq!(at.reset_ms(0, 50, 100, 1), 0, "fits now");
        // 100 in the previous window weigh 75; 1 more needs the share at 74: 600 ms later.
        assert_eq!(at.reset_ms(100, 25, 100, 1), 600);
        // The current window alone is full: its end, then 1/100 of a window for it to decay.
        assert_eq!(at.reset_ms(0, 100, 100, 1), 45_000 + 600);
    }

    #[test]
    fn resets_are_written_like_openai_writes_them() {
        assert_eq!(format_reset(20), "20ms");
        assert_eq!(format_reset(1000), "1s");
        assert_eq!(format_reset(1500), "1.5s");
        assert_eq!(format_reset(360_000), "6m0s");
        assert_eq!(format_reset(3_723_000), "1h2m3s");
    }
}
