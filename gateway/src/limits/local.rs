//! Counters in this process's memory (`mode: local`, and `redis` policies on a gateway without
//! Redis): lock-free atomics per subject, in a sharded copy-on-write map.
//!
//! A subject is one policy's counters for one key, team, route or key on a route. Checking a
//! limit and charging it is one compare-and-swap on the current window's counter, so two
//! requests can never both take the last unit. A request under several limits charges them one
//! by one and gives back what it took when a later one refuses.

use super::policy::{Counted, Demand, Policy};
use super::window::WindowPosition;
use super::{Headroom, Refusal, Subject};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};

/// A fixed window's counters: which window they belong to, and a count per [`Counted`].
#[derive(Default)]
struct Slot {
    index: AtomicU64,
    counts: [AtomicI64; 5],
}

impl Slot {
    /// Makes the slot hold window `index`, clearing what an older window left. Racing requests
    /// agree through the compare-and-swap on `index`; the one that wins subtracts the counts it
    /// saw, so amounts added meanwhile for the new window are kept (an amount added late for
    /// the old one is counted in the new: an error on the side of the limit).
    fn roll(&self, index: u64) {
        let seen = self.index.load(Acquire);
        if seen >= index {
            return;
        }
        let old: [i64; 5] = std::array::from_fn(|i| self.counts[i].load(Acquire));
        if self.index.compare_exchange(seen, index, AcqRel, Acquire).is_ok() {
            for (count, old) in self.counts.iter().zip(old) {
                count.fetch_sub(old, AcqRel);
            }
        }
    }

    fn count(&self, index: u64, what: Counted) -> i64 {
        if self.index.load(Acquire) == index { self.counts[what as usize].load(Acquire) } else { 0 }
    }

    /// Adds `amount` if the slot still holds window `index` (a settlement for a window that has
    /// passed changes nothing that is still counted).
    fn adjust(&self, index: u64, what: Counted, amount: i64) {
        if amount != 0 && self.index.load(Acquire) == index {
            self.counts[what as usize].fetch_add(amount, AcqRel);
        }
    }
}

/// One subject's counters.
#[derive(Default)]
pub struct LocalSubject {
    /// The sliding window's two fixed windows, by index parity.
    windows: [Slot; 2],
    /// UTC day and month numbers (days since the epoch; year × 12 + month).
    day: Slot,
    month: Slot,
    in_flight: AtomicU64,
    /// Until when the subject's counts matter (ms): two windows after its last admission, the
    /// end of the month after it for budgets. Idle past that, the sweep drops it.
    needed_until: AtomicU64,
}

/// Where a local charge went, so its settlement corrects the same windows.
#[derive(Debug, Clone, Copy)]
pub struct LocalCharge {
    window: u64,
    day: u64,
    month: u64,
}

impl LocalSubject {
    /// Checks every limit of `policy` and charges `demand` against them, all or nothing.
    pub fn admit(
        &self,
        policy: &Policy,
        demand: &Demand,
        now_ms: u64,
        headroom: &mut Vec<Headroom>,
    ) -> Result<LocalCharge, Refusal> {
        let at = WindowPosition::at(now_ms, policy.window_ms);
        let budget = policy.daily.is_some() || policy.monthly.is_some();
        let keep_ms = if budget { BUDGET_KEEP_MS } else { policy.window_ms.saturating_mul(2) };
        self.needed_until.fetch_max(now_ms.saturating_add(keep_ms), Relaxed);
        let (day, month) = if budget { calendar(now_ms) } else { (0, 0) };
        let charge = LocalCharge { window: at.index, day, month };
        let current = &self.windows[(at.index % 2) as usize];
        let previous = &self.windows[((at.index + 1) % 2) as usize];
        if !policy.windowed.is_empty() {
            current.roll(at.index);
        }
        let mut taken: Vec<(&Slot, u64, Counted, i64)> = Vec::new();
        let refuse = |taken: &[(&Slot, u64, Counted, i64)], refusal: Refusal| {
            for (slot, index, what, amount) in taken {
                slot.adjust(*index, *what, -amount);
            }
            Err(refusal)
        };
        for &(what, limit) in &policy.windowed {
            let amount = what.of(demand);
            let before = previous.count(at.index.wrapping_sub(1), what);
            let counter = &current.counts[what as usize];
            let result = counter.fetch_update(AcqRel, Acquire, |now| {
                (at.count(before, now).saturating_add(amount) <= limit).then_some(now + amount as i64)
            });
            match result {
                Ok(was) => {
                    taken.push((current, at.index, what, amount as i64));
                    let used = at.count(before, was + amount as i64);
                    let reset_ms = at.reset_ms(before, was + amount as i64, limit, 1);
                    headroom.push(Headroom { what, limit, remaining: limit.saturating_sub(used), reset_ms });
                }
                Err(now) => {
                    let reset_ms = at.reset_ms(before, now, limit, amount.min(limit));
                    return refuse(&taken, Refusal::over(policy, what, limit, reset_ms));
                }
            }
        }
        let cost = demand.cost_nano_usd as i64;
        for (slot, index, limit, period) in [
            (&self.day, day, policy.daily, super::Period::Day),
            (&self.month, month, policy.monthly, super::Period::Month),
        ] {
            let Some(limit) = limit else { continue };
            slot.roll(index);
            let result = slot.counts[Counted::Usd as usize].fetch_update(AcqRel, Acquire, |spent| {
                (spent.max(0) as u64 + cost as u64 <= limit).then_some(spent + cost)
            });
            if result.is_err() {
                return refuse(&taken, Refusal::budget(policy, period, now_ms));
            }
            taken.push((slot, index, Counted::Usd, cost));
        }
        if let Some(limit) = policy.concurrent {
            let result = self.in_flight.fetch_update(AcqRel, Acquire, |n| (n < limit).then_some(n + 1));
            if result.is_err() {
                return refuse(&taken, Refusal::concurrent(policy, limit));
            }
        }
        Ok(charge)
    }

