//! Counters in Redis (`mode: redis`): limits and budgets that hold across the fleet.
//!
//! Admission is one pipeline of commands per counter subject (one round trip). It charges the
//! request to each of the subject's counters first: an `INCRBY` on the current fixed window of
//! each windowed limit (one integer key per window, `…:tot:<window index>`), on today's and this
//! month's spend, a `ZADD` to the in-flight set. In the same pipeline it reads what the decision
//! needs: the previous windows (one `MGET`) and the number in flight. The gateway then decides
//! from the counts that include its own charge, and a refused request's charges are given back by
//! the settler like any settlement. The pipeline is a transaction (`MULTI` … `EXEC`) only for a
//! policy that limits requests in flight (why: [`RedisStore::admission_commands`]). Every key
//! shares the subject's hash tag (`switchboard_config::counters`), so the same commands work on a
//! single Redis and on Redis Cluster. Window indices come from the replica's clock: replicas a
//! few milliseconds apart disagree only about requests at a window's edge.
//!
//! Why charge first and decide after, instead of a script deciding inside Redis: a Lua script took
//! 20–40 µs of Redis's time per admission on the benchmark VM, these plain commands ~5 µs, and
//! what an admission asks of Redis adds to every governed request's latency
//! (bench/governed.md). Exactness holds: each count a request sees includes every charge made
//! before its own, so the admitted never exceed a limit (a refused charge not yet given back only
//! makes counts larger). For one-unit charges (requests, places in flight) the first refusal comes
//! only once the limit is reached; after that, or for amounts (tokens, dollars), a refused
//! request's charge can refuse another during the millisecond or so before it is given back: an
//! error on the side of the limit.
//!
//! Settlements never wait on the response path: the ledger queues them ([`RedisStore::settle`],
//! `redis/pending.rs`). On a single Redis the next admissions carry them, a few each, written
//! ahead of their own commands in the same write: no round trip, wake-up or Redis wake of their
//! own, which in a closed loop cost each Redis-route request ~40 µs at p50 (bench/governed-3.md).
//! What no admission takes (the last settlements before traffic pauses, and all of them on a
//! cluster, where a write may touch one slot only) one task sends, many at once on a connection
//! of their own, each subject's corrections as one pipeline (`redis/settle.rs`). A place in
//! flight given back is also noted in the replica, for its subject's next admission there to
//! remove (`redis/released.rs`).
//!
//! Both are written as [`Commands`], straight into the bytes Redis reads: through redis-rs's
//! `Pipeline` the admission's commands alone took ~16,000 instructions per request.
//!
//! Redis being down or slow never hangs a request: every call has `--redis-timeout`. Failures
//! are counted, logged once per transition (down, then back), and answered by each policy's
//! failure mode; the connection reconnects by itself, so enforcement resumes when Redis returns.

mod pending;
mod released;
mod settle;

use super::policy::{Counted, Demand, Policy};
use super::window::WindowPosition;
use super::{Headroom, Period, Refusal};
use crate::metrics::{AtomicHistogram, REDIS_BOUNDS};
use ::redis::Value;
use pending::Pending;
use released::Released;
use settle::{CARRIED_PER_ADMISSION, Settlement, settler};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use switchboard_config::counters;
use switchboard_redis::{AnyConnection, Arg, Commands, RedisClient};

pub use switchboard_redis::RedisSettings;

/// A request holds a place among a subject's requests in flight at most this long: if its
/// replica dies without settling, the place frees itself.
const IN_FLIGHT_LEASE_MS: u64 = 600_000;

/// Budget counters outlive their day and month by a day, so a settlement that arrives after
/// midnight still finds the counter it corrects.
const DAY_COUNTER_TTL_MS: i64 = 2 * 86_400_000;
const MONTH_COUNTER_TTL_MS: i64 = 32 * 86_400_000;

/// Where a Redis charge went, so its settlement corrects the same counters.
pub struct RedisCharge {
    tag: String,
    /// The window index charged.
    window: u64,
    day: Option<String>,
    month: Option<String>,
    member: Option<String>,
}

