//! Settlement in Redis: each request's reservation replaced by what it took, sent off the
//! request path. [`RedisStore::settle`] queues a [`Settlement`] (`pending.rs`); on a single Redis
//! the next admissions carry it ahead of their own commands, in their own write ([`ahead`]); one
//! task ([`settler`]) gathers what none took and sends it as pipelines on a connection of their
//! own.

use super::{RedisCharge, RedisStore, signed, window_expiry};
use crate::limits::policy::{Counted, Demand, Policy};
use ::redis::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::counters;
use switchboard_redis::{Arg, Commands};

/// One request's reservation and what it took, for the counters its charge names.
pub(super) struct Settlement {
    pub(super) policy: Arc<Policy>,
    pub(super) charge: RedisCharge,
    pub(super) reserved: Demand,
    pub(super) actual: Demand,
}

/// How many queued settlements one admission carries at most: under steady traffic about one
/// ends per admission, and a few more cover a burst of endings without making one admission
/// wait on Redis for many (each carried settlement is two to four commands, ~1 µs of Redis's
/// time).
pub(super) const CARRIED_PER_ADMISSION: usize = 4;

/// How long the settler lets settlements gather before sending what no admission took. On a
/// single Redis admissions carry nearly all of them, and the settler is for the last ones before
/// traffic pauses: it looks every 10 ms, not more often, because each look is a wake-up that takes
/// its turn on the two cores with the requests (bench/governed-3.md). On a cluster nothing is
/// carried (a write may touch one slot only), so it looks every millisecond: one round trip then
/// carries every settlement of the last millisecond instead of one per request. Either way a
/// settlement delayed only keeps a reservation (and, for other replicas, an in-flight place: this
/// one's next admission frees it, `released.rs`) a little longer: an error on the side of the
/// limit.
const SETTLE_LINGER: Duration = Duration::from_millis(10);
const SETTLE_LINGER_CLUSTER: Duration = Duration::from_millis(1);

/// How long without a settlement before the settler waits on the queue again.
const QUIET: Duration = Duration::from_millis(100);

/// Sends queued settlements in batches. On a single Redis a batch is one pipeline; on a cluster,
/// where a pipeline must stay in one slot, each subject's corrections are one pipeline, all sent
/// at once.
///
/// While settlements keep coming the settler looks at the queue every linger instead of waiting
/// on it: a task waiting on a queue is woken by the sender, and that wake-up (often a futex call
/// and a halted vCPU to wake) is paid on the settling request's thread as hyper finishes its
/// response (the ledger settles when the response body is dropped). After [`QUIET`] with nothing
/// to send it waits on the queue again, so an idle gateway does not wake.
pub(super) async fn settler(store: RedisStore) {
    let linger = if store.inner.client.is_cluster() { SETTLE_LINGER_CLUSTER } else { SETTLE_LINGER };
    let quiet_lingers = QUIET.as_millis() / linger.as_millis().max(1);
    let pending = &store.inner.pending;
    let mut batch = Vec::with_capacity(1024);
    loop {
        pending.wait().await;
        let mut quiet = 0;
        while quiet < quiet_lingers {
            tokio::time::sleep(linger).await;
            pending.take(1024, &mut batch);
            if batch.is_empty() {
                quiet += 1;
                continue;
            }
            quiet = 0;
            send(&store, &mut batch).await;
        }
    }
}

/// The commands that settle `carried`, for an admission to write ahead of its own.
pub(super) fn ahead(prefix: &str, carried: &[Settlement]) -> Commands {
    let mut commands = Commands::pipeline();
    for s in carried {
        corrections(&mut commands, prefix, s, window_index_now(&s.policy));
    }
    commands
}

