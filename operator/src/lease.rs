//! Leader election over a `coordination.k8s.io/v1` Lease, as a pure decision.
//!
//! Two operator replicas run; one leads (compiles, publishes, writes statuses), the other waits.
//! The algorithm is client-go's `leaderelection`: the leader renews the Lease every retry
//! period; a candidate takes it over once `renewTime + leaseDurationSeconds` has passed without a
//! renewal; every write carries the Lease's `resourceVersion`, so when two candidates race, the
//! API server's optimistic concurrency lets exactly one win (the other gets 409 and follows). A
//! leader that cannot renew within the renew deadline steps down before its Lease can expire, so
//! two leaders never overlap by the clocks' own account.
//!
//! This module decides and builds the Lease to write; the controller does the API calls.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// Timing of the election (client-go's defaults are 15 s, 10 s and 2 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a Lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down; shorter than the duration.
    pub renew_deadline: Duration,
    /// How often candidates look and leaders renew.
    pub retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What to do after looking at the Lease.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// No Lease yet: create it, held by us.
    Create(LeaseSpec),
    /// We hold it: write this renewal.
    Renew(LeaseSpec),
    /// Its holder let it expire (or released it): write this to take it over.
    TakeOver(LeaseSpec),
    /// Someone else holds a live Lease.
    Follow { leader: String },
}

/// Decides the next step for candidate `me` at `now`.
pub fn decide(current: Option<&LeaseSpec>, me: &str, now: Timestamp, timing: Timing) -> Step {
    let fresh = |transitions: i32| LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(timing.lease_duration.as_secs().max(1) as i32),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(lease) = current else { return Step::Create(fresh(0)) };
    let transitions = lease.lease_transitions.unwrap_or(0);
    match lease.holder_identity.as_deref() {
        Some(holder) if holder == me => {
            let mut renewed = lease.clone();
            renewed.renew_time = Some(MicroTime(now));
            renewed.lease_duration_seconds = Some(timing.lease_duration.as_secs().max(1) as i32);
            Step::Renew(renewed)
        }
        // An empty holder is a released Lease (a leader that shut down cleanly).
        Some(holder) if !holder.is_empty() && !expired(lease, now) => {
            Step::Follow { leader: holder.to_owned() }
        }
        _ => Step::TakeOver(fresh(transitions.saturating_add(1))),
    }
}

/// Whether `lease` has gone without renewal for longer than its duration.
pub fn expired(lease: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = lease.renew_time.as_ref().or(lease.acquire_time.as_ref()) else { return true };
    let duration = SignedDuration::from_secs(i64::from(lease.lease_duration_seconds.unwrap_or(0)));
    match renewed.0.checked_add(duration) {
        Ok(valid_until) => now >= valid_until,
        Err(_) => false,
    }
}

/// The Lease a leader writes when it shuts down cleanly: no holder, so the standby takes over at
/// its next look instead of waiting for the Lease to expire.
pub fn released(lease: &LeaseSpec) -> LeaseSpec {
    LeaseSpec { holder_identity: Some(String::new()), ..lease.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn held_by(holder: &str, renewed: i64) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(MicroTime(at(0))),
            renew_time: Some(MicroTime(at(renewed))),
            lease_transitions: Some(2),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn the_first_candidate_creates_the_lease() {
        let Step::Create(spec) = decide(None, "a", at(0), Timing::default()) else { panic!() };
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(0));
    }

    #[test]
    fn a_live_lease_is_followed_and_an_expired_one_taken_over() {
        let lease = held_by("a", 100);
        assert_eq!(
            decide(Some(&lease), "b", at(114), Timing::default()),
            Step::Follow { leader: "a".into() }
        );
        let Step::TakeOver(spec) = decide(Some(&lease), "b", at(115), Timing::default()) else { panic!() };
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(3), "a transition is counted");
        assert_eq!(spec.acquire_time, Some(MicroTime(at(115))));
    }

    #[test]
    fn the_holder_renews_and_a_released_lease_is_taken_at_once() {
        let lease = held_by("a", 100);
        let Step::Renew(spec) = decide(Some(&lease), "a", at(105), Timing::default()) else { panic!() };
        assert_eq!(spec.renew_time, Some(MicroTime(at(105))));
        assert_eq!(spec.acquire_time, lease.acquire_time, "renewing is not acquiring");
        assert_eq!(spec.lease_transitions, Some(2));
        let released = released(&spec);
        assert!(matches!(decide(Some(&released), "b", at(106), Timing::default()), Step::TakeOver(_)));
    }

    #[test]
    fn a_lease_without_times_is_expired() {
        let lease = LeaseSpec { holder_identity: Some("a".into()), ..LeaseSpec::default() };
        assert!(expired(&lease, at(0)));
        assert!(!expired(&held_by("a", 0), at(14)));
    }
}
