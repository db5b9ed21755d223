//! The Redis connection the gateway counts limits and budgets on and the operator reads spend
//! from: one place for the settings (flags `--redis-url`, `--redis-cluster`, `--redis-prefix`,
//! `--redis-timeout-ms`; the password only from `SWITCHBOARD_REDIS_PASSWORD`) and for connecting.
//!
//! [`RedisClient::connect`] waits up to the timeout for Redis, so a process starts counting from
//! its first request, but never fails because Redis is down: a single Redis is then reached
//! lazily by a connection manager that reconnects by itself, a cluster by a background task that
//! retries every second. Only settings that cannot work (a malformed URL) are errors.
//!
//! A call a request waits on ([`RedisClient::own_connection`]) can have a connection of its own
//! on a single Redis ([`direct`]): one round trip with no hand-off to a driver task, waited for
//! on the calling thread when it can be; so can settlements
//! ([`RedisClient::background_connection`]). What the gateway sends every request is written
//! as [`Commands`] and sent with [`AnyConnection::send`].

mod commands;
mod direct;

use arc_swap::ArcSwapOption;
pub use commands::{Arg, Commands};
use direct::{DirectPool, Lease};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::sync::Arc;
use std::time::Duration;

/// How to reach Redis.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    /// One URL, or a cluster's seed nodes.
    pub urls: Vec<String>,
    pub cluster: bool,
    pub password: Option<String>,
    /// The longest one call may take (and connecting at startup).
    pub timeout: Duration,
    /// Prefix of every counter name (`switchboard_config::counters`).
    pub prefix: String,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("urls", &self.urls.len())
            .field("cluster", &self.cluster)
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// A connection to a single Redis or a Redis Cluster; cheap to clone.
#[derive(Clone)]
pub enum RedisClient {
    /// The multiplexed connection, and (over TCP) connections a call can own ([`direct`]).
    Single(ConnectionManager, Option<Arc<DirectPool>>),
    /// `None` until the cluster first answers; the cluster connection then follows node
    /// failures and slot moves itself.
    Cluster(Arc<ArcSwapOption<ClusterConnection>>),
}

impl RedisClient {
    pub async fn connect(settings: &RedisSettings) -> Result<Self, String> {
        let infos =
            settings.urls.iter().map(|url| connection_info(url, settings)).collect::<Result<Vec<_>, _>>()?;
        if settings.cluster {
            let client = ClusterClient::builder(infos)
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .retries(1)
                .build()
                .map_err(|err| format!("--redis-url: {err}"))?;
            let slot = Arc::new(ArcSwapOption::empty());
            match tokio::time::timeout(settings.timeout, client.get_async_connection()).await {
                Ok(Ok(connection)) => slot.store(Some(Arc::new(connection))),
                _ => {
                    tokio::spawn(connect_cluster(client, slot.clone()));
                }
            }
            return Ok(RedisClient::Cluster(slot));
        }
        let [info] = <[_; 1]>::try_from(infos)
            .map_err(|_| "--redis-url: give one URL (several are a cluster's seeds: add --redis-cluster)")?;
        let direct = DirectPool::new(info.clone(), settings.timeout).map(Arc::new);
        let client = redis::Client::open(info).map_err(|err| format!("--redis-url: {err}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_max_delay(Duration::from_secs(1));
        let eager = ConnectionManager::new_with_config(client.clone(), config.clone());
        let manager = match tokio::time::timeout(settings.timeout, eager).await {
            Ok(Ok(manager)) => manager,
            // Down for now: the lazy manager connects on first use and keeps retrying.
            _ => ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|err| format!("Redis: {err}"))?,
        };
        Ok(RedisClient::Single(manager, direct))
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisClient::Cluster(_))
    }

    /// A connection to call on; `None` while a cluster has not answered yet.
    pub fn connection(&self) -> Option<AnyConnection> {
        match self {
            RedisClient::Single(manager, _) => Some(AnyConnection::Single(manager.clone())),
            RedisClient::Cluster(slot) => {
                slot.load_full().map(|c| AnyConnection::Cluster(ClusterConnection::clone(&c)))
            }
        }
    }

    /// For one call a request waits on: a connection of its own when a single Redis has one free
    /// ([`direct`]), else the shared one.
    pub fn own_connection(&self) -> Option<AnyConnection> {
        match self {
            RedisClient::Single(_, Some(direct)) => direct.lease().map(AnyConnection::Direct),
            _ => None,
        }
        .or_else(|| self.connection())
    }

    /// For calls no request waits on (settlements): on a single Redis, a connection of their
    /// own while it is free ([`direct`]), else the shared one. Replies are then parsed by
    /// [`direct`]'s reader, a fraction of the instructions redis-rs's parser takes per reply.
    pub fn background_connection(&self) -> Option<AnyConnection> {
        match self {
            RedisClient::Single(_, Some(direct)) => direct.lease_background().map(AnyConnection::Direct),
            _ => None,
        }
        .or_else(|| self.connection())
    }
}

