//! Connections a call owns while it runs: the lowest-latency way to make one round trip.
//!
//! redis-rs's multiplexed connection hands each call to a driver task that writes it and, when
//! the reply comes, hands it back: two task wake-ups per call besides the round trip itself, and
//! every call queued on one socket behind whatever was sent before it (a batch of settlements,
//! a slow reply to another call). An admission waits for its reply on the request path, so it
//! takes a connection of its own: the first free one (never waiting for one), used by that call
//! alone, opened on first use and put back only after a whole exchange. A call cut short (its
//! timeout, a dropped request) drops its connection, so no reply is ever read by the wrong call.
//! When every connection is busy, the caller uses the multiplexed connection, which pipelines
//! calls: the better deal under load.
//!
//! The first choice is the one connection whose call waits for its reply on the calling thread
//! ([`inline`]; yielding the thread before it blocks while round trips are short,
//! [`yielding`]), the others park the calling task until the reply wakes it ([`parked`]). Waiting
//! on the thread is what a blocking client does, and on the benchmark VM it is what makes one
//! round trip cost one round trip: parking the task costs a tokio worker's sleep and wake-up on
//! top, which a halted vCPU makes tens of microseconds (bench/governed-2.md).
//! Holding a worker is only allowed briefly, to a call that is the only one on these connections
//! (so never once calls overlap under load), and only on a runtime with another worker to run
//! everything else meanwhile (see [`inline`]).
//!
//! Work no request waits on (settlements) has a connection of its own, parked, so it never
//! queues behind an admission nor an admission behind it ([`DirectPool::lease_background`]).
//!
//! Commands come packed ([`crate::Commands`], or redis-rs's packing for its own types); replies
//! are parsed as they are read ([`resp`]).

mod inline;
mod parked;
pub(crate) mod resp;
mod yielding;

use crate::io_error;
use inline::Inline;
use parked::Parked;
use redis::aio::ConnectionLike;
use redis::{ConnectionAddr, ConnectionInfo, Pipeline, RedisFuture, Value};
use resp::Replies;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard};
use yielding::Yielding;

/// How many calls at once get a connection of their own whose wait parks the task.
const PARKED_SLOTS: usize = 8;

/// How long calls stop waiting inline after one whose reply outlasted the inline wait: a Redis
/// late once is likely late again, and each such wait holds a worker for a few milliseconds
/// ([`inline::INLINE_WAIT`]), so at most one in this period does.
const INLINE_PAUSE: Duration = Duration::from_secs(1);

/// The connections of one single Redis reached over TCP.
pub struct DirectPool {
    shared: Arc<Shared>,
    /// `None` on a runtime with a single worker, where no call may hold the thread.
    inline: Option<Arc<Mutex<Kept<Inline>>>>,
    parked: Box<[Arc<Mutex<Kept<Parked>>>]>,
    /// For work no request waits on (settlements): never queued behind an admission or ahead
    /// of one, and not counted among the calls that decide whether one may wait inline.
    background: Arc<Mutex<Kept<Parked>>>,
}

/// A connection kept between calls, with the generation it was opened in (`None` until the
/// first call opens one).
type Kept<C> = Option<(u64, C)>;

struct Shared {
    info: ConnectionInfo,
    /// The longest one call may take.
    timeout: Duration,
    /// Leases held now: a call waits inline only when it is alone.
    leased: AtomicUsize,
    /// Bumped when a connection fails: every connection opened before it is then dropped at
    /// its next use instead of failing a call of its own (after a Redis restart, one failed call
    /// instead of one per connection).
    generation: AtomicU64,
    /// Until when, in milliseconds since `epoch`, no call waits inline ([`INLINE_PAUSE`]).
    inline_paused_until: AtomicU64,
    epoch: Instant,
    /// Whether an inline call yields before it blocks (`yielding.rs`).
    yielding: Yielding,
}