/// Once an admission that carried `carried` has its answer: their `replies` (`None` if the call
/// failed). Like a batch of the settler's, a failure is counted and not sent again: whether
/// Redis applied an `INCRBY` that got no answer is unknown.
pub(super) fn carried_answered(store: &RedisStore, carried: &[Settlement], replies: Option<&[Value]>) {
    let failed = replies.is_none_or(|replies| replies.iter().any(|r| matches!(r, Value::ServerError(_))));
    if failed {
        store.inner.settle_errors.fetch_add(1, Relaxed);
        return;
    }
    forget(store, carried.iter().filter_map(|s| Some((s.charge.tag.as_str(), s.charge.member.as_deref()?))));
}

/// The window a settlement of `policy` made now falls in.
fn window_index_now(policy: &Policy) -> u64 {
    crate::unix_now_ms() / policy.window_ms.max(1)
}

/// Sends `batch` (emptied), waiting for every pipeline's answer.
async fn send(store: &RedisStore, batch: &mut Vec<Settlement>) {
    // Each pipeline, with the places in flight it gives back (to cross out once Redis has them).
    let mut pipelines: Vec<(Commands, Vec<(String, String)>)> = Vec::new();
    let single = !store.inner.client.is_cluster();
    for s in batch.drain(..) {
        let index = window_index_now(&s.policy);
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
                Ok(_) => forget(&store, places.iter().map(|(tag, member)| (tag.as_str(), member.as_str()))),
                Err(()) => {
                    store.inner.settle_errors.fetch_add(1, Relaxed);
                }
            }
        }
    });
    futures_util::future::join_all(calls).await;
}

/// Crosses out the places Redis now has back (`released.rs`), each subject's at once.
fn forget<'a>(store: &RedisStore, places: impl IntoIterator<Item = (&'a str, &'a str)>) {
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

    /// A real Redis: what the settler would send a linger later, the next admission carries, so
    /// its own count already has the correction; and a correction Redis refuses is counted
    /// without failing the admission that carried it (another subject's).
    #[tokio::test]
    async fn the_next_admission_carries_queued_settlements() {
        let redis = switchboard_test_redis::RedisServer::start();
        let settings = switchboard_redis::RedisSettings {
            urls: vec![redis.url()],
            cluster: false,
            password: None,
            timeout: Duration::from_secs(5),
            prefix: "sb".into(),
        };
        let store = RedisStore::connect(&settings).await.unwrap();
        let policy = Arc::new(Policy {
            name: "tokens".into(),
            scope: switchboard_config::PolicyScope::Key,
            window_ms: 1 << 50, // one window for the whole test
            windowed: vec![(Counted::TotalTokens, 1000)],
            daily: None,
            monthly: None,
            concurrent: None,
            mode: switchboard_config::PolicyMode::Redis,
            failure: switchboard_config::FailureMode::Closed,
        });
        let reserved = Demand { requests: 1, input: 100, output: 500, cost_nano_usd: 0 };
        let took = Demand { output: 20, ..reserved };
        let admit = async |tag: &str| match store.admit(policy.clone(), tag.into(), reserved).await {
            Ok(admitted) => admitted,
            Err(_) => panic!("{tag}: not admitted"),
        };

        let (charge, _) = admit("a").await;
        // The test's runtime has one thread and nothing yields between the two: the settler,
        // woken by the first settlement, cannot have taken it.
        store.settle(policy.clone(), charge, reserved, took);
        let (charge, headroom) = admit("a").await;
        assert_eq!(headroom[0].remaining, 1000 - 120 - 600, "the first request counts as what it took");
        assert_eq!(store.settle_errors(), 0);

        let counter = counters::window_counter_parts("sb", "a", "tot", "0").concat();
        assert_eq!(redis.cli(&["SET", &counter, "not a number"]), "OK");
        store.settle(policy.clone(), charge, reserved, took);
        let (_, headroom) = admit("b").await;
        assert_eq!(headroom[0].remaining, 1000 - 600);
        assert_eq!(store.settle_errors(), 1, "the refused correction is counted");
    }
}