pub enum AdmitError {
    Refused(Refusal),
    /// Redis did not answer in time, or answered with an error.
    Unavailable,
}

/// The Redis side of limits: shared by every request (cheap to clone).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: RedisClient,
    timeout: Duration,
    prefix: String,
    /// Settlements on their way to Redis.
    pending: Pending,
    /// Distinguishes this process's in-flight members from other replicas'.
    replica: String,
    sequence: AtomicU64,
    up: AtomicBool,
    /// Places in flight given back on this replica, for the next admission of their subject.
    released: Released,
    /// Calls that failed or timed out, by operation.
    pub admit_errors: AtomicU64,
    pub settle_errors: AtomicU64,
    /// Settlements dropped because the queue was full.
    pub settle_dropped: AtomicU64,
    /// How long each admission call took, as the request path waited for it.
    admit_latency: AtomicHistogram<{ REDIS_BOUNDS.len() }>,
}

impl RedisStore {
    /// Connects, waiting up to the timeout so a replica starts counting from its first request,
    /// and starts the settler. A Redis that is down at startup is retried in the background,
    /// never fatal. Fails only on settings that cannot work (a malformed URL).
    pub async fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let client = RedisClient::connect(settings).await?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                client,
                timeout: settings.timeout,
                prefix: settings.prefix.clone(),
                pending: Pending::default(),
                replica: replica_nonce(),
                sequence: AtomicU64::new(0),
                up: AtomicBool::new(true),
                released: Released::default(),
                admit_errors: AtomicU64::new(0),
                settle_errors: AtomicU64::new(0),
                settle_dropped: AtomicU64::new(0),
                admit_latency: AtomicHistogram::new(&REDIS_BOUNDS),
            }),
        };
        tokio::spawn(settler(store.clone()));
        Ok(store)
    }

    pub fn is_up(&self) -> bool {
        self.inner.up.load(Relaxed)
    }

    pub fn admit_errors(&self) -> u64 {
        self.inner.admit_errors.load(Relaxed)
    }

    pub fn settle_errors(&self) -> u64 {
        self.inner.settle_errors.load(Relaxed)
    }

    pub fn admit_latency(&self) -> &AtomicHistogram<{ REDIS_BOUNDS.len() }> {
        &self.inner.admit_latency
    }

    pub fn settle_dropped(&self) -> u64 {
        self.inner.settle_dropped.load(Relaxed)
    }

    /// Charges one subject's counters and decides (see the module's documentation).
    pub async fn admit(
        &self,
        policy: Arc<Policy>,
        tag: String,
        demand: Demand,
    ) -> Result<(RedisCharge, Vec<Headroom>), AdmitError> {
        let inner = &self.inner;
        let now_ms = crate::unix_now_ms();
        let at = WindowPosition::at(now_ms, policy.window_ms);
        let name = |counter: &str| counters::counter(&inner.prefix, &tag, counter);
        // Today's and this month's counter names only for a policy with a budget: they are two
        // formatted strings per admission otherwise thrown away.
        let (day, month) = match (policy.daily, policy.monthly) {
            (None, None) => (None, None),
            (daily, monthly) => {
                let (day, month) = counters::spend_counters(crate::unix_now());
                (daily.map(|_| name(&day)), monthly.map(|_| name(&month)))
            }
        };
        let member =
            policy.concurrent.map(|_| format!("{}:{}", inner.replica, inner.sequence.fetch_add(1, Relaxed)));
        // The places this replica has given back that Redis may not know of yet: this admission
        // removes them before it counts (`redis/released.rs`).
        let given_back = if member.is_some() { inner.released.of(&tag) } else { Vec::new() };
        let charge = RedisCharge { window: at.index, day, month, member, tag };
        // A connection of its own while Redis answers; while it does not, the shared one, which
        // reconnects with a backoff instead of each request trying to connect.
        let connection = if self.is_up() { inner.client.own_connection() } else { inner.client.connection() };
        // Settlements ride along on a connection of the gateway's own, which only a single Redis
        // has (one write may then touch any key), answered apart (`Commands::transaction_after`).
        let mut carried = Vec::new();
        if matches!(connection, Some(AnyConnection::Direct(_))) {
            inner.pending.take(CARRIED_PER_ADMISSION, &mut carried);
        }
        let ahead = settle::ahead(&inner.prefix, &carried);
        let ahead_replies = ahead.replies();
        let mut commands = self.admission_commands(&policy, &charge, &demand, now_ms, &given_back, ahead);
        let started = std::time::Instant::now();
        let reply = self.run(connection, |mut conn| async move { conn.send(&mut commands).await }).await;
        inner.admit_latency.observe(started.elapsed());
        // The carried settlements' replies come first.
        let (carried_replies, own) = match &reply {
            Ok(results) if results.len() >= ahead_replies => {
                let (carried_replies, own) = results.split_at(ahead_replies);
                (Some(carried_replies), Some(own))
            }
            _ => (None, None),
        };
        if !carried.is_empty() {
            settle::carried_answered(self, &carried, carried_replies);
        }
        let parsed = |results: &[Value]| Counts::parse(results, &policy, !given_back.is_empty());
        let Some(counts) = own.and_then(parsed) else {
            inner.admit_errors.fetch_add(1, Relaxed);
            return Err(AdmitError::Unavailable);
        };
        if !given_back.is_empty() {
            // Redis has them now (also any whose settlement was dropped from a full queue).
            inner.released.forget(&charge.tag, &given_back.iter().map(String::as_str).collect());
        }
        match counts.decide(&policy, at, &demand, now_ms) {
            Ok(headroom) => Ok((charge, headroom)),
            Err(refusal) => {
                // Give back everything this request was charged: settled at nothing, like any
                // request that did not happen.
                self.settle(policy, charge, demand, Demand::default());
                Err(AdmitError::Refused(refusal))
            }
        }
    }

    /// The admission's commands, written after `ahead` (settlements it carries): charge every
    /// counter `charge` names, and read the previous windows and the number in flight.
    /// [`Counts::parse`] reads their results in this order.
    fn admission_commands(
        &self,
        policy: &Policy,
        charge: &RedisCharge,
        demand: &Demand,
        now_ms: u64,
        given_back: &[String],
        ahead: Commands,
    ) -> Commands {
        let (prefix, tag) = (self.inner.prefix.as_str(), charge.tag.as_str());
        let at = WindowPosition::at(now_ms, policy.window_ms);
        let (mut current, mut previous) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (current, previous) = (current.format(at.index), previous.format(at.index.wrapping_sub(1)));
        let window = |what: Counted, index| counters::window_counter_parts(prefix, tag, what.field(), index);
        // Every charge is exact on its own (an `INCRBY` answers the count with it), so the
        // commands need not run as one unit, and a transaction costs Redis more than the commands
        // in it (~10 µs at p50 on the benchmark VM, bench/governed-2.md). Except for the in-flight
        // set: another request's `ZADD` between this one's `ZADD` and `ZCARD` would be counted by
        // both, and two requests could refuse each other for one free place.
        let mut commands = if policy.concurrent.is_some() {
            Commands::transaction_after(ahead)
        } else {
            Commands::pipeline_after(ahead)
        };
        if !policy.windowed.is_empty() {
            let names: Vec<_> = policy.windowed.iter().map(|&(what, _)| window(what, previous)).collect();
            let mut mget = Vec::with_capacity(1 + names.len());
            mget.push(Arg::Text("MGET"));
            mget.extend(names.iter().map(|name| Arg::Joined(name)));
            commands.push(&mget);
        }
        let expires_at = window_expiry(at.index, policy.window_ms);
        for &(what, _) in &policy.windowed {
            let counter = window(what, current);
            commands.push(&[Arg::Text("INCRBY"), Arg::Joined(&counter), Arg::Int(signed(what.of(demand)))]);
            commands.push(&[Arg::Text("PEXPIREAT"), Arg::Joined(&counter), Arg::Int(expires_at)]);
        }
        for (counter, ttl) in [(&charge.day, DAY_COUNTER_TTL_MS), (&charge.month, MONTH_COUNTER_TTL_MS)] {
            if let Some(counter) = counter {
                commands.push(&[
                    Arg::Text("INCRBY"),
                    Arg::Text(counter),
                    Arg::Int(signed(demand.cost_nano_usd)),
                ]);
                commands.push(&[Arg::Text("PEXPIRE"), Arg::Text(counter), Arg::Int(ttl)]);
            }
        }
        if let Some(member) = &charge.member {
            let flying = counters::counter_parts(prefix, tag, "flying");
            let flying = Arg::Joined(&flying);
            if !given_back.is_empty() {
                let mut zrem = Vec::with_capacity(2 + given_back.len());
                zrem.extend([Arg::Text("ZREM"), flying]);
                zrem.extend(given_back.iter().map(|member| Arg::Text(member)));
                commands.push(&zrem);
            }
            let now = Arg::Int(signed(now_ms));
            commands.push(&[Arg::Text("ZREMRANGEBYSCORE"), flying, Arg::Text("-inf"), now]);
            let lease_ends = Arg::Int(signed(now_ms + IN_FLIGHT_LEASE_MS));
            commands.push(&[Arg::Text("ZADD"), flying, lease_ends, Arg::Text(member)]);
            commands.push(&[Arg::Text("ZCARD"), flying]);
            commands.push(&[Arg::Text("PEXPIRE"), flying, Arg::Int(signed(IN_FLIGHT_LEASE_MS))]);
        }
        commands
    }

    /// Queues a settlement; never waits (a full queue drops it and counts the drop).
    pub fn settle(&self, policy: Arc<Policy>, charge: RedisCharge, reserved: Demand, actual: Demand) {
        if let Some(member) = &charge.member {
            self.inner.released.give_back(&charge.tag, member);
        }
        let settlement = Settlement { policy, charge, reserved, actual };
        if settlement.changes_nothing() {
            // A request limit, say, whose reservation was the request: no need to wake the
            // settler (and share two cores with it) for nothing.
            return;
        }
        if !self.inner.pending.push(settlement) && self.inner.settle_dropped.fetch_add(1, Relaxed) == 0 {
            tracing::warn!("the Redis settlement queue is full; dropping settlements (counted in metrics)");
        }
    }

    /// Runs one call on `connection` with the timeout, and keeps the up/down state (logged
    /// once per transition).
    async fn run<T, F, Fut>(&self, connection: Option<AnyConnection>, call: F) -> Result<T, ()>
    where
        F: FnOnce(AnyConnection) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        let inner = &self.inner;
        let Some(conn) = connection else {
            self.mark(false, "the cluster has not answered yet");
            return Err(());
        };
        match tokio::time::timeout(inner.timeout, call(conn)).await {
            Ok(Ok(value)) => {
                self.mark(true, "");
                Ok(value)
            }
            Ok(Err(err)) => {
                self.mark(false, &err.to_string());
                Err(())
            }
            Err(_) => {
                self.mark(false, &format!("no answer within {} ms", inner.timeout.as_millis()));
                Err(())
            }
        }
    }

    fn mark(&self, up: bool, reason: &str) {
        if self.inner.up.swap(up, Relaxed) != up {
            if up {
                tracing::info!("Redis answers again; fleet-wide limits are enforced");
            } else {
                tracing::warn!(reason, "Redis is unreachable; redis policies follow their failureMode");
            }
        }
    }
}

