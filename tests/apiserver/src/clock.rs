//! Wall-clock timestamps in the apiserver's RFC 3339 form, kubectl's human-readable ages, and
//! random names and uids. No chrono or rand: a few civil-date conversions and the standard
//! library's randomly keyed hasher are enough for a test server.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `2026-12-01T10:00:00Z`: the second-precision form of `metav1.Time`.
pub(crate) fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `2026-12-01T10:00:00.123456Z`: `metav1.MicroTime`, which Events' `eventTime` uses.
pub(crate) fn rfc3339_micros() -> String {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = rfc3339(since.as_secs() as i64);
    format!("{}.{:06}Z", secs.trim_end_matches('Z'), since.subsec_micros())
}

/// Parses the RFC 3339 timestamps objects carry (`Z` or `±hh:mm`, optional fraction).
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let number = |s: &str| s.parse::<i64>().ok();
    let (date, time) = text.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-');
    let (y, m, d) = (number(ymd.next()?)?, number(ymd.next()?)?, number(ymd.next()?)?);
    let split = time.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = time.split_at(split);
    let clock = clock.split('.').next()?;
    let mut hms = clock.splitn(3, ':');
    let (hh, mm, ss) = (number(hms.next()?)?, number(hms.next()?)?, number(hms.next()?)?);
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let (sign, rest) = zone.split_at(1);
            let (oh, om) = rest.split_once(':')?;
            let minutes = number(oh)? * 60 + number(om)?;
            if sign == "-" { -minutes * 60 } else { minutes * 60 }
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// The age kubectl shows for a timestamp (apimachinery's `duration.HumanDuration` rules):
/// precise when young, coarser as it grows; `<invalid>` for a time more than a second ahead.
pub(crate) fn human_age(since: i64, now: i64) -> String {
    let seconds = now - since;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    let seconds = seconds.max(0);
    let with = |major: i64, unit: &str, minor: i64, minor_unit: &str| {
        if minor == 0 { format!("{major}{unit}") } else { format!("{major}{unit}{minor}{minor_unit}") }
    };
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    let days = hours / 24;
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 => with(minutes, "m", seconds % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => with(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => with(days, "d", hours % 24, "h"),
        _ if hours < 24 * 365 * 2 => format!("{days}d"),
        _ if hours < 24 * 365 * 8 => with(days / 365, "y", days % 365, "d"),
        _ => format!("{}y", days / 365),
    }
}

// Howard Hinnant's civil-date algorithms (public domain), for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 64 random bits: the standard library keys each `RandomState` from the OS's randomness.
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(now() as u64);
    hasher.finish()
}

/// A version-4-shaped UUID, as `metadata.uid` looks on a real cluster.
pub(crate) fn uid() -> String {
    let (a, b) = (random_u64(), random_u64());
    let hex = format!("{a:016x}{b:016x}");
    format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// The five characters `generateName` appends (the apiserver's alphabet: no vowels, no
/// look-alike digits).
pub(crate) fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bits = random_u64();
    (0..5)
        .map(|_| {
            let c = ALPHABET[(bits % ALPHABET.len() as u64) as usize];
            bits /= ALPHABET.len() as u64;
            char::from(c)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for secs in [0, 951_782_400, 1_795_000_000, 4_102_444_799] {
            assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs), "{}", rfc3339(secs));
        }
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(parse_rfc3339("2000-02-29T01:30:00+01:30"), Some(951_782_400));
        assert_eq!(parse_rfc3339("2027-01-15T00:00:00.5Z"), parse_rfc3339("2027-01-15T00:00:00Z"));
        assert_eq!(parse_rfc3339("2027-13-15T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn ages_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (150, "2m30s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86_400 + 7200, "3d2h"),
            (40 * 86_400, "40d"),
            (3 * 365 * 86_400 + 86_400, "3y1d"),
        ];
        for (age, want) in cases {
            assert_eq!(human_age(1000, 1000 + age), want, "{age}s");
        }
        assert_eq!(human_age(1000, 998), "<invalid>");
    }

    #[test]
    fn names_and_uids_are_well_formed_and_differ() {
        let (a, b) = (uid(), uid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        let suffix = name_suffix();
        assert_eq!(suffix.len(), 5);
        assert!(suffix.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}