impl Shared {
    fn pause_inline(&self) {
        let until = (self.epoch.elapsed() + INLINE_PAUSE).as_millis();
        self.inline_paused_until.store(u64::try_from(until).unwrap_or(u64::MAX), Relaxed);
    }

    /// No clock read unless a pause was ever set: this runs on every lone admission.
    fn inline_paused(&self) -> bool {
        let until = self.inline_paused_until.load(Relaxed);
        until != 0 && self.epoch.elapsed().as_millis() < u128::from(until)
    }
}

/// A connection held by one call.
pub struct Lease {
    shared: Arc<Shared>,
    held: Held,
}

enum Held {
    Inline(OwnedMutexGuard<Kept<Inline>>),
    Parked(OwnedMutexGuard<Kept<Parked>>),
    Background(OwnedMutexGuard<Kept<Parked>>),
}

/// What both kinds of connection do: open a socket, and make one exchange, giving the connection
/// back only if it can be used again.
trait Connection: Sized {
    async fn open(shared: &Shared) -> redis::RedisResult<Self>;
    /// Writes `packed` and reads exactly `replies` replies: nothing may be left over, or the
    /// next call would read this one's.
    async fn exchange(
        self,
        shared: &Shared,
        packed: &[u8],
        replies: usize,
        deadline: Instant,
    ) -> redis::RedisResult<(Self, Vec<Value>)>;
}

impl DirectPool {
    /// `None` for a Redis these connections do not reach (a Unix socket, TLS). Called on the
    /// runtime the calls will run on: whether a call may wait on its thread depends on it.
    pub fn new(info: ConnectionInfo, timeout: Duration) -> Option<Self> {
        if !matches!(info.addr(), ConnectionAddr::Tcp(..)) {
            return None;
        }
        let spare_worker = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
            runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                && runtime.metrics().num_workers() >= 2
        });
        Some(DirectPool {
            shared: Arc::new(Shared {
                info,
                timeout,
                leased: AtomicUsize::new(0),
                generation: AtomicU64::new(0),
                inline_paused_until: AtomicU64::new(0),
                epoch: Instant::now(),
                yielding: Yielding::default(),
            }),
            inline: spare_worker.then(|| Arc::new(Mutex::new(None))),
            parked: (0..PARKED_SLOTS).map(|_| Arc::new(Mutex::new(None))).collect(),
            background: Arc::new(Mutex::new(None)),
        })
    }

    /// The inline connection for a call that is the only one on these connections, else the
    /// first free parked one; never waits. Calls overlap as load grows, and then they park: a
    /// worker is given to waiting only while the gateway has workers to spare. Searching from
    /// the first keeps calls on as few connections as the concurrency needs.
    pub fn lease(&self) -> Option<Lease> {
        // Counted before choosing, so two calls starting together never both see themselves alone.
        let alone = self.shared.leased.fetch_add(1, Relaxed) == 0;
        let inline = match &self.inline {
            Some(slot) if alone && !self.shared.inline_paused() => slot.clone().try_lock_owned().ok(),
            _ => None,
        };
        let parked = || self.parked.iter().find_map(|slot| slot.clone().try_lock_owned().ok());
        let held = match inline.map(Held::Inline).or_else(|| parked().map(Held::Parked)) {
            Some(held) => held,
            None => {
                self.shared.leased.fetch_sub(1, Relaxed);
                return None;
            }
        };
        Some(Lease { shared: self.shared.clone(), held })
    }

    /// The background connection, if no other background call holds it; never waits.
    pub fn lease_background(&self) -> Option<Lease> {
        let held = self.background.clone().try_lock_owned().ok()?;
        Some(Lease { shared: self.shared.clone(), held: Held::Background(held) })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !matches!(self.held, Held::Background(_)) {
            self.shared.leased.fetch_sub(1, Relaxed);
        }
    }
}