    /// Corrects the charge to what the request really took, and ends its place among the
    /// requests in flight.
    pub fn settle(&self, policy: &Policy, charge: LocalCharge, reserved: &Demand, actual: &Demand) {
        let slot = &self.windows[(charge.window % 2) as usize];
        for &(what, _) in &policy.windowed {
            slot.adjust(charge.window, what, what.of(actual) as i64 - what.of(reserved) as i64);
        }
        let cost = actual.cost_nano_usd as i64 - reserved.cost_nano_usd as i64;
        if policy.daily.is_some() {
            self.day.adjust(charge.day, Counted::Usd, cost);
        }
        if policy.monthly.is_some() {
            self.month.adjust(charge.month, Counted::Usd, cost);
        }
        if policy.concurrent.is_some() {
            let _ = self.in_flight.fetch_update(AcqRel, Acquire, |n| n.checked_sub(1));
        }
    }
}

/// The UTC day (days since the epoch) and month (year × 12 + month) of `now_ms`.
fn calendar(now_ms: u64) -> (u64, u64) {
    let seconds = (now_ms / 1000) as i64;
    let (year, month, _) = switchboard_config::civil_date(seconds);
    (now_ms / 86_400_000, (year as u64) * 12 + u64::from(month))
}

const SHARDS: usize = 16;

/// How long a subject with a budget is kept after its last admission: past the end of any month.
const BUDGET_KEEP_MS: u64 = 32 * 86_400_000;

/// Every local subject, by [`Subject`] id. Reads are one `ArcSwap` load and a hash lookup; a
/// subject seen for the first time copies one shard (a sixteenth of the map), once.
pub struct LocalCounters {
    shards: [ArcSwap<HashMap<Subject, Arc<LocalSubject>>>; SHARDS],
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters { shards: std::array::from_fn(|_| ArcSwap::default()) }
    }
}

impl LocalCounters {
    pub fn subject(&self, id: Subject) -> Arc<LocalSubject> {
        let shard = &self.shards[(id % SHARDS as u64) as usize];
        if let Some(subject) = shard.load().get(&id) {
            return subject.clone();
        }
        let mut found = None;
        shard.rcu(|map| {
            let mut map = HashMap::clone(map);
            found = Some(map.entry(id).or_default().clone());
            map
        });
        found.unwrap_or_default()
    }

