//! Rate limits and budgets: admission before a request is sent, settlement after it ends.
//!
//! A request faces the policies of its key and of its route, and its key's own budget. For each,
//! [`Limits::admit`] charges what the request is expected to take (a [`Demand`]: one request,
//! the prompt estimate and `max_tokens`, their cost at the route's highest prices) against the
//! counter the policy's scope names, or refuses it. The request's ledger keeps the charges;
//! when the request ends, however it ends, they are settled: the reservation is replaced by
//! what the request really took, and its place among the requests in flight is given back.
//!
//! `local` policies count in this process ([`local`]); `redis` policies count in Redis
//! ([`redis`]), shared by the fleet, one pipeline of commands per counter at admission and settlements
//! pipelined by a background task. A gateway without Redis counts `redis` policies locally and
//! says so once at startup.

pub mod estimate;
pub mod local;
pub mod policy;
pub mod redis;
pub mod reply;
pub mod window;

use local::{LocalCharge, LocalCounters, LocalSubject};
use policy::{Counted, Demand, Policy};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use switchboard_config::{FailureMode, PolicyMode};

/// A counter's identity in this process: a hash of its policy and key, team or route.
pub type Subject = u64;

/// How much room one limit has left after this request, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headroom {
    pub what: Counted,
    pub limit: u64,
    pub remaining: u64,
    pub reset_ms: u64,
}

/// A calendar budget's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Month,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The policy's name; empty for the key's own budget.
    pub policy: Arc<str>,
    pub reason: RefusalReason,
    /// When to try again (`Retry-After`), if anything but waiting helps.
    pub retry_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// A windowed limit is reached.
    Window { what: Counted, limit: u64 },
    /// A spend budget is exhausted.
    Budget { period: Period },
    /// Too many requests in flight.
    Concurrent { limit: u64 },
    /// Redis could not be asked and the policy fails closed.
    Unavailable,
}

impl Refusal {
    fn over(policy: &Policy, what: Counted, limit: u64, retry_after_ms: u64) -> Self {
        Refusal { policy: policy.name.clone(), reason: RefusalReason::Window { what, limit }, retry_after_ms }
    }

    fn budget(policy: &Policy, period: Period, now_ms: u64) -> Self {
        let now = (now_ms / 1000) as i64;
        let next = match period {
            Period::Day => (now / 86_400 + 1) * 86_400,
            Period::Month => {
                let (year, month, _) = switchboard_config::civil_date(now);
                switchboard_config::start_of_next_month(year, month)
            }
        };
        let retry_after_ms = (next.saturating_sub(now) as u64).saturating_mul(1000);
        Refusal { policy: policy.name.clone(), reason: RefusalReason::Budget { period }, retry_after_ms }
    }

    fn concurrent(policy: &Policy, limit: u64) -> Self {
        // A slot frees when a request ends: no better guess than "soon".
        Refusal {
            policy: policy.name.clone(),
            reason: RefusalReason::Concurrent { limit },
            retry_after_ms: 1000,
        }
    }

    fn unavailable(policy: &Policy) -> Self {
        Refusal { policy: policy.name.clone(), reason: RefusalReason::Unavailable, retry_after_ms: 1000 }
    }
}

/// Who a request is, as far as counters go.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub key: &'a str,
    pub team: Option<&'a str>,
    pub route: &'a str,
}

/// One policy's charge for one request, kept by the ledger until settlement.
pub struct Charge {
    policy: Arc<Policy>,
    place: Place,
}

enum Place {
    Local(Arc<LocalSubject>, LocalCharge),
    Redis(redis::RedisCharge),
    /// Nothing was charged: Redis could not be asked and the policy fails open.
    Unenforced,
}

/// What admission granted: the charges to settle and the headroom left.
#[derive(Default)]
pub struct Admitted {
    pub charges: Vec<Charge>,
    pub headroom: Vec<Headroom>,
}

/// Process-wide limit state: local counters, the Redis store if configured, and counts of
/// decisions for `/metrics`.
pub struct Limits {
    local: LocalCounters,
    redis: Option<redis::RedisStore>,
    /// Requests refused by a limit or budget.
    pub refused: AtomicU64,
    /// Requests admitted without counting because Redis was unreachable (fail open).
    pub unenforced: AtomicU64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(None)
    }
}