impl Lease {
    /// Sends `packed` (`replies` commands) and reads their replies on the held connection,
    /// opening one if it has none (or only one older than the last failure).
    pub(crate) async fn exchange(&mut self, packed: &[u8], replies: usize) -> redis::RedisResult<Vec<Value>> {
        let deadline = Instant::now() + self.shared.timeout;
        match &mut self.held {
            Held::Inline(slot) => exchange_in(&self.shared, slot, packed, replies, deadline).await,
            Held::Parked(slot) | Held::Background(slot) => {
                exchange_in(&self.shared, slot, packed, replies, deadline).await
            }
        }
    }
}

/// One exchange on the connection in `slot`, which stays out of the slot meanwhile: if the
/// exchange fails or is cut short, the connection is dropped.
async fn exchange_in<C: Connection>(
    shared: &Shared,
    slot: &mut Kept<C>,
    packed: &[u8],
    replies: usize,
    deadline: Instant,
) -> redis::RedisResult<Vec<Value>> {
    let generation = shared.generation.load(Relaxed);
    let connection = match slot.take() {
        Some((opened, connection)) if opened == generation => connection,
        _ => connect(shared, deadline).await?,
    };
    match connection.exchange(shared, packed, replies, deadline).await {
        Ok((connection, values)) => {
            *slot = Some((generation, connection));
            Ok(values)
        }
        Err(err) => {
            shared.generation.fetch_add(1, Relaxed);
            Err(err)
        }
    }
}

/// A new connection, logged in (`AUTH`) to the database (`SELECT`) the URL and settings say.
async fn connect<C: Connection>(shared: &Shared, deadline: Instant) -> redis::RedisResult<C> {
    let connection = C::open(shared).await?;
    let Some((packed, replies)) = hello(&shared.info) else {
        return Ok(connection);
    };
    let (connection, replies) = connection.exchange(shared, &packed, replies, deadline).await?;
    match replies.into_iter().find_map(|reply| match reply {
        Value::ServerError(err) => Some(err),
        _ => None,
    }) {
        Some(err) => Err(err.into()),
        None => Ok(connection),
    }
}

