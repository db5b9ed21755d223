//! The settlements on their way to Redis: one bounded queue, lock-free, that two kinds of
//! sender take from. Admissions on a connection of the gateway's own carry a few each, ahead of
//! their own commands ([`super::RedisStore::admit`]); the settler sends what no admission took
//! (`settle.rs`). Both take, so the queue is multi-consumer: tokio's and std's channels have one.

use super::settle::Settlement;
use crossbeam_queue::SegQueue;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use tokio::sync::Notify;

/// Settlements waiting; beyond this they are dropped (and counted), never allowed to hold
/// memory or the response path.
const CAPACITY: usize = 65_536;

pub(super) struct Pending {
    queue: SegQueue<Settlement>,
    /// How many are queued: the queue's own length is not kept, and the bound needs one.
    len: AtomicUsize,
    /// Whether the settler waits for a first settlement ([`Pending::wait`]), so that only then
    /// does a settlement wake it.
    settler_waits: AtomicBool,
    wake: Notify,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            queue: SegQueue::new(),
            len: AtomicUsize::new(0),
            settler_waits: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }
}

impl Pending {
    /// Queues `settlement`; `false` if the queue is full (it is dropped). Never waits.
    pub(super) fn push(&self, settlement: Settlement) -> bool {
        if self.len.fetch_add(1, Relaxed) >= CAPACITY {
            self.len.fetch_sub(1, Relaxed);
            return false;
        }
        self.queue.push(settlement);
        // Sequentially consistent with the settler's store and its look at the queue: either it
        // sees this settlement, or this sees it waiting.
        if self.settler_waits.load(SeqCst) && self.settler_waits.swap(false, SeqCst) {
            self.wake.notify_one();
        }
        true
    }

    /// Moves up to `max` queued settlements, oldest first, into `into`.
    pub(super) fn take(&self, max: usize, into: &mut Vec<Settlement>) {
        for _ in 0..max {
            let Some(settlement) = self.queue.pop() else { break };
            self.len.fetch_sub(1, Relaxed);
            into.push(settlement);
        }
    }

    /// For the settler: returns once a settlement is queued (at once if one is).
    pub(super) async fn wait(&self) {
        loop {
            self.settler_waits.store(true, SeqCst);
            if !self.queue.is_empty() {
                self.settler_waits.store(false, SeqCst);
                return;
            }
            self.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::policy::{Demand, Policy};
    use crate::limits::redis::RedisCharge;
    use std::sync::Arc;

    fn settlement() -> Settlement {
        Settlement {
            policy: Arc::new(Policy {
                name: "p".into(),
                scope: switchboard_config::PolicyScope::Key,
                window_ms: 1000,
                windowed: Vec::new(),
                daily: None,
                monthly: None,
                concurrent: None,
                mode: switchboard_config::PolicyMode::Redis,
                failure: switchboard_config::FailureMode::Open,
            }),
            charge: RedisCharge { tag: "t".into(), window: 0, day: None, month: None, member: None },
            reserved: Demand::default(),
            actual: Demand::default(),
        }
    }

    #[test]
    fn taken_oldest_first_up_to_the_most_asked_and_bounded() {
        let pending = Pending::default();
        for _ in 0..3 {
            assert!(pending.push(settlement()));
        }
        let mut taken = Vec::new();
        pending.take(2, &mut taken);
        assert_eq!(taken.len(), 2);
        pending.take(5, &mut taken);
        assert_eq!(taken.len(), 3);
        assert_eq!(pending.len.load(Relaxed), 0);
        pending.len.store(CAPACITY, Relaxed);
        assert!(!pending.push(settlement()), "a full queue drops");
        assert_eq!(pending.len.load(Relaxed), CAPACITY);
    }

    #[tokio::test]
    async fn the_settler_waits_until_a_settlement_comes() {
        let pending = Arc::new(Pending::default());
        let waiting = tokio::spawn({
            let pending = pending.clone();
            async move { pending.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert!(pending.push(settlement()));
        waiting.await.unwrap();
        pending.wait().await; // one is queued: at once
    }
}
