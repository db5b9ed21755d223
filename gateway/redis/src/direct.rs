//! Connections a call owns while it runs: the lowest-latency way to make one round trip.
//!
//! redis-rs's multiplexed connection hands each call to a driver task that writes it and, when
//! the reply comes, hands it back: two task wake-ups per call besides the round trip itself, and
//! every call queued on one socket behind whatever was sent before it (a batch of settlements,
//! a slow reply to another call). An admission waits for its reply on the request path, so it
//! takes a connection of its own from these slots: the first free one (never waiting for one),
//! used by that call alone, opened on first use and put back only after a whole exchange. A call
//! cut short (its timeout, a dropped request) drops its connection, so no reply is ever read by
//! the wrong call. When every slot is busy, the caller uses the multiplexed connection, which
//! pipelines calls: the better deal under load.
//!
//! What it saves, measured on the 2-core benchmark VM (bench/results.md "Governed requests"): a
//! `PING` at p50 took 67–74 µs through the multiplexed connection and 50–55 µs on a connection
//! the calling task owns, in a probe on a two-worker runtime; in the gateway the admission call's
//! mean went from 98 to 94 µs (two workers) and from 84 to 76 µs (`--threads 1`), within that
//! VM's noise.
//!
//! Commands are packed and replies parsed by redis-rs; this module only finds where one reply
//! ends in what has been read ([`reply_end`], RESP2: the protocol these connections speak).