/// What one admission's commands answered, in the order they asked (see [`RedisStore::admit`]).
struct Counts {
    /// Each windowed limit's count in the previous and in the current window, the latter with
    /// this request's charge.
    previous: Vec<i64>,
    current: Vec<i64>,
    /// Today's and this month's spend and the number in flight, this request included; `None`
    /// where the policy has no such limit.
    day: Option<i64>,
    month: Option<i64>,
    flying: Option<u64>,
}

impl Counts {
    /// Reads the admission's results ([`RedisStore::admission_commands`], which removed places
    /// given back if `gave_back`); `None` if they do not have its shape (they always have, from
    /// a Redis).
    fn parse(results: &[Value], policy: &Policy, gave_back: bool) -> Option<Self> {
        let int = |value: &Value| match value {
            Value::Int(n) => Some(*n),
            _ => None,
        };
        let mut results = results.iter();
        let n = policy.windowed.len();
        let previous = match n {
            0 => Vec::new(),
            _ => match results.next()? {
                // MGET: a window nobody was charged in is a missing key.
                Value::Array(counts) if counts.len() == n => {
                    counts.iter().map(stored_count).collect::<Option<Vec<i64>>>()?
                }
                _ => return None,
            },
        };
        let mut current = Vec::with_capacity(n);
        for _ in 0..n {
            current.push(int(results.next()?)?); // INCRBY
            results.next()?; // PEXPIREAT
        }
        let mut spent = |charged: bool| -> Option<Option<i64>> {
            if !charged {
                return Some(None);
            }
            let spent = int(results.next()?)?; // INCRBY
            results.next()?; // PEXPIRE
            Some(Some(spent))
        };
        let (day, month) = (spent(policy.daily.is_some())?, spent(policy.monthly.is_some())?);
        let flying = match policy.concurrent {
            None => None,
            Some(_) => {
                if gave_back {
                    results.next()?; // ZREM
                }
                results.next()?; // ZREMRANGEBYSCORE
                results.next()?; // ZADD
                let flying = int(results.next()?)?; // ZCARD
                results.next()?; // PEXPIRE
                Some(flying.max(0) as u64)
            }
        };
        results.next().is_none().then_some(Counts { previous, current, day, month, flying })
    }

