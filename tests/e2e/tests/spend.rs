//! VirtualKeys' `status.spend`: the real `switchboard-operator` binary with `--redis-url` on a
//! real `redis-server` (or Redis Cluster) from `switchboard-test-redis`, the in-repo API server
//! (or the cluster `KUBECONFIG` names, as in `operator.rs`) and kubectl. The counters are written
//! as the gateways' settlements leave them; the chain through gateways is tested with the limits.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use std::time::Duration;
use switchboard_config::counters;
use switchboard_e2e::{Cluster, Operator, eventually};
use switchboard_test_redis::{RedisCluster, RedisServer};

/// The operator, leading, with spend read from Redis every second.
fn operator(cluster: &Cluster, namespace: &str, redis: &[&str], timeout: Duration) -> Operator {
    let mut flags = vec!["--spend-interval-seconds", "1"];
    flags.extend_from_slice(redis);
    Operator::leading_with(cluster, namespace, &flags, timeout).0
}

/// A namespace with a VirtualKey whose budget counts in Redis (the default mode).
fn budgeted_key(cluster: &mut Cluster) -> String {
    let ns = cluster.namespace("spend");
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {ns} }}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{ name: budgeted, namespace: {ns} }}\nstringData: {{ key: sk-budgeted-0123456789 }}\n---\n\
         apiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: budgeted, namespace: {ns} }}\n\
         spec: {{ secretRef: {{ name: budgeted }}, budget: {{ dailyUsd: \"1.00\" }} }}\n"
    ));
    ns
}

/// A field of the VirtualKey, through kubectl.
fn field(cluster: &Cluster, ns: &str, path: &str) -> String {
    cluster.kubectl(&["get", "vk", "budgeted", "-n", ns, "-o", &format!("jsonpath={{{path}}}")])
}

/// The key's `status.keyId`, once the compile wrote it.
async fn key_id(cluster: &Cluster, ns: &str, operator: &Operator) -> String {
    let mut id = String::new();
    let compiled = eventually(cluster.patience(Duration::from_secs(20)), async || {
        id = field(cluster, ns, ".status.keyId");
        !id.is_empty()
    })
    .await;
    assert!(compiled, "{}", operator.log());
    id
}

/// Writes the key's counters for today and this month (UTC, nano-dollars) through `cli`, as the
/// gateways' settlements leave them; returns the day.
fn write_counters(cli: impl Fn(&[&str]) -> String, prefix: &str, key_id: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (day, month) = counters::spend_counters(now);
    let tag = counters::key_budget_tag(key_id);
    for (counter, nano_usd) in [(day, "420000000"), (month, "3100000000")] {
        assert_eq!(cli(&["SET", &counters::counter(prefix, &tag, &counter), nano_usd]), "OK");
    }
    let (year, month, day) = switchboard_config::civil_date(now);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Waits for the counters in the status and checks the rest of it and `kubectl get`.
async fn spend_shows(cluster: &Cluster, ns: &str, operator: &Operator, day: &str) {
    let shown = eventually(cluster.patience(Duration::from_secs(20)), async || {
        field(cluster, ns, ".status.spend.today") == "0.42"
    })
    .await;
    let yaml = || cluster.kubectl(&["get", "vk", "budgeted", "-n", ns, "-o", "yaml"]);
    assert!(shown, "{}\n{}", yaml(), operator.log());
    assert_eq!(field(cluster, ns, ".status.spend.thisMonth"), "3.10");
    assert_eq!(field(cluster, ns, ".status.spend.day"), day);
    assert_eq!(field(cluster, ns, ".status.spend.month"), day[..7]);
    // The spend patch leaves the compile's part of the status alone.
    let accepted = field(cluster, ns, ".status.conditions[?(@.type==\"Accepted\")].status");
    assert_eq!(accepted, "True", "{}", yaml());

    // The Spent Today column, where the header puts it (kubectl aligns values with headers).
    let table = cluster.kubectl(&["get", "virtualkeys", "-n", ns]);
    let mut lines = table.lines();
    let at = lines.next().and_then(|header| header.find("SPENT TODAY")).unwrap_or_else(|| panic!("{table}"));
    let row = lines.find(|l| l.starts_with("budgeted ")).unwrap_or_else(|| panic!("{table}"));
    assert_eq!(row.get(at..).and_then(|v| v.split_whitespace().next()), Some("0.42"), "{table}");
    assert_ne!(operator.metric("switchboard_operator_spend_reads_total").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_budget_spent_in_redis_shows_in_its_status_and_kubectl_get() {
    let redis = RedisServer::start();
    let mut cluster = Cluster::start();
    let ns = budgeted_key(&mut cluster);
    let patience = cluster.patience(Duration::from_secs(20));
    let operator = operator(&cluster, &ns, &["--redis-url", &redis.url()], patience);
    let id = key_id(&cluster, &ns, &operator).await;
    let day = write_counters(|args| redis.cli(args), counters::DEFAULT_PREFIX, &id);
    spend_shows(&cluster, &ns, &operator, &day).await;
}

/// The same on a Redis Cluster (a key's two counters share a slot), with another prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_budget_spent_in_a_redis_cluster_shows_in_its_status() {
    let redis = RedisCluster::start(3);
    let mut cluster = Cluster::start();
    let ns = budgeted_key(&mut cluster);
    let patience = cluster.patience(Duration::from_secs(20));
    let urls = redis.urls().join(",");
    let flags = ["--redis-cluster", "--redis-url", &urls, "--redis-prefix", "fleet-b"];
    let operator = operator(&cluster, &ns, &flags, patience);
    let id = key_id(&cluster, &ns, &operator).await;
    let day = write_counters(|args| redis.cli(args), "fleet-b", &id);
    spend_shows(&cluster, &ns, &operator, &day).await;
}

/// A Redis that is down when the operator starts: it leads and compiles all the same, counts and
/// logs the failure once, and reads spend as soon as Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_stops_nothing_and_spend_follows_when_it_returns() {
    let mut redis = RedisServer::start();
    redis.kill();
    let mut cluster = Cluster::start();
    let ns = budgeted_key(&mut cluster);
    let patience = cluster.patience(Duration::from_secs(20));
    let operator = operator(&cluster, &ns, &["--redis-url", &redis.url()], patience);
    let id = key_id(&cluster, &ns, &operator).await;
    let failing = eventually(patience, async || {
        operator.metric("switchboard_operator_spend_read_errors_total").await >= 2
    })
    .await;
    assert!(failing, "{}", operator.log());
    let down = "cannot read VirtualKey spend from Redis";
    assert_eq!(operator.log().matches(down).count(), 1, "logged once per transition:\n{}", operator.log());
    assert_eq!(field(&cluster, &ns, ".status.spend"), "");

    redis.restart();
    let day = write_counters(|args| redis.cli(args), counters::DEFAULT_PREFIX, &id);
    spend_shows(&cluster, &ns, &operator, &day).await;
    assert!(operator.log().contains("reading VirtualKey spend from Redis"), "{}", operator.log());
}
