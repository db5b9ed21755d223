//! Settlement in Redis: each request's reservation replaced by what it took, sent off the
//! request path. [`RedisStore::settle`] queues a [`Settlement`]; one task ([`settler`]) gathers
//! them and sends each batch's corrections as pipelines on a connection of their own.

use super::{RedisCharge, RedisStore, signed, window_expiry};
use crate::limits::policy::{Counted, Demand, Policy};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::counters;
use switchboard_redis::{Arg, Commands};
use tokio::sync::mpsc;

/// One request's reservation and what it took, for the counters its charge names.
pub(super) struct Settlement {
    pub(super) policy: Arc<Policy>,
    pub(super) charge: RedisCharge,
    pub(super) reserved: Demand,
    pub(super) actual: Demand,
}

/// How long the settler lets settlements gather before sending them: one round trip then
/// carries every settlement of the last millisecond instead of one per request, so settling never
/// takes turns with admissions for Redis. Delaying a settlement only keeps a reservation (and, for
/// other replicas, an in-flight place: this one's next admission frees it, `released.rs`) a
/// millisecond longer: an error on the side of the limit.
const SETTLE_LINGER: Duration = Duration::from_millis(1);

/// How many empty lingers in a row (100 ms) before the settler waits on the queue again.
const QUIET_LINGERS: u32 = 100;

/// Sends queued settlements in batches. On a single Redis a batch is one pipeline; on a cluster,
/// where a pipeline must stay in one slot, each subject's corrections are one pipeline, all sent
/// at once.
///
/// While settlements keep coming the settler looks at the queue every [`SETTLE_LINGER`] instead
/// of waiting on it: a task waiting on a queue is woken by the sender, and that wake-up (often a
/// futex call and a halted vCPU to wake) is paid on the settling request's thread as hyper
/// finishes its response (the ledger settles when the response body is dropped). After
/// [`QUIET_LINGERS`] empty looks it waits on the queue again, so an idle gateway does not wake.
pub(super) async fn settler(store: RedisStore, mut queue: mpsc::Receiver<Settlement>) {
    let mut batch = Vec::with_capacity(1024);
    while queue.recv_many(&mut batch, 1024).await > 0 {
        let mut quiet = 0;
        while quiet < QUIET_LINGERS {
            tokio::time::sleep(SETTLE_LINGER).await;
            while batch.len() < 1024
                && let Ok(settlement) = queue.try_recv()
            {
                batch.push(settlement);
            }
            if batch.is_empty() {
                quiet += 1;
                continue;
            }
            quiet = 0;
            send(&store, &mut batch).await;
        }
    }
}

/// Sends `batch` (emptied), waiting for every pipeline's answer.
async fn send(store: &RedisStore, batch: &mut Vec<Settlement>) {
    let now_index = |window_ms: u64| crate::unix_now_ms() / window_ms.max(1);
    // Each pipeline, with the places in flight it gives back (to cross out once Redis has them).
    let mut pipelines: Vec<(Commands, Vec<(String, String)>)> = Vec::new();
    let single = !store.inner.client.is_cluster();
    for s in batch.drain(..) {
        let index = now_index(s.policy.window_ms);
        if !single || pipelines.is_empty() {
            pipelines.push((Commands::pipeline(), Vec::new()));
        }
        if let Some((pipeline, places)) = pipelines.last_mut() {
            corrections(pipeline, &store.inner.prefix, &s, index);
            if let Some(member) = s.charge.member {
                places.push((s.charge.tag, member));
            }
        }
    }
    let calls = pipelines.into_iter().filter(|(p, _)| !p.is_empty()).map(|(mut pipeline, places)| {
        let store = store.clone();
        async move {
            // While Redis answers, the background connection; while it does not, the shared one,
            // which reconnects with a backoff (as admissions do).
            let client = &store.inner.client;
            let connection = if store.is_up() { client.background_connection() } else { client.connection() };
            match store.run(connection, |mut conn| async move { conn.send(&mut pipeline).await }).await {
                Ok(_) => forget(&store, &places),
                Err(()) => {
                    store.inner.settle_errors.fetch_add(1, Relaxed);
                }
            }
        }
    });
    futures_util::future::join_all(calls).await;
}

/// Crosses out the places Redis now has back (`released.rs`), each subject's at once.
fn forget(store: &RedisStore, places: &[(String, String)]) {
    let mut by_subject: HashMap<&str, HashSet<&str>> = HashMap::new();
    for (tag, member) in places {
        by_subject.entry(tag).or_default().insert(member);
    }
    for (tag, members) in by_subject {
        store.inner.released.forget(tag, &members);
    }
}