fn connection_info(url: &str, settings: &RedisSettings) -> Result<ConnectionInfo, String> {
    let info =
        redis::IntoConnectionInfo::into_connection_info(url).map_err(|err| format!("--redis-url: {err}"))?;
    // redis-rs leaves Nagle's algorithm on; an admission is a small write a request waits for,
    // which must never be held back behind an unacknowledged settlement pipeline.
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    let info = info.set_tcp_settings(tcp);
    Ok(match &settings.password {
        Some(password) => {
            let redis = info.redis_settings().clone().set_password(password);
            info.set_redis_settings(redis)
        }
        None => info,
    })
}

/// Connects to the cluster, retrying every second until it answers.
async fn connect_cluster(client: ClusterClient, slot: Arc<ArcSwapOption<ClusterConnection>>) {
    let mut logged = false;
    loop {
        match client.get_async_connection().await {
            Ok(connection) => {
                slot.store(Some(Arc::new(connection)));
                tracing::info!("connected to the Redis cluster");
                return;
            }
            Err(err) => {
                if !logged {
                    tracing::warn!(error = %err, "cannot reach the Redis cluster yet; retrying every second");
                    logged = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Any of the connections, as one `ConnectionLike` (commands and pipelines run on it).
pub enum AnyConnection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Direct(Lease),
}

impl AnyConnection {
    /// Sends `commands` and gives what they answer ([`Commands::values`]): on a connection of
    /// the gateway's own, the bytes as they were written; on the others, as a redis-rs pipeline.
    pub async fn send(&mut self, commands: &mut Commands) -> RedisResult<Vec<Value>> {
        commands.seal();
        match self {
            AnyConnection::Direct(lease) => {
                let (packed, replies) = commands.packed();
                commands.values(lease.exchange(packed, replies).await?)
            }
            other => commands.to_pipeline().query_async(other).await,
        }
    }
}

fn io_error(message: &'static str) -> RedisError {
    std::io::Error::other(message).into()
}

impl ConnectionLike for AnyConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            AnyConnection::Single(c) => c.req_packed_command(cmd),
            AnyConnection::Cluster(c) => c.req_packed_command(cmd),
            AnyConnection::Direct(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            AnyConnection::Single(c) => c.req_packed_commands(cmd, offset, count),
            AnyConnection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            AnyConnection::Direct(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            AnyConnection::Single(c) => c.get_db(),
            AnyConnection::Cluster(c) => c.get_db(),
            AnyConnection::Direct(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_the_password() {
        let settings = RedisSettings {
            urls: vec!["redis://127.0.0.1:6379".into()],
            cluster: false,
            password: Some("hunter2".into()),
            timeout: Duration::from_millis(100),
            prefix: "sb".into(),
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    /// `Commands` answer the same on a connection of the gateway's own (the bytes as written)
    /// and on the shared one (rebuilt as a redis-rs pipeline).
    #[tokio::test]
    async fn commands_answer_alike_on_every_kind_of_connection() {
        let redis = switchboard_test_redis::RedisServer::start();
        let settings = RedisSettings {
            urls: vec![format!("redis://127.0.0.1:{}", redis.port())],
            cluster: false,
            password: None,
            timeout: Duration::from_secs(5),
            prefix: "sb".into(),
        };
        let client = RedisClient::connect(&settings).await.unwrap();
        let connections = [
            ("own", client.own_connection()),
            ("background", client.background_connection()),
            ("shared", client.connection()),
        ];
        for (round, (kind, connection)) in connections.into_iter().enumerate() {
            let mut connection = connection.unwrap();
            assert_eq!(matches!(connection, AnyConnection::Direct(_)), kind != "shared", "{kind}");
            let mut tx = Commands::transaction();
            tx.push(&[Arg::Text("MGET"), Arg::Joined(&["n", ":a"]), Arg::Text("missing")]);
            tx.push(&[Arg::Text("INCRBY"), Arg::Text("n:a"), Arg::Int(-2)]);
            let results = connection.send(&mut tx).await.unwrap();
            let before = match round {
                0 => Value::Nil,
                _ => Value::BulkString((-2 * round as i64).to_string().into_bytes()),
            };
            let expected = [Value::Array(vec![before, Value::Nil]), Value::Int(-2 * (round as i64 + 1))];
            assert_eq!(results, expected, "{kind}");

            let mut pipeline = Commands::pipeline();
            pipeline
                .push(&[Arg::Text("SET"), Arg::Text("s"), Arg::Text(kind)])
                .push(&[Arg::Text("GET"), Arg::Text("s")]);
            let replies = connection.send(&mut pipeline).await.unwrap();
            assert_eq!(replies, [Value::Okay, Value::BulkString(kind.as_bytes().to_vec())], "{kind}");

            let mut refused = Commands::pipeline();
            refused.push(&[Arg::Text("INCRBY"), Arg::Text("s"), Arg::Int(1)]);
            assert!(connection.send(&mut refused).await.is_err(), "{kind}: an error reply fails the call");
        }
    }
}
