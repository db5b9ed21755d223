//! VirtualKeys' `status.spend`: what each key with a Redis budget spent today and this month,
//! read from the counters the gateways keep in Redis (`switchboard_config::counters`).
//!
//! Only the leader reads (the controller starts this with its watch caches). Every
//! `--spend-interval-seconds`, the keys that qualify ([`choose`]) are read: both counters of a key
//! share its hash tag, so one `MGET` per key works on a single Redis (pipelined, in chunks) and on
//! Redis Cluster (one call per key, many in flight). A spend that differs from what the object
//! shows goes to the status writer as a patch of `status.spend` alone.
//!
//! Redis being down never stops the operator: the connection is lazy and reconnects by itself,
//! a failed round is counted in `/metrics` and logged once per transition (down, then back), and
//! statuses keep what they showed until Redis answers again.

use crate::metrics::OperatorMetrics;
use crate::status_writer::StatusWriter;
use futures::StreamExt;
use kube::runtime::reflector::Store;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::counters;
use switchboard_crds::rate_limit_policy::Mode;
use switchboard_crds::virtual_key::{Spend, VirtualKey};
use switchboard_redis::{RedisClient, RedisSettings};
use tokio::sync::watch;

/// How to reach Redis (the gateways' settings: `--redis-url`, `--redis-cluster`, `--redis-prefix`,
/// `--redis-timeout-ms`, the password from `SWITCHBOARD_REDIS_PASSWORD`) and how often to read
/// (`--spend-interval-seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendSettings {
    pub redis: RedisSettings,
    pub interval: Duration,
}

/// Keys per pipeline on a single Redis: one round trip each, small enough that a chunk answers
/// well within the timeout (10,000 keys are 10 round trips).
const PIPELINE_KEYS: usize = 1_000;

/// `MGET`s in flight at once on a cluster (the cluster connection pipelines them per node).
const CLUSTER_IN_FLIGHT: usize = 256;

/// A key whose spend is read, and what its status shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    /// `status.keyId`: the contract's `KeyConfig.id`, which the gateways' counter names use.
    pub key_id: String,
    pub shown: Option<Spend>,
}

/// Which keys' spend is read: those Accepted (the compile serves them under `status.keyId`)
/// with a budget counted in Redis. Also returns the keys that show a spend but no longer qualify
/// (budget removed, or moved to `mode: Local`), whose `status.spend` is removed: a status shows a
/// spend exactly when it is kept up to date.
pub fn choose(keys: &[Arc<VirtualKey>]) -> (Vec<Target>, Vec<(String, String)>) {
    let mut read = Vec::new();
    let mut clear = Vec::new();
    for key in keys {
        let namespace = key.metadata.namespace.clone().unwrap_or_default();
        let name = key.metadata.name.clone().unwrap_or_default();
        let status = key.status.as_ref();
        let accepted =
            status.is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Accepted" && c.status == "True"));
        let redis_budget = key.spec.budget.as_ref().is_some_and(|b| b.mode == Mode::Redis);
        let key_id = status.and_then(|s| s.key_id.clone());
        let shown = status.and_then(|s| s.spend.clone());
        match key_id {
            Some(key_id) if accepted && redis_budget => read.push(Target { namespace, name, key_id, shown }),
            _ if shown.is_some() => clear.push((namespace, name)),
            _ => {}
        }
    }
    (read, clear)
}

/// Nano-dollars as a decimal dollar string: rounded up to a micro-dollar (the precision of a
/// budget's amounts, and never less than was spent), then written with 2 to 6 decimals, trailing
/// zeros beyond the cents dropped (`420000000` → `"0.42"`, `1234567` → `"0.001235"`, `0` →
/// `"0.00"`). A counter below zero (a settlement's correction racing its charge) shows `"0.00"`.
pub fn dollars(nano_usd: i64) -> String {
    let micros = u64::try_from(nano_usd).unwrap_or(0).div_ceil(1_000);
    let mut fraction = format!("{:06}", micros % 1_000_000);
    while fraction.len() > 2 && fraction.ends_with('0') {
        fraction.pop();
    }
    format!("{}.{fraction}", micros / 1_000_000)
}

/// The spend a status shows for the UTC day and month of `unix_seconds`, from the two counters
/// (missing counters are 0).
pub fn spend_at(unix_seconds: i64, day_nano_usd: Option<i64>, month_nano_usd: Option<i64>) -> Spend {
    let (year, month, day) = switchboard_config::civil_date(unix_seconds);
    Spend {
        day: format!("{year:04}-{month:02}-{day:02}"),
        today: dollars(day_nano_usd.unwrap_or(0)),
        month: format!("{year:04}-{month:02}"),
        this_month: dollars(month_nano_usd.unwrap_or(0)),
    }
}