    /// Admits if every count, this request's charge included, is within its limit; the
    /// headroom left under each windowed limit, or why not.
    fn decide(
        &self,
        policy: &Policy,
        at: WindowPosition,
        demand: &Demand,
        now_ms: u64,
    ) -> Result<Vec<Headroom>, Refusal> {
        let mut headroom = Vec::with_capacity(policy.windowed.len());
        for (i, &(what, limit)) in policy.windowed.iter().enumerate() {
            let (previous, current) = (self.previous[i], self.current[i]);
            let amount = what.of(demand);
            let before = current.saturating_sub(signed(amount));
            if at.count(previous, before).saturating_add(amount) > limit {
                let reset = at.reset_ms(previous, before, limit, amount.min(limit));
                return Err(Refusal::over(policy, what, limit, reset));
            }
            let used = at.count(previous, current);
            let reset_ms = at.reset_ms(previous, current, limit, 1);
            headroom.push(Headroom { what, limit, remaining: limit.saturating_sub(used), reset_ms });
        }
        let over_budget = |spent: Option<i64>, limit: Option<u64>| match (spent, limit) {
            (Some(spent), Some(limit)) => {
                let before = spent.saturating_sub(signed(demand.cost_nano_usd)).max(0) as u64;
                before.saturating_add(demand.cost_nano_usd) > limit
            }
            _ => false,
        };
        if over_budget(self.day, policy.daily) {
            return Err(Refusal::budget(policy, Period::Day, now_ms));
        }
        if over_budget(self.month, policy.monthly) {
            return Err(Refusal::budget(policy, Period::Month, now_ms));
        }
        if let (Some(flying), Some(limit)) = (self.flying, policy.concurrent)
            && flying > limit
        {
            return Err(Refusal::concurrent(policy, limit));
        }
        Ok(headroom)
    }
}

