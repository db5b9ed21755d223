//! Counters in Redis (`mode: redis`): limits and budgets that hold across the fleet.
//!
//! Admission is one script call per counter subject ([`ADMIT`]): it reads the subject's
//! windows, budget days and in-flight set, decides, and charges, atomically, in one round trip.
//! Every key a call touches shares the subject's hash tag (`switchboard_config::counters`), so
//! the same script works on a single Redis and on Redis Cluster. Each fixed window of each limit
//! is one integer key (`…:tot:<window index>`) that expires two windows after it starts, so the
//! script does little besides one `MGET` and an `INCRBY` per limit (a script's Redis time is
//! what an admission adds beyond the round trip). Window indices come from the replica's clock:
//! replicas a few milliseconds apart disagree only about requests at a window's edge.
//!
//! Settlements never wait on the response path: the ledger queues them ([`RedisStore::settle`])
//! and one task sends them, many at once over the multiplexed connection, each subject's
//! corrections as one pipeline.
//!
//! Redis being down or slow never hangs a request: every call has `--redis-timeout`. Failures
//! are counted, logged once per transition (down, then back), and answered by each policy's
//! failure mode; the connection reconnects by itself, so enforcement resumes when Redis returns.

use super::policy::{Demand, Policy};
use super::window::WindowPosition;
use super::{Headroom, Period, Refusal};
use crate::metrics::{AtomicHistogram, REDIS_BOUNDS};
use ::redis::Pipeline;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use switchboard_config::counters;
use switchboard_redis::{AnyConnection, RedisClient};
use tokio::sync::mpsc;

pub use switchboard_redis::RedisSettings;

/// A request holds a place among a subject's requests in flight at most this long: if its
/// replica dies without settling, the place frees itself.
const IN_FLIGHT_LEASE_MS: u64 = 600_000;

/// Settlements waiting for the settler; beyond this they are dropped (and counted), never
/// allowed to hold memory or the response path.
const SETTLE_QUEUE: usize = 65_536;

/// The admission script. KEYS: each windowed limit's previous and current window counters, then
/// today's and this month's spend counters and the in-flight set (one hash tag). ARGV: window
/// length and ms left in it, the number of windowed limits, (limit, amount) for each; the daily
/// limit, monthly limit (-1: none) and the reserved cost; the concurrency limit (-1: none), this
/// request's member, the lease, and now (ms). Returns {refused (0: admitted; i: the i-th windowed
/// limit; -1 day; -2 month; -3 concurrency), spent today, spent this month, in flight, then the
/// previous and current count of each windowed limit (after the charge)}.
const ADMIT: &str = r"
local window, left, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local values = {}
if n > 0 then values = redis.call('MGET', unpack(KEYS, 1, 2 * n)) end
local refused = 0
local counts = {}
for i = 1, n do
  local limit, amount = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  local prev = tonumber(values[2 * i - 1] or '0')
  local cur = tonumber(values[2 * i] or '0')
  local used = math.ceil(math.max(prev, 0) * left / window) + math.max(cur, 0)
  if refused == 0 and used + amount > limit then refused = i end
  counts[i] = {amount, prev, cur}
end
local a = 4 + 2 * n
local k = 2 * n
local day_limit, month_limit, cost = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
local day, month = 0, 0
if day_limit >= 0 then day = tonumber(redis.call('GET', KEYS[k + 1]) or '0') end
if month_limit >= 0 then month = tonumber(redis.call('GET', KEYS[k + 2]) or '0') end
if refused == 0 and day_limit >= 0 and math.max(day, 0) + cost > day_limit then refused = -1 end
if refused == 0 and month_limit >= 0 and math.max(month, 0) + cost > month_limit then refused = -2 end
local cc_limit, member, lease, now = tonumber(ARGV[a + 3]), ARGV[a + 4], tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
local flying = 0
if cc_limit >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
  flying = redis.call('ZCARD', KEYS[k + 3])
  if refused == 0 and flying + 1 > cc_limit then refused = -3 end
end
if refused == 0 then
  for i = 1, n do
    local c = counts[i]
    if c[1] ~= 0 then
      c[3] = redis.call('INCRBY', KEYS[2 * i], c[1])
      if c[3] == c[1] then redis.call('PEXPIRE', KEYS[2 * i], window * 2) end
    end
  end
  if day_limit >= 0 and cost ~= 0 then
    day = redis.call('INCRBY', KEYS[k + 1], cost)
    redis.call('PEXPIRE', KEYS[k + 1], 172800000)
  end
  if month_limit >= 0 and cost ~= 0 then
    month = redis.call('INCRBY', KEYS[k + 2], cost)
    redis.call('PEXPIRE', KEYS[k + 2], 2764800000)
  end
  if cc_limit >= 0 then
    redis.call('ZADD', KEYS[k + 3], now + lease, member)
    redis.call('PEXPIRE', KEYS[k + 3], lease)
    flying = flying + 1
  end