/// The Redis side: a connection, and whether the last round reached Redis.
pub struct SpendReader {
    client: RedisClient,
    timeout: Duration,
    prefix: String,
    interval: Duration,
    /// `None` until the first round: its outcome is logged either way.
    up: Option<bool>,
}

impl SpendReader {
    /// Checks the URLs and connects (waiting at most the timeout: a Redis that is down at
    /// startup is retried, never fatal).
    pub async fn connect(settings: &SpendSettings) -> Result<SpendReader, String> {
        Ok(SpendReader {
            client: RedisClient::connect(&settings.redis).await?,
            timeout: settings.redis.timeout,
            prefix: settings.redis.prefix.clone(),
            interval: settings.interval,
            up: None,
        })
    }

    /// Reads the spend of every target at `unix_seconds`, in order.
    async fn read(&mut self, targets: &[Target], unix_seconds: i64) -> Result<Vec<Spend>, String> {
        let (day, month) = counters::spend_counters(unix_seconds);
        let names = |target: &Target| {
            let tag = counters::key_budget_tag(&target.key_id);
            (counters::counter(&self.prefix, &tag, &day), counters::counter(&self.prefix, &tag, &month))
        };
        let timeout = self.timeout;
        let late = move || format!("no answer within {} ms", timeout.as_millis());
        let mut counts: Vec<(Option<i64>, Option<i64>)> = Vec::with_capacity(targets.len());
        let connect = || self.client.connection().ok_or("the cluster has not answered yet");
        connect()?;
        match self.client.is_cluster() {
            false => {
                for chunk in targets.chunks(PIPELINE_KEYS) {
                    let mut pipeline = ::redis::pipe();
                    for target in chunk {
                        let (day, month) = names(target);
                        pipeline.cmd("MGET").arg(day).arg(month);
                    }
                    let mut conn = connect()?;
                    let reply: Vec<(Option<i64>, Option<i64>)> =
                        tokio::time::timeout(timeout, pipeline.query_async(&mut conn))
                            .await
                            .map_err(|_| late())?
                            .map_err(|err| err.to_string())?;
                    counts.extend(reply);
                }
            }
            true => {
                let requests: Vec<(String, String)> = targets.iter().map(names).collect();
                let calls = requests.into_iter().map(|(day, month)| {
                    let conn = connect();
                    async move {
                        let mut conn = conn.map_err(String::from)?;
                        let mget = ::redis::cmd("MGET").arg(day).arg(month).clone();
                        tokio::time::timeout(
                            timeout,
                            mget.query_async::<(Option<i64>, Option<i64>)>(&mut conn),
                        )
                        .await
                        .map_err(|_| late())?
                        .map_err(|err| err.to_string())
                    }
                });
                let mut replies = futures::stream::iter(calls).buffered(CLUSTER_IN_FLIGHT);
                while let Some(reply) = replies.next().await {
                    counts.push(reply?);
                }
            }
        }
        Ok(counts.into_iter().map(|(d, m)| spend_at(unix_seconds, d, m)).collect())
    }

    /// Logs the first round's outcome and every change between reaching Redis and not.
    fn mark(&mut self, up: bool, reason: &str) {
        if self.up.replace(up) != Some(up) {
            if up {
                tracing::info!("reading VirtualKey spend from Redis");
            } else {
                tracing::warn!(
                    reason,
                    "cannot read VirtualKey spend from Redis; statuses keep their last spend"
                );
            }
        }
    }
}