/// A TCP connection to the Redis of `shared`, with Nagle's algorithm off: an admission is a
/// small write a request waits for, never to be held back.
async fn open_tcp(shared: &Shared) -> redis::RedisResult<tokio::net::TcpStream> {
    let ConnectionAddr::Tcp(host, port) = shared.info.addr() else {
        return Err(io_error("direct connections are TCP only"));
    };
    let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// What a new connection sends first (`None` when there is nothing to send), and how many
/// replies that is.
fn hello(info: &ConnectionInfo) -> Option<(Vec<u8>, usize)> {
    let settings = info.redis_settings();
    let mut hello = redis::pipe();
    if let Some(password) = settings.password() {
        let auth = hello.cmd("AUTH");
        if let Some(username) = settings.username() {
            auth.arg(username);
        }
        auth.arg(password);
    }
    if settings.db() != 0 {
        hello.cmd("SELECT").arg(settings.db());
    }
    let commands = hello.cmd_iter().count();
    (commands > 0).then(|| (hello.get_packed_pipeline(), commands))
}

impl ConnectionLike for Lease {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut values = self.exchange(&cmd.get_packed_command(), 1).await?;
            values.pop().ok_or_else(|| io_error("no reply"))
        })
    }

    /// As redis-rs's own connections answer a pipeline: the `offset` replies before the ones
    /// asked for are skipped (a transaction's `OK` and `QUEUED`s), and an error among them
    /// fails the call.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut values = self.exchange(&pipeline.get_packed_pipeline(), offset + count).await?;
            let wanted = values.split_off(offset);
            if let Some(Value::ServerError(err)) =
                values.into_iter().find(|value| matches!(value, Value::ServerError(_)))
            {
                return Err(err.into());
            }
            Ok(wanted)
        })
    }

    fn get_db(&self) -> i64 {
        self.shared.info.redis_settings().db()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_test_redis::RedisServer;

    /// On a single-worker runtime (`#[tokio::test]`'s) every connection is a parked one.
    fn pool(redis: &RedisServer, password: &str) -> DirectPool {
        pool_with_timeout(redis, password, Duration::from_secs(5))
    }

    fn pool_with_timeout(redis: &RedisServer, password: &str, timeout: Duration) -> DirectPool {
        let url = format!("redis://:{password}@127.0.0.1:{}/2", redis.port());
        DirectPool::new(redis::IntoConnectionInfo::into_connection_info(url).unwrap(), timeout).unwrap()
    }

    async fn incr(lease: &mut Lease) -> redis::RedisResult<i64> {
        // As an admission asks: a transaction, its replies after MULTI and the QUEUEDs.
        let mut tx = redis::pipe();
        tx.atomic().incr("n", 1).ignore().get("n");
        let (n,): (i64,) = tx.query_async(lease).await?;
        Ok(n)
    }

    #[tokio::test]
    async fn a_call_owns_a_connection_that_logs_in_and_survives_a_restart() {
        let mut redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let mut lease = pool.lease().unwrap();
        assert_eq!(incr(&mut lease).await.unwrap(), 1);
        assert_eq!(incr(&mut lease).await.unwrap(), 2, "the same connection, kept in its slot");
        assert_eq!(redis.cli(&["-a", "pw", "-n", "2", "GET", "n"]), "2", "database 2, as the URL says");
        drop(lease);
        // Every slot with a connection open.
        let mut leases: Vec<Lease> = (0..PARKED_SLOTS).map(|_| pool.lease().unwrap()).collect();
        for lease in &mut leases {
            incr(lease).await.unwrap();
        }
        drop(leases);

        redis.restart();
        let mut lease = pool.lease().unwrap();
        assert!(incr(&mut lease).await.is_err(), "the connection from before the restart is gone");
        drop(lease);
        // That failure retired every connection opened before it: none fails a call of its own.
        let mut leases: Vec<Lease> = (0..PARKED_SLOTS).map(|_| pool.lease().unwrap()).collect();
        for lease in &mut leases {
            assert!(incr(lease).await.is_ok());
        }
    }

    /// A reply that comes after its caller gave up is never read as the next call's.
    async fn a_call_cut_short_drops_its_connection(mut lease: Lease) {
        let blpop = redis::cmd("BLPOP").arg("nothing").arg(1).clone();
        let cut =
            tokio::time::timeout(Duration::from_millis(50), blpop.query_async::<Value>(&mut lease)).await;
        assert!(cut.is_err());
        assert_eq!(incr(&mut lease).await.unwrap(), 1);
        let pong: String = redis::cmd("PING").query_async(&mut lease).await.unwrap();
        assert_eq!(pong, "PONG");
    }

    #[tokio::test]
    async fn a_parked_call_cut_short_drops_its_connection_so_no_reply_goes_astray() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let lease = pool(&redis, "pw").lease().unwrap();
        assert!(matches!(lease.held, Held::Parked(_)));
        a_call_cut_short_drops_its_connection(lease).await;
    }

    #[tokio::test]
    async fn slots_are_never_waited_for_and_a_bad_password_is_an_error() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let held: Vec<Lease> = (0..PARKED_SLOTS).map(|_| pool.lease().unwrap()).collect();
        assert!(pool.lease().is_none(), "all busy: the caller uses the shared connection");
        drop(held);
        assert!(pool.lease().is_some());

        let wrong = self::pool(&redis, "nope");
        let err = incr(&mut wrong.lease().unwrap()).await.unwrap_err();
        assert!(!err.to_string().contains("nope"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_two_workers_the_first_call_waits_inline_and_the_next_parks() {
        let mut redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let mut first = pool.lease().unwrap();
        assert!(matches!(first.held, Held::Inline(_)));
        assert_eq!(incr(&mut first).await.unwrap(), 1, "logged in, on database 2");
        assert_eq!(incr(&mut first).await.unwrap(), 2, "the same connection, kept");
        let mut second = pool.lease().unwrap();
        assert!(matches!(second.held, Held::Parked(_)), "one call at a time holds a worker");
        assert_eq!(incr(&mut second).await.unwrap(), 3);
        drop(first);
        let third = pool.lease().unwrap();
        assert!(matches!(third.held, Held::Parked(_)), "not alone: calls overlap, so they park");
        drop((second, third));
        assert_eq!(redis.cli(&["-a", "pw", "-n", "2", "GET", "n"]), "3");
        let leases: Vec<Lease> = (0..=PARKED_SLOTS).map(|_| pool.lease().unwrap()).collect();
        assert!(pool.lease().is_none(), "all busy: the caller uses the shared connection");
        drop(leases);
        assert!(matches!(pool.lease().unwrap().held, Held::Inline(_)), "alone again");

        redis.restart();
        let mut lease = pool.lease().unwrap();
        assert!(matches!(lease.held, Held::Inline(_)));
        assert!(incr(&mut lease).await.is_err(), "the connection from before the restart is gone");
        assert_eq!(incr(&mut lease).await.unwrap(), 1, "and the next call opens a new one");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_work_has_its_own_connection_and_leaves_admissions_alone() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let mut background = pool.lease_background().unwrap();
        assert!(pool.lease_background().is_none(), "one background call at a time; never waited for");
        assert_eq!(incr(&mut background).await.unwrap(), 1, "logged in, on database 2");
        let mut admission = pool.lease().unwrap();
        assert!(matches!(admission.held, Held::Inline(_)), "a settlement in flight is not another call");
        assert_eq!(incr(&mut admission).await.unwrap(), 2);
        drop((background, admission));
        assert!(pool.lease_background().is_some());
        assert_eq!(pool.shared.leased.load(Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_slower_than_the_inline_wait_still_arrives_and_a_stalled_one_ends_at_the_deadline() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool_with_timeout(&redis, "pw", Duration::from_millis(300));
        let mut lease = pool.lease().unwrap();
        assert!(matches!(lease.held, Held::Inline(_)));
        // Redis answers after 50 ms: far past the inline wait, within the deadline.
        let blpop = |seconds: f64| redis::cmd("BLPOP").arg("nothing").arg(seconds).clone();
        let reply: Value = blpop(0.05).query_async(&mut lease).await.unwrap();
        assert_eq!(reply, Value::Nil);
        assert_eq!(incr(&mut lease).await.unwrap(), 1, "the connection came back for the next call");
        // Redis answers after 2 s: the call gives up at its 300 ms deadline by itself.
        let started = Instant::now();
        let err = blpop(2.0).query_async::<Value>(&mut lease).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(incr(&mut lease).await.unwrap(), 2, "a new connection; the late reply is never read");
        drop(lease);
        let alone = pool.lease().unwrap();
        assert!(matches!(alone.held, Held::Parked(_)), "after a late reply, calls alone park for a while");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_split_across_the_yielding_and_the_blocking_wait_arrive_whole() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let mut lease = pool.lease().unwrap();
        assert!(matches!(lease.held, Held::Inline(_)));
        // The first reply comes at once, while the call yields; the second 2 ms later, long past
        // the yielding (`yielding::YIELD_WAIT`), while it blocks.
        let (count, popped): (i64, Value) = redis::pipe()
            .cmd("INCR")
            .arg("split")
            .cmd("BLPOP")
            .arg("nothing")
            .arg(0.002)
            .query_async(&mut lease)
            .await
            .unwrap();
        assert_eq!((count, popped), (1, Value::Nil));
        let count: i64 = redis::cmd("INCR").arg("split").query_async(&mut lease).await.unwrap();
        assert_eq!(count, 2, "the same connection, with nothing left over from the split replies");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inline_call_cut_short_drops_its_connection_so_no_reply_goes_astray() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let lease = pool(&redis, "pw").lease().unwrap();
        assert!(matches!(lease.held, Held::Inline(_)));
        a_call_cut_short_drops_its_connection(lease).await;
    }
}