use redis::aio::ConnectionLike;
use redis::{ConnectionAddr, ConnectionInfo, Pipeline, RedisError, RedisFuture, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// How many calls at once get a connection of their own.
const SLOTS: usize = 8;

/// The slots of one single Redis reached over TCP.
pub struct DirectPool {
    shared: Arc<Shared>,
    slots: Box<[Arc<Mutex<Option<Direct>>>]>,
}

struct Shared {
    info: ConnectionInfo,
    /// Bumped when a connection fails: every connection opened before it is then dropped at
    /// its next use instead of failing a call of its own (after a Redis restart, one failed call
    /// instead of one per slot).
    generation: AtomicU64,
}

/// One slot, held by one call.
pub struct Lease {
    shared: Arc<Shared>,
    slot: OwnedMutexGuard<Option<Direct>>,
}

struct Direct {
    stream: TcpStream,
    /// Read but not yet parsed.
    read: Vec<u8>,
    generation: u64,
}

impl DirectPool {
    /// `None` for a Redis these connections do not reach (a Unix socket, TLS).
    pub fn new(info: ConnectionInfo) -> Option<Self> {
        if !matches!(info.addr(), ConnectionAddr::Tcp(..)) {
            return None;
        }
        Some(DirectPool {
            shared: Arc::new(Shared { info, generation: AtomicU64::new(0) }),
            slots: (0..SLOTS).map(|_| Arc::new(Mutex::new(None))).collect(),
        })
    }

    /// The first free slot, if there is one; never waits. Searching from the first slot keeps
    /// calls on as few connections as the concurrency needs (one at a time: one connection).
    pub fn lease(&self) -> Option<Lease> {
        self.slots.iter().find_map(|slot| {
            let slot = slot.clone().try_lock_owned().ok()?;
            Some(Lease { shared: self.shared.clone(), slot })
        })
    }
}

impl Lease {
    /// Sends `packed` (`replies` commands) and reads their replies on the slot's connection,
    /// opening one if it has none (or only one older than the last failure).
    async fn exchange(&mut self, packed: &[u8], replies: usize) -> redis::RedisResult<Vec<Value>> {
        let generation = self.shared.generation.load(Relaxed);
        // Out of the slot for the exchange: if it fails or is cut short, it is dropped.
        let connection = self.slot.take().filter(|c| c.generation == generation);
        let mut connection = match connection {
            Some(connection) => connection,
            None => Direct::connect(&self.shared.info, generation).await?,
        };
        match connection.exchange(packed, replies).await {
            Ok(values) => {
                *self.slot = Some(connection);
                Ok(values)
            }
            Err(err) => {
                self.shared.generation.fetch_add(1, Relaxed);
                Err(err)
            }
        }
    }
}

impl Direct {
    async fn connect(info: &ConnectionInfo, generation: u64) -> redis::RedisResult<Direct> {
        let ConnectionAddr::Tcp(host, port) = info.addr() else {
            return Err(io_error("direct connections are TCP only"));
        };
        let stream = TcpStream::connect((host.as_str(), *port)).await?;
        // An admission is a small write a request waits for: never hold it back.
        stream.set_nodelay(true)?;
        let mut direct = Direct { stream, read: Vec::with_capacity(512), generation };
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
        if commands > 0 {
            for reply in direct.exchange(&hello.get_packed_pipeline(), commands).await? {
                if let Value::ServerError(err) = reply {
                    return Err(err.into());
                }
            }
        }
        Ok(direct)
    }

    /// Writes `packed` and reads exactly `replies` replies: nothing may be left over, or the
    /// next call would read this one's.
    async fn exchange(&mut self, packed: &[u8], replies: usize) -> redis::RedisResult<Vec<Value>> {
        self.stream.write_all(packed).await?;
        let mut values = Vec::with_capacity(replies);
        let mut at = 0;
        while values.len() < replies {
            match reply_end(&self.read, at) {
                Some(end) => {
                    values.push(redis::parse_redis_value(&self.read[at..end])?);
                    at = end;
                }
                None => {
                    if self.stream.read_buf(&mut self.read).await? == 0 {
                        return Err(io_error("Redis closed the connection"));
                    }
                }
            }
        }
        if at != self.read.len() {
            return Err(io_error("Redis sent more than the replies asked for"));
        }
        self.read.clear();
        Ok(values)
    }
}

/// Where the RESP2 reply starting at `at` ends, if all of it has been read. A header that is
/// not RESP2 ends the reply at its line, for redis-rs's parser to reject.
fn reply_end(read: &[u8], at: usize) -> Option<usize> {
    let line = at + read.get(at..)?.windows(2).position(|pair| pair == b"\r\n")? + 2;
    let header = &read[at..line - 2];
    let count = || std::str::from_utf8(header.get(1..)?).ok()?.parse::<i64>().ok();
    match header.first() {
        Some(b'$') => match count() {
            Some(len) if len >= 0 => {
                let end = line.checked_add(usize::try_from(len).ok()?)?.checked_add(2)?;
                (end <= read.len()).then_some(end)
            }
            _ => Some(line),
        },
        Some(b'*') => {
            let mut end = line;
            for _ in 0..count().unwrap_or(0).max(0) {
                end = reply_end(read, end)?;
            }
            Some(end)
        }
        _ => Some(line),
    }
}

fn io_error(message: &'static str) -> RedisError {
    std::io::Error::other(message).into()
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
    use std::time::Duration;
    use switchboard_test_redis::RedisServer;

    fn pool(redis: &RedisServer, password: &str) -> DirectPool {
        let url = format!("redis://:{password}@127.0.0.1:{}/2", redis.port());
        DirectPool::new(redis::IntoConnectionInfo::into_connection_info(url).unwrap()).unwrap()
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
        let mut leases: Vec<Lease> = (0..SLOTS).map(|_| pool.lease().unwrap()).collect();
        for lease in &mut leases {
            incr(lease).await.unwrap();
        }
        drop(leases);

        redis.restart();
        let mut lease = pool.lease().unwrap();
        assert!(incr(&mut lease).await.is_err(), "the connection from before the restart is gone");
        drop(lease);
        // That failure retired every connection opened before it: none fails a call of its own.
        let mut leases: Vec<Lease> = (0..SLOTS).map(|_| pool.lease().unwrap()).collect();
        for lease in &mut leases {
            assert!(incr(lease).await.is_ok());
        }
    }

    #[tokio::test]
    async fn a_call_cut_short_drops_its_connection_so_no_reply_goes_astray() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let mut lease = pool.lease().unwrap();
        // A reply that comes after its caller gave up...
        let blpop = redis::cmd("BLPOP").arg("nothing").arg(1).clone();
        let cut =
            tokio::time::timeout(Duration::from_millis(50), blpop.query_async::<Value>(&mut lease)).await;
        assert!(cut.is_err());
        // ...is never read as the next call's.
        assert_eq!(incr(&mut lease).await.unwrap(), 1);
        let pong: String = redis::cmd("PING").query_async(&mut lease).await.unwrap();
        assert_eq!(pong, "PONG");
    }

    #[tokio::test]
    async fn slots_are_never_waited_for_and_a_bad_password_is_an_error() {
        let redis = RedisServer::start_with(&["--requirepass", "pw"]);
        let pool = pool(&redis, "pw");
        let held: Vec<Lease> = (0..SLOTS).map(|_| pool.lease().unwrap()).collect();
        assert!(pool.lease().is_none(), "all busy: the caller uses the shared connection");
        drop(held);
        assert!(pool.lease().is_some());

        let wrong = self::pool(&redis, "nope");
        let err = incr(&mut wrong.lease().unwrap()).await.unwrap_err();
        assert!(!err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn a_reply_ends_where_resp_says() {
        assert_eq!(reply_end(b"+OK\r\n", 0), Some(5));
        assert_eq!(reply_end(b":42\r\n+OK\r\n", 0), Some(5));
        assert_eq!(reply_end(b":42\r\n+OK\r\n", 5), Some(10));
        assert_eq!(reply_end(b"$3\r\nabc\r\n", 0), Some(9));
        assert_eq!(reply_end(b"$3\r\nab", 0), None, "the bulk string is not all there");
        assert_eq!(reply_end(b"$-1\r\n", 0), Some(5), "nil");
        // A transaction's EXEC: an array holding an MGET array and integers.
        let exec = b"*3\r\n*2\r\n$1\r\n7\r\n$-1\r\n:1\r\n:5\r\n";
        assert_eq!(reply_end(exec, 0), Some(exec.len()));
        for cut in 0..exec.len() {
            assert_eq!(reply_end(&exec[..cut], 0), None, "cut at {cut}");
        }
        assert_eq!(reply_end(b"-ERR wrong\r\n", 0), Some(12));
        assert_eq!(reply_end(b"?junk\r\n", 0), Some(7), "left to the parser to reject");
        assert_eq!(reply_end(b"+OK", 0), None);
    }
}
