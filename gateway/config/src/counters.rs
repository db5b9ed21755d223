//! The names of the counters that limits and budgets keep in Redis.
//!
//! Shared by the gateway, which counts, and the operator, which reads each VirtualKey's spend
//! into its status; one place, so the two cannot drift apart.
//!
//! Every name is `{prefix}:{{{tag}}}:{counter}`. The part in braces is a Redis Cluster hash tag:
//! all counters of one policy for one key (or team, route, key on a route) share a slot, so one
//! script can check and charge them atomically. Parts are joined with a space, which no name in
//! a valid snapshot contains, so two different (policy, key) pairs never share a tag.

use crate::{PolicyScope, time::civil_date};

/// The tag of a policy's counters for one request's key, team or route.
///
/// `None` for a team-scoped policy and a key without a team: nothing to charge.
pub fn policy_tag(
    policy: &str,
    scope: PolicyScope,
    key: &str,
    team: Option<&str>,
    route: &str,
) -> Option<String> {
    Some(match scope {
        PolicyScope::Key => concat(&["k ", policy, " ", key]),
        PolicyScope::Team => concat(&["t ", policy, " ", team?]),
        PolicyScope::Route => concat(&["r ", policy, " ", route]),
        PolicyScope::KeyRoute => concat(&["kr ", policy, " ", key, " ", route]),
    })
}

/// The tag of a key's own budget (`keys[].budget`).
pub fn key_budget_tag(key: &str) -> String {
    concat(&["kb ", key])
}

/// A counter's full name.
pub fn counter(prefix: &str, tag: &str, counter: &str) -> String {
    concat(&counter_parts(prefix, tag, counter))
}

/// A counter's name in the parts it is made of, for writing it without joining them first.
pub fn counter_parts<'a>(prefix: &'a str, tag: &'a str, counter: &'a str) -> [&'a str; 5] {
    [prefix, ":{", tag, "}:", counter]
}

/// The name of a windowed limit's counter, `field` (`req`, `tot`, …) in the fixed window whose
/// index `index` is in decimal, in the parts it is made of: written on every admission and
/// settlement without being joined first (`switchboard_redis::Arg::Joined`).
pub fn window_counter_parts<'a>(
    prefix: &'a str,
    tag: &'a str,
    field: &'a str,
    index: &'a str,
) -> [&'a str; 7] {
    [prefix, ":{", tag, "}:", field, ":", index]
}

/// `parts` end to end. Tags and spend counters' names are built on every admission, where
/// `format!`'s machinery cost ~1,300 instructions a name (bench/governed-2.md).
fn concat(parts: &[&str]) -> String {
    let mut joined = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    for part in parts {
        joined.push_str(part);
    }
    joined
}

/// The counter suffix of a UTC day's spend (`usd:d:20261202`) and a UTC month's (`usd:m:202612`).
pub fn spend_counters(unix_seconds: i64) -> (String, String) {
    let (year, month, day) = civil_date(unix_seconds);
    (format!("usd:d:{year:04}{month:02}{day:02}"), format!("usd:m:{year:04}{month:02}"))
}

/// Spend counters hold nano-dollars (10⁻⁹ USD): integers, so additions are exact, and small
/// enough that a year of a large fleet's spend fits an i64 (9.2 billion dollars).
pub const NANO_USD_PER_USD: u64 = 1_000_000_000;

/// The default prefix of every counter name (`--redis-prefix`).
pub const DEFAULT_PREFIX: &str = "switchboard";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_a_tag_per_policy_and_subject() {
        let tag = policy_tag("ns/p", PolicyScope::KeyRoute, "team-a", None, "gpt-4o").unwrap_or_default();
        assert_eq!(counter("sb", &tag, "req:7"), "sb:{kr ns/p team-a gpt-4o}:req:7");
        assert_eq!(policy_tag("p", PolicyScope::Team, "k", None, "r"), None);
        assert_eq!(
            policy_tag("p", PolicyScope::Team, "k", Some("search"), "r").as_deref(),
            Some("t p search")
        );
        assert_eq!(counter("sb", &key_budget_tag("k1"), "usd:d:20261202"), "sb:{kb k1}:usd:d:20261202");
        for index in [0, 7, 29_459_220, u64::MAX] {
            let digits = index.to_string();
            assert_eq!(
                concat(&window_counter_parts("sb", &tag, "tot", &digits)),
                counter("sb", &tag, &format!("tot:{index}"))
            );
        }
        let (route, key) = (PolicyScope::Route, PolicyScope::Key);
        assert_eq!(policy_tag("p", route, "k", None, "r").as_deref(), Some("r p r"));
        assert_eq!(policy_tag("p", key, "k", None, "r").as_deref(), Some("k p k"));
    }

    #[test]
    fn spend_counters_follow_the_utc_calendar() {
        // 2026-12-02T08:00:00Z and the last second of 2026.
        assert_eq!(
            spend_counters(1_796_198_400 + 8 * 3600),
            ("usd:d:20261202".into(), "usd:m:202612".into())
        );
        assert_eq!(spend_counters(1_798_761_599), ("usd:d:20261231".into(), "usd:m:202612".into()));
        assert_eq!(spend_counters(1_798_761_600), ("usd:d:20270101".into(), "usd:m:202701".into()));
        assert_eq!(spend_counters(951_782_400), ("usd:d:20000229".into(), "usd:m:200002".into()));
    }
}