    /// How many subjects are held (a gauge of what local limits take in memory).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.load().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the subjects whose counts no longer matter at `now_ms` (nothing in flight, every
    /// window and budget period they counted over), so keys, teams and routes that left the
    /// config, or went quiet, do not hold memory forever. Returns how many were dropped.
    ///
    /// A request that looked its subject up just before the sweep may still charge the dropped
    /// copy; the subject was idle for two windows, so that is one request's count, at most.
    pub fn sweep(&self, now_ms: u64) -> usize {
        let idle = |subject: &LocalSubject| {
            subject.in_flight.load(Acquire) == 0 && subject.needed_until.load(Relaxed) <= now_ms
        };
        let before = self.len();
        for shard in &self.shards {
            if !shard.load().values().any(|subject| idle(subject)) {
                continue;
            }
            shard.rcu(|map| {
                let mut map = HashMap::clone(map);
                map.retain(|_, subject| !idle(subject));
                map
            });
        }
        before.saturating_sub(self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_config::{FailureMode, PolicyMode, PolicyScope};

    fn policy(window_ms: u64, windowed: Vec<(Counted, u64)>) -> Policy {
        Policy {
            name: "p".into(),
            scope: PolicyScope::Key,
            window_ms,
            windowed,
            daily: None,
            monthly: None,
            concurrent: None,
            mode: PolicyMode::Local,
            failure: FailureMode::Open,
        }
    }

    fn request(tokens: u64) -> Demand {
        Demand { requests: 1, input: tokens, output: 0, cost_nano_usd: 0 }
    }

    #[test]
    fn a_window_admits_exactly_its_limit_across_threads() {
        let policy = Arc::new(policy(60_000, vec![(Counted::Requests, 100)]));
        let subject = Arc::new(LocalSubject::default());
        let admitted = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        if subject.admit(&policy, &request(0), 1_000, &mut Vec::new()).is_ok() {
                            admitted.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Relaxed), 100);
    }

    #[test]
    fn a_refused_limit_gives_back_what_earlier_limits_took() {
        let policy = policy(60_000, vec![(Counted::Requests, 10), (Counted::InputTokens, 100)]);
        let subject = LocalSubject::default();
        assert!(subject.admit(&policy, &request(80), 0, &mut Vec::new()).is_ok());
        assert!(subject.admit(&policy, &request(30), 0, &mut Vec::new()).is_err());
        assert_eq!(subject.windows[0].count(0, Counted::Requests), 1, "the refused request was given back");
    }

    #[test]
    fn settlement_replaces_the_reservation_with_usage() {
        let policy = policy(60_000, vec![(Counted::TotalTokens, 1000)]);
        let subject = LocalSubject::default();
        let reserved = request(900);
        let charge = subject.admit(&policy, &reserved, 0, &mut Vec::new()).unwrap();
        assert!(subject.admit(&policy, &request(200), 0, &mut Vec::new()).is_err());
        subject.settle(&policy, charge, &reserved, &request(100));
        assert!(subject.admit(&policy, &request(800), 0, &mut Vec::new()).is_ok());
    }

    #[test]
    fn the_previous_window_still_counts_while_it_slides_out() {
        let policy = policy(60_000, vec![(Counted::Requests, 10)]);
        let subject = LocalSubject::default();
        for _ in 0..10 {
            assert!(subject.admit(&policy, &request(0), 59_000, &mut Vec::new()).is_ok());
        }
        // 1 s into the next window, the previous ten weigh 9.83: nothing fits.
        assert!(subject.admit(&policy, &request(0), 61_000, &mut Vec::new()).is_err());
        // Half way, they weigh 5: five fit.
        let admitted =
            (0..10).filter(|_| subject.admit(&policy, &request(0), 90_000, &mut Vec::new()).is_ok());
        assert_eq!(admitted.count(), 5);
    }

    #[test]
    fn idle_subjects_are_swept_once_their_windows_have_passed() {
        let policy = policy(60_000, vec![(Counted::Requests, 10)]);
        let counters = LocalCounters::default();
        let subject = counters.subject(7);
        assert!(subject.admit(&policy, &request(0), 1_000, &mut Vec::new()).is_ok());
        drop(subject);
        assert_eq!(counters.sweep(100_000), 0, "still within two windows of its last request");
        assert_eq!(counters.sweep(121_000), 1);
        assert!(counters.is_empty());
        let mut busy = policy;
        busy.concurrent = Some(1);
        let subject = counters.subject(8);
        assert!(subject.admit(&busy, &request(0), 1_000, &mut Vec::new()).is_ok());
        assert_eq!(counters.sweep(1_000_000), 0, "a request in flight keeps its subject");
    }

    #[test]
    fn concurrency_is_released_at_settlement() {
        let mut policy = policy(0, Vec::new());
        policy.concurrent = Some(2);
        let subject = LocalSubject::default();
        let first = subject.admit(&policy, &request(0), 0, &mut Vec::new()).unwrap();
        assert!(subject.admit(&policy, &request(0), 0, &mut Vec::new()).is_ok());
        assert!(subject.admit(&policy, &request(0), 0, &mut Vec::new()).is_err());
        subject.settle(&policy, first, &request(0), &request(0));
        assert!(subject.admit(&policy, &request(0), 0, &mut Vec::new()).is_ok());
    }
}