/// A counter's value as `GET`/`MGET` answer it: a decimal in a bulk string, or nothing for a
/// counter that does not exist (yet, or any more).
fn stored_count(value: &Value) -> Option<i64> {
    match value {
        Value::Nil => Some(0),
        Value::BulkString(digits) => std::str::from_utf8(digits).ok()?.parse().ok(),
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

/// An amount as Redis's signed integers.
fn signed(amount: u64) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

/// When a window's counter expires: once its window and the next are over (it is the previous
/// window while the next one runs), plus one more window so a replica whose clock is a little
/// behind still reads it. The same instant for every charge to it, from every replica.
fn window_expiry(index: u64, window_ms: u64) -> i64 {
    i64::try_from(index.saturating_add(3).saturating_mul(window_ms)).unwrap_or(i64::MAX)
}

/// 8 random bytes in hex: this process's prefix for in-flight members.
fn replica_nonce() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::RefusalReason;
    use crate::limits::policy::Counted;

    #[test]
    fn admission_decides_from_the_counts_that_include_its_own_charge() {
        use ::redis::Value::{Array, BulkString, Int, Nil};
        let policy = Policy {
            name: "p".into(),
            scope: switchboard_config::PolicyScope::Key,
            window_ms: 60_000,
            windowed: vec![(Counted::Requests, 2)],
            daily: Some(100),
            monthly: None,
            concurrent: Some(2),
            mode: switchboard_config::PolicyMode::Redis,
            failure: switchboard_config::FailureMode::Closed,
        };
        let demand = Demand { requests: 1, input: 0, output: 0, cost_nano_usd: 40 };
        let at = WindowPosition::at(60_000 * 10, 60_000); // a fresh window: the previous one weighs fully
        // The admission's results: MGET of the previous windows, each window's INCRBY and
        // PEXPIREAT, the day's INCRBY and PEXPIRE, then ZREMRANGEBYSCORE, ZADD, ZCARD, PEXPIRE.
        let results = |previous: ::redis::Value, current: i64, day: i64, flying: i64| {
            let (set, added) = (Int(1), Int(1));
            vec![
                Array(vec![previous]),
                Int(current),
                set.clone(),
                Int(day),
                set.clone(),
                Int(0),
                added,
                Int(flying),
                set,
            ]
        };
        let decide = |previous: ::redis::Value, current: i64, day: i64, flying: i64| {
            let results = results(previous, current, day, flying);
            Counts::parse(&results, &policy, false).unwrap().decide(&policy, at, &demand, 0)
        };
        let headroom = decide(Nil, 2, 80, 2).unwrap();
        assert_eq!((headroom[0].limit, headroom[0].remaining), (2, 0), "the second request fits exactly");
        assert!(matches!(decide(Nil, 3, 80, 1).unwrap_err().reason, RefusalReason::Window { .. }));
        let previous = BulkString(b"1".to_vec());
        assert!(decide(previous, 2, 80, 1).is_err(), "the previous window still counts");
        let budget = decide(Nil, 1, 120, 1).unwrap_err();
        assert_eq!(budget.reason, RefusalReason::Budget { period: Period::Day });
        assert_eq!(decide(Nil, 1, 80, 3).unwrap_err().reason, RefusalReason::Concurrent { limit: 2 });
        // A spend counter driven below zero by settlements counts as nothing spent.
        assert!(decide(Nil, 1, -500, 1).is_ok());
        assert!(Counts::parse(&[Int(1)], &policy, false).is_none(), "results of another shape");
        // With places given back, a ZREM comes first in the in-flight block.
        let mut gave_back = results(Nil, 1, 80, 2);
        gave_back.insert(5, Int(1));
        let counts = Counts::parse(&gave_back, &policy, true).unwrap();
        assert_eq!(counts.flying, Some(2));
        assert!(Counts::parse(&gave_back, &policy, false).is_none());
        let mut longer = results(Nil, 1, 80, 1);
        longer.push(Int(1));
        assert!(Counts::parse(&longer, &policy, false).is_none(), "one result too many");
        longer.truncate(longer.len() - 2);
        assert!(Counts::parse(&longer, &policy, false).is_none(), "one result too few");
        let mut not_a_count = results(Nil, 1, 80, 1);
        not_a_count[0] = Array(vec![BulkString(b"x".to_vec())]);
        assert!(
            Counts::parse(&not_a_count, &policy, false).is_none(),
            "a previous window that is not a number"
        );
    }
}
