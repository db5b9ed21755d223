//! Limits, budgets and key rotation through the whole chain: `kubectl apply` → the real operator
//! → three gateway replicas sharing one real Redis, and back: `kubectl get virtualkeys` shows
//! what the replicas spent. Runs against the in-repo API server, or the cluster `KUBECONFIG`
//! names (as `operator.rs` does).

use std::time::Duration;
use switchboard_e2e::{Cluster, Gateway, Operator, eventually};
use switchboard_test_redis::RedisServer;

const NEW_KEY: &str = "sk-rotated-new-0123456789";
const OLD_KEY: &str = "sk-rotated-old-0123456789";

/// A mock provider answering five words, a route pricing output at $10,000 per million tokens
/// ($0.05 an answer with `max_tokens: 5`), and a VirtualKey `caller` (spec extra: `key_spec`).
fn manifest(ns: &str, key_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {ns} }}\n---\n\
         apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{ name: mock, namespace: {ns} }}\n\
         spec: {{ type: mock, mock: {{ reply: \"one two three four five\" }} }}\n---\n\
         apiVersion: switchboard.dev/v1alpha1\nkind: ModelRoute\nmetadata: {{ name: chat, namespace: {ns} }}\n\
         spec: {{ model: chat, backends: [{{ providerRef: {{ name: mock }}, price: {{ input: \"0\", output: \"10000\" }} }}] }}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{ name: caller, namespace: {ns} }}\nstringData: {{ key: {NEW_KEY}, old: {OLD_KEY} }}\n---\n\
         apiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: caller, namespace: {ns} }}\n\
         spec: {{ secretRef: {{ name: caller }}{key_spec} }}\n"
    )
}

fn replicas(stream: &str, redis: &str) -> Vec<Gateway> {
    (0..3)
        .map(|i| {
            let name = format!("gw-{i}");
            Gateway::start(&[
                "--operator",
                stream,
                "--operator-insecure",
                "--replica-name",
                &name,
                "--redis-url",
                redis,
            ])
        })
        .collect()
}

async fn chat(gateway: &Gateway, key: &str) -> (u16, String) {
    let body = r#"{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#;
    gateway.call("POST", "/v1/chat/completions", Some(key), body).await
}

/// RFC 3339, UTC, `seconds` from now.
fn in_seconds(seconds: i64) -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let at = now + seconds;
    let (year, month, day) = switchboard_config::civil_date(at);
    let time = at.rem_euclid(86_400);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", time / 3600, time % 3600 / 60, time % 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_keys_work_and_after_it_the_old_one_is_refused_everywhere() {
    let redis = RedisServer::start();
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("rotation");
    let patience = cluster.patience(Duration::from_secs(20));
    let valid_until = in_seconds(6);
    let rotation = format!(
        ", rotation: {{ previousSecretRef: {{ name: caller, key: old }}, validUntil: \"{valid_until}\" }}"
    );
    cluster.apply(&manifest(&ns, &rotation));
    let (operator, stream) = Operator::leading_with(&cluster, &ns, &[], patience);
    let replicas = replicas(&stream, &redis.url());
    for replica in &replicas {
        let both = eventually(patience, async || {
            chat(replica, NEW_KEY).await.0 == 200 && chat(replica, OLD_KEY).await.0 == 200
        })
        .await;
        assert!(both, "both keys during the overlap:\n{}\n{}", operator.log(), replica.log());
    }
    // After validUntil, without any change pushed: each replica refuses the old key itself.
    for replica in &replicas {
        let retired = eventually(patience, async || chat(replica, OLD_KEY).await.0 == 401).await;
        assert!(retired, "the old key still works after {valid_until}");
        assert_eq!(chat(replica, NEW_KEY).await.0, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_budget_holds_across_replicas_and_kubectl_get_shows_the_spend() {
    let redis = RedisServer::start();
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("budget");
    let patience = cluster.patience(Duration::from_secs(20));
    cluster.apply(&manifest(&ns, ", budget: { dailyUsd: \"0.20\" }"));
    let flags = ["--redis-url", &redis.url(), "--spend-interval-seconds", "1"];
    let (operator, stream) = Operator::leading_with(&cluster, &ns, &flags, patience);
    let replicas = replicas(&stream, &redis.url());
    for replica in &replicas {
        let serving = eventually(patience, async || replica.ready().await).await;
        assert!(serving, "{}", replica.log());
    }
    // $0.05 an answer, reserved exactly: four answers, whichever replicas serve them.
    let served = eventually(patience, async || chat(&replicas[0], NEW_KEY).await.0 == 200).await;
    assert!(served, "{}", operator.log());
    let mut answered = 1;
    let mut refusal = String::new();
    for replica in replicas.iter().cycle().take(9) {
        match chat(replica, NEW_KEY).await {
            (200, _) => answered += 1,
            (429, body) => refusal = body,
            (status, body) => panic!("{status}: {body}"),
        }
    }
    assert_eq!(answered, 4, "{refusal}");
    assert!(refusal.contains("budget_exceeded"), "{refusal}");
    let column = || {
        let table = cluster.kubectl(&["get", "virtualkeys", "-n", &ns]);
        let mut lines = table.lines();
        let at = lines.next().and_then(|header| header.find("SPENT TODAY"));
        let row = lines.find(|l| l.starts_with("caller "));
        at.zip(row).and_then(|(at, row)| row.get(at..)?.split_whitespace().next().map(str::to_owned))
    };
    let shown = eventually(patience, async || column().as_deref() == Some("0.20")).await;
    assert!(shown, "{:?}\n{}", column(), operator.log());
}