impl Settlement {
    /// What a windowed limit's counter must be corrected by: taken minus reserved.
    fn window_delta(&self, what: Counted) -> i64 {
        signed(what.of(&self.actual)) - signed(what.of(&self.reserved))
    }

    /// What the spend counters must be corrected by, in nano-dollars.
    fn cost_delta(&self) -> i64 {
        signed(self.actual.cost_nano_usd) - signed(self.reserved.cost_nano_usd)
    }

    /// Whether [`corrections`] would send nothing: the reservation was exactly what the request
    /// took and no place in flight is held.
    pub(super) fn changes_nothing(&self) -> bool {
        self.charge.member.is_none()
            && self.policy.windowed.iter().all(|&(what, _)| self.window_delta(what) == 0)
            && (self.charge.day.is_none() && self.charge.month.is_none() || self.cost_delta() == 0)
    }
}

/// Adds the commands that turn one reservation into what the request took (none if nothing
/// changes).
fn corrections(pipeline: &mut Commands, prefix: &str, s: &Settlement, now_index: u64) {
    let tag = s.charge.tag.as_str();
    // A window two or more behind no longer counts: correcting it would only leave a stray field.
    if now_index <= s.charge.window + 1 {
        let mut index = itoa::Buffer::new();
        let index = index.format(s.charge.window);
        let expires_at = Arg::Int(window_expiry(s.charge.window, s.policy.window_ms));
        for &(what, _) in &s.policy.windowed {
            let delta = s.window_delta(what);
            if delta != 0 {
                let counter = counters::window_counter_parts(prefix, tag, what.field(), index);
                pipeline.push(&[Arg::Text("INCRBY"), Arg::Joined(&counter), Arg::Int(delta)]);
                pipeline.push(&[Arg::Text("PEXPIREAT"), Arg::Joined(&counter), expires_at]);
            }
        }
    }
    let cost = s.cost_delta();
    if cost != 0 {
        for counter in [&s.charge.day, &s.charge.month].into_iter().flatten() {
            pipeline.push(&[Arg::Text("INCRBY"), Arg::Text(counter), Arg::Int(cost)]);
        }
    }
    if let Some(member) = &s.charge.member {
        let flying = counters::counter_parts(prefix, tag, "flying");
        pipeline.push(&[Arg::Text("ZREM"), Arg::Joined(&flying), Arg::Text(member)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settlement_corrects_only_what_changed() {
        let policy = Arc::new(Policy {
            name: "p".into(),
            scope: switchboard_config::PolicyScope::Key,
            window_ms: 60_000,
            windowed: vec![(Counted::Requests, 10), (Counted::TotalTokens, 1000)],
            daily: Some(1),
            monthly: None,
            concurrent: Some(2),
            mode: switchboard_config::PolicyMode::Redis,
            failure: switchboard_config::FailureMode::Open,
        });
        let charge = RedisCharge {
            tag: "k p key".into(),
            window: 7,
            day: Some("sb:{k p key}:usd:d:20261202".into()),
            month: None,
            member: Some("r:1".into()),
        };
        let reserved = Demand { requests: 1, input: 100, output: 500, cost_nano_usd: 10 };
        let actual = Demand { requests: 1, input: 100, output: 20, cost_nano_usd: 4 };
        let settlement = Settlement { policy, charge, reserved, actual };
        let commands = |p: &Commands| -> Vec<String> {
            p.to_pipeline()
                .cmd_iter()
                .map(|c| {
                    c.args_iter()
                        .map(|a| match a {
                            ::redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                            _ => String::new(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect()
        };
        let mut pipeline = Commands::pipeline();
        corrections(&mut pipeline, "sb", &settlement, 8);
        assert_eq!(
            commands(&pipeline),
            [
                "INCRBY sb:{k p key}:tot:7 -480",
                "PEXPIREAT sb:{k p key}:tot:7 600000",
                "INCRBY sb:{k p key}:usd:d:20261202 -6",
                "ZREM sb:{k p key}:flying r:1"
            ]
        );
        let mut late = Commands::pipeline();
        corrections(&mut late, "sb", &settlement, 9);
        assert_eq!(commands(&late).len(), 2, "a window that slid out is left alone");
        assert!(!settlement.changes_nothing());
        let Settlement { policy, mut charge, .. } = settlement;
        charge.member = None;
        let exact = Settlement { policy, charge, reserved: actual, actual };
        assert!(exact.changes_nothing(), "nothing to send: the settler is not woken");
    }
}