/// Reads and writes spend every interval until `shutdown` flips to true.
pub async fn run(
    mut reader: SpendReader,
    keys: Vec<Store<VirtualKey>>,
    writer: StatusWriter,
    metrics: Arc<OperatorMetrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(reader.interval);
    // A slow round (a Redis timing out) delays the next one rather than bunching them up.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What was handed to the writer and is not yet seen in the watch cache, so a round that
    // comes before the write lands does not queue it again.
    let mut submitted: HashMap<(String, String), Option<Spend>> = HashMap::new();
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let objects: Vec<Arc<VirtualKey>> = keys.iter().flat_map(|store| store.state()).collect();
        let (targets, clear) = choose(&objects);
        // (namespace, name) → what the status should show, for statuses that show otherwise.
        let mut changes: Vec<((String, String), Option<Spend>)> =
            clear.into_iter().map(|key| (key, None)).collect();
        if !targets.is_empty() {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            // A round on a slow Redis Cluster may take several timeouts: leadership ends at once.
            let read = tokio::select! {
                read = reader.read(&targets, now) => read,
                _ = shutdown.wait_for(|stop| *stop) => return,
            };
            match read {
                Ok(spends) => {
                    reader.mark(true, "");
                    metrics.spend_reads.fetch_add(1, Relaxed);
                    let differ =
                        targets.into_iter().zip(spends).filter(|(t, spend)| t.shown.as_ref() != Some(spend));
                    changes.extend(differ.map(|(t, spend)| ((t.namespace, t.name), Some(spend))));
                }
                Err(reason) => {
                    reader.mark(false, &reason);
                    metrics.spend_read_errors.fetch_add(1, Relaxed);
                }
            }
        }
        let mut pending = HashMap::with_capacity(submitted.len());
        for (key, spend) in changes {
            if submitted.get(&key) != Some(&spend) {
                writer.submit_spend(&key.0, &key.1, spend.clone());
            }
            pending.insert(key, spend);
        }
        // Writes the cache now shows, and keys gone, need no memory.
        submitted = pending;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
    use switchboard_crds::virtual_key::{Budget, VirtualKeyStatus};

    #[test]
    fn dollars_keep_cents_and_up_to_micro_dollars_rounded_up() {
        let cases = [
            (0, "0.00"),
            (-5, "0.00"),
            (1, "0.000001"),
            (420_000_000, "0.42"),
            (1_234_567, "0.001235"),
            (1_234_000, "0.001234"),
            (5_000_000_000, "5.00"),
            (3_100_000_000, "3.10"),
            (12_345_678_901, "12.345679"),
            (100_000_000, "0.10"),
            (i64::MAX, "9223372036.854776"),
        ];
        for (nano, text) in cases {
            assert_eq!(dollars(nano), text, "{nano}");
        }
    }

    #[test]
    fn spend_names_the_utc_day_and_month() {
        // 2026-12-02T08:00:00Z.
        let spend = spend_at(1_796_198_400 + 8 * 3600, Some(420_000_000), None);
        assert_eq!(
            spend,
            Spend {
                day: "2026-12-02".into(),
                today: "0.42".into(),
                month: "2026-12".into(),
                this_month: "0.00".into()
            }
        );
    }

    fn key(name: &str, budget: Option<Mode>, accepted: &str, key_id: bool, spend: bool) -> Arc<VirtualKey> {
        let spec = serde_json::json!({"secretRef": {"name": format!("{name}-key")}});
        let mut key = VirtualKey::new(name, serde_json::from_value(spec).unwrap());
        key.metadata.namespace = Some("ns".into());
        key.spec.budget = budget.map(|mode| Budget {
            daily_usd: Some("1.00".into()),
            monthly_usd: None,
            mode,
            failure_mode: Default::default(),
        });
        key.status = Some(VirtualKeyStatus {
            key_id: key_id.then(|| format!("ns/{name}")),
            spend: spend.then(Spend::default),
            conditions: vec![Condition {
                type_: "Accepted".into(),
                status: accepted.into(),
                reason: "Accepted".into(),
                message: String::new(),
                observed_generation: None,
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                ),
            }],
            observed_generation: None,
        });
        Arc::new(key)
    }

    #[test]
    fn only_accepted_keys_with_a_redis_budget_are_read_and_stale_spend_is_removed() {
        let keys = [
            key("read", Some(Mode::Redis), "True", true, false),
            key("read-shown", Some(Mode::Redis), "True", true, true),
            key("local", Some(Mode::Local), "True", true, false),
            key("local-shown", Some(Mode::Local), "True", true, true),
            key("no-budget", None, "True", true, false),
            key("no-budget-shown", None, "True", true, true),
            key("refused", Some(Mode::Redis), "False", true, false),
            key("refused-shown", Some(Mode::Redis), "False", true, true),
            key("no-id-yet", Some(Mode::Redis), "True", false, false),
        ];
        let (read, clear) = choose(&keys);
        let read: Vec<(&str, &str, bool)> =
            read.iter().map(|t| (t.name.as_str(), t.key_id.as_str(), t.shown.is_some())).collect();
        assert_eq!(read, [("read", "ns/read", false), ("read-shown", "ns/read-shown", true)]);
        let clear: Vec<&str> = clear.iter().map(|(_, name)| name.as_str()).collect();
        assert_eq!(clear, ["local-shown", "no-budget-shown", "refused-shown"]);
    }
}