impl Limits {
    pub fn new(redis: Option<redis::RedisStore>) -> Self {
        Limits {
            local: LocalCounters::default(),
            redis,
            refused: AtomicU64::new(0),
            unenforced: AtomicU64::new(0),
        }
    }

    pub fn redis(&self) -> Option<&redis::RedisStore> {
        self.redis.as_ref()
    }

    /// Charges `demand` to every policy's counter for `caller`, or refuses; a refusal gives
    /// back what the other policies took. Redis policies are asked concurrently (one round trip).
    pub async fn admit<'p>(
        &self,
        policies: impl Iterator<Item = &'p Arc<Policy>>,
        caller: Caller<'_>,
        demand: Demand,
        now_ms: u64,
    ) -> Result<Admitted, Refusal> {
        let mut admitted = Admitted::default();
        let mut remote = Vec::new();
        let mut refusal = None;
        for policy in policies {
            let redis = match (policy.mode, &self.redis) {
                (PolicyMode::Redis, Some(redis)) => Some(redis),
                _ => None,
            };
            if let Some(redis) = redis {
                if let Some(tag) = policy.tag(caller.key, caller.team, caller.route) {
                    remote.push((policy.clone(), redis.admit(policy.clone(), tag, demand)));
                }
                continue;
            }
            let Some(subject) = policy.subject(caller.key, caller.team, caller.route) else { continue };
            let subject = self.local.subject(subject);
            match subject.admit(policy, &demand, now_ms, &mut admitted.headroom) {
                Ok(charge) => admitted
                    .charges
                    .push(Charge { policy: policy.clone(), place: Place::Local(subject, charge) }),
                Err(refused) => {
                    refusal = Some(refused);
                    break;
                }
            }
        }
        if refusal.is_none() && !remote.is_empty() {
            let (policies, calls): (Vec<_>, Vec<_>) = remote.into_iter().unzip();
            for (policy, outcome) in policies.into_iter().zip(futures_util::future::join_all(calls).await) {
                match outcome {
                    Ok((charge, headroom)) => {
                        admitted.headroom.extend(headroom);
                        admitted.charges.push(Charge { policy, place: Place::Redis(charge) });
                    }
                    Err(redis::AdmitError::Refused(refused)) => {
                        refusal.get_or_insert(refused);
                    }
                    Err(redis::AdmitError::Unavailable) => match policy.failure {
                        FailureMode::Open => {
                            self.unenforced.fetch_add(1, Relaxed);
                            admitted.charges.push(Charge { policy, place: Place::Unenforced });
                        }
                        FailureMode::Closed => {
                            refusal.get_or_insert(Refusal::unavailable(&policy));
                        }
                    },
                }
            }
        }
        match refusal {
            None => Ok(admitted),
            Some(refusal) => {
                self.refused.fetch_add(1, Relaxed);
                // Nothing was used: every charge is settled at zero, its request count included.
                self.settle(admitted.charges, &demand, &Demand::default());
                Err(refusal)
            }
        }
    }

    /// Replaces each charge's reservation with what the request took. Local counters are
    /// corrected here (a few atomic additions); Redis corrections are queued (`redis/pending.rs`).
    pub fn settle(&self, charges: Vec<Charge>, reserved: &Demand, actual: &Demand) {
        for charge in charges {
            match charge.place {
                Place::Local(subject, at) => subject.settle(&charge.policy, at, reserved, actual),
                Place::Redis(at) => {
                    if let Some(redis) = &self.redis {
                        redis.settle(charge.policy, at, *reserved, *actual);
                    }
                }
                Place::Unenforced => {}
            }
        }
    }

    /// Local counters held in memory.
    pub fn local_subjects(&self) -> usize {
        self.local.len()
    }

    /// Drops local counters nothing needs any more; run every minute (see `LocalCounters::sweep`).
    pub fn sweep_local(&self, now_ms: u64) -> usize {
        self.local.sweep(now_ms)
    }
}