end
local out = {refused, day, month, flying}
for i = 1, n do
  out[#out + 1] = counts[i][2]
  out[#out + 1] = counts[i][3]
end
return out
";

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

struct Settlement {
    policy: Arc<Policy>,
    charge: RedisCharge,
    reserved: Demand,
    actual: Demand,
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
    script: ::redis::Script,
    queue: mpsc::Sender<Settlement>,
    /// Distinguishes this process's in-flight members from other replicas'.
    replica: String,
    sequence: AtomicU64,
    up: AtomicBool,
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
        let (queue, receiver) = mpsc::channel(SETTLE_QUEUE);
        let store = RedisStore {
            inner: Arc::new(Inner {
                client,
                timeout: settings.timeout,
                prefix: settings.prefix.clone(),
                script: ::redis::Script::new(ADMIT),
                queue,
                replica: replica_nonce(),
                sequence: AtomicU64::new(0),
                up: AtomicBool::new(true),
                admit_errors: AtomicU64::new(0),
                settle_errors: AtomicU64::new(0),
                settle_dropped: AtomicU64::new(0),
                admit_latency: AtomicHistogram::new(&REDIS_BOUNDS),
            }),
        };
        tokio::spawn(settler(store.clone(), receiver));
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

    /// Runs the admission script for one subject.
    pub async fn admit(
        &self,
        policy: Arc<Policy>,
        tag: String,
        demand: Demand,
    ) -> Result<(RedisCharge, Vec<Headroom>), AdmitError> {
        let inner = &self.inner;
        let name = |counter: &str| counters::counter(&inner.prefix, &tag, counter);
        let (day, month) = counters::spend_counters(crate::unix_now());
        let budget = policy.daily.is_some() || policy.monthly.is_some();
        let member =
            policy.concurrent.map(|_| format!("{}:{}", inner.replica, inner.sequence.fetch_add(1, Relaxed)));
        let now_ms = crate::unix_now_ms();
        let at = WindowPosition::at(now_ms, policy.window_ms);
        let mut call = inner.script.prepare_invoke();
        for &(what, _) in &policy.windowed {
            call.key(name(&window_counter(what, at.index.wrapping_sub(1))));
            call.key(name(&window_counter(what, at.index)));
        }
        call.key(name(&day)).key(name(&month)).key(name("flying"));
        call.arg(at.window_ms).arg(at.left_ms).arg(policy.windowed.len());
        for &(what, limit) in &policy.windowed {
            call.arg(limit).arg(what.of(&demand));
        }
        let limit = |limit: Option<u64>| limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        call.arg(limit(policy.daily)).arg(limit(policy.monthly)).arg(demand.cost_nano_usd);
        call.arg(limit(policy.concurrent)).arg(member.as_deref().unwrap_or("")).arg(IN_FLIGHT_LEASE_MS);
        call.arg(now_ms);
        let started = std::time::Instant::now();
        let reply = self.run(|mut conn| async move { call.invoke_async(&mut conn).await }).await;
        inner.admit_latency.observe(started.elapsed());
        let reply: Vec<i64> = match reply {
            Ok(reply) => reply,
            Err(()) => {
                inner.admit_errors.fetch_add(1, Relaxed);
                return Err(AdmitError::Unavailable);
            }
        };
        let field = |i: usize| reply.get(i).copied().unwrap_or(0);
        let refused = field(0);
        let mut headroom = Vec::with_capacity(policy.windowed.len());
        for (i, &(what, limit)) in policy.windowed.iter().enumerate() {
            let (previous, current) = (field(4 + 2 * i), field(5 + 2 * i));
            if refused == i as i64 + 1 {
                let reset = at.reset_ms(previous, current, limit, what.of(&demand).min(limit));
                return Err(AdmitError::Refused(Refusal::over(&policy, what, limit, reset)));
            }
            let used = at.count(previous, current);
            let reset_ms = at.reset_ms(previous, current, limit, 1);
            headroom.push(Headroom { what, limit, remaining: limit.saturating_sub(used), reset_ms });
        }
        match refused {
            0 => {}
            -1 => return Err(AdmitError::Refused(Refusal::budget(&policy, Period::Day, now_ms))),
            -2 => return Err(AdmitError::Refused(Refusal::budget(&policy, Period::Month, now_ms))),
            _ => {
                let limit = policy.concurrent.unwrap_or(0);
                return Err(AdmitError::Refused(Refusal::concurrent(&policy, limit)));
            }
        }
        let charge = RedisCharge {
            window: at.index,
            day: (budget && policy.daily.is_some()).then(|| name(&day)),
            month: (budget && policy.monthly.is_some()).then(|| name(&month)),
            member,
            tag,
        };
        Ok((charge, headroom))
    }

    /// Queues a settlement; never waits (a full queue drops it and counts the drop).
    pub fn settle(&self, policy: Arc<Policy>, charge: RedisCharge, reserved: Demand, actual: Demand) {
        let settlement = Settlement { policy, charge, reserved, actual };
        if self.inner.queue.try_send(settlement).is_err()
            && self.inner.settle_dropped.fetch_add(1, Relaxed) == 0
        {
            tracing::warn!("the Redis settlement queue is full; dropping settlements (counted in metrics)");
        }
    }

    /// Runs one call with the timeout, on whichever connection there is, and keeps the up/down
    /// state (logged once per transition).
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, ()>
    where
        F: FnOnce(AnyConnection) -> Fut,
        Fut: std::future::Future<Output = ::redis::RedisResult<T>>,
    {
        let inner = &self.inner;
        let Some(conn) = inner.client.connection() else {
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

/// How long the settler lets settlements gather before sending them: one round trip then
/// carries every settlement of the last millisecond instead of one per request, so settling never
/// takes turns with admissions for Redis. Delaying a settlement only keeps a reservation (and an
/// in-flight place) a millisecond longer: an error on the side of the limit.
const SETTLE_LINGER: Duration = Duration::from_millis(1);

/// Sends queued settlements in batches. On a single Redis a batch is one pipeline; on a cluster,
/// where a pipeline must stay in one slot, each subject's corrections are one pipeline, all sent
/// at once.
async fn settler(store: RedisStore, mut queue: mpsc::Receiver<Settlement>) {
    let mut batch = Vec::with_capacity(1024);
    while queue.recv_many(&mut batch, 1024).await > 0 {
        tokio::time::sleep(SETTLE_LINGER).await;
        while batch.len() < 1024
            && let Ok(settlement) = queue.try_recv()
        {
            batch.push(settlement);
        }
        let now_index = |window_ms: u64| crate::unix_now_ms() / window_ms.max(1);
        let mut pipelines = Vec::new();
        let single = !store.inner.client.is_cluster();
        for s in batch.drain(..) {
            let index = now_index(s.policy.window_ms);
            match pipelines.last_mut() {
                Some(pipeline) if single => corrections(pipeline, &store.inner.prefix, &s, index),
                _ => {
                    let mut pipeline = ::redis::pipe();
                    corrections(&mut pipeline, &store.inner.prefix, &s, index);
                    pipelines.push(pipeline);
                }
            }
        }
        let calls = pipelines.into_iter().filter(|p| p.cmd_iter().next().is_some()).map(|pipeline| {
            let store = store.clone();
            async move {
                let result =
                    store.run(|mut conn| async move { pipeline.query_async::<()>(&mut conn).await }).await;
                if result.is_err() {
                    store.inner.settle_errors.fetch_add(1, Relaxed);
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }
}

/// Adds the commands that turn one reservation into what the request took (none if nothing
/// changes).
fn corrections(pipeline: &mut Pipeline, prefix: &str, s: &Settlement, now_index: u64) {
    let name = |counter: &str| counters::counter(prefix, &s.charge.tag, counter);
    // A window two or more behind no longer counts: correcting it would only leave a stray field.
    if now_index <= s.charge.window + 1 {
        for &(what, _) in &s.policy.windowed {
            let delta = what.of(&s.actual) as i64 - what.of(&s.reserved) as i64;
            if delta != 0 {
                let counter = name(&window_counter(what, s.charge.window));
                pipeline.incr(&counter, delta).ignore();
                pipeline.pexpire(counter, s.policy.window_ms.saturating_mul(2) as i64).ignore();
            }
        }
    }
    let cost = s.actual.cost_nano_usd as i64 - s.reserved.cost_nano_usd as i64;
    if cost != 0 {
        for counter in [&s.charge.day, &s.charge.month].into_iter().flatten() {
            pipeline.incr(counter, cost).ignore();
        }
    }
    if let Some(member) = &s.charge.member {
        pipeline.zrem(name("flying"), member).ignore();
    }
}

/// A windowed limit's counter for one fixed window: `tot:29459220`.
fn window_counter(what: super::policy::Counted, index: u64) -> String {
    format!("{}:{index}", what.field())
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
    use crate::limits::policy::Counted;

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
        let commands = |p: &Pipeline| -> Vec<String> {
            p.cmd_iter()
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
        let mut pipeline = ::redis::pipe();
        corrections(&mut pipeline, "sb", &settlement, 8);
        assert_eq!(
            commands(&pipeline),
            [
                "INCRBY sb:{k p key}:tot:7 -480",
                "PEXPIRE sb:{k p key}:tot:7 120000",
                "INCRBY sb:{k p key}:usd:d:20261202 -6",
                "ZREM sb:{k p key}:flying r:1"
            ]
        );
        let mut late = ::redis::pipe();
        corrections(&mut late, "sb", &settlement, 9);
        assert_eq!(commands(&late).len(), 2, "a window that slid out is left alone");
    }
}
