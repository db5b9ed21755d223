//! `/metrics` read by the Prometheus project's own parsers (`tests/py/metrics_check.py`: the
//! Python client's strict OpenMetrics parser and its classic text parser) after plain,
//! streamed and failing requests; and the number of series with 10,000 configured keys.
//!
//! The parsers are Python's because they are the reference implementations Prometheus' own
//! tests are written against, and the venv the other end-to-end checks use already exists;
//! no maintained Rust crate parses OpenMetrics strictly (`# EOF`, suffix and bucket rules).

#![expect(clippy::unwrap_used, reason = "test helpers: a failed step must abort the test")]

pub mod support;

use serde_json::Value;
use std::collections::HashSet;
use support::*;

const KEY: &str = "sk-metrics-0";

/// A config with `keys` virtual keys (`sk-metrics-{i}`, named `k{i}`), the built-in mock, and a
/// route to a provider that refuses connections.
fn config(keys: usize, dead: std::net::SocketAddr) -> String {
    let mut text = format!(
        r#"
version: 2
generation: 1
providers:
  - name: mock
    type: mock
  - name: dead
    type: openai
    base_url: http://{dead}/v1
routes:
  - model: mock
    backends: [{{ provider: mock, price: {{ input: "1", output: "2" }} }}]
  - model: broken
    backends: [{{ provider: dead }}]
keys:
"#
    );
    for i in 0..keys {
        let team = i % 3;
        let hash = hash_key(&format!("sk-metrics-{i}"));
        text.push_str(&format!("  - {{ id: k{i}, labels: {{ team: t{team} }}, hash: \"{hash}\" }}\n"));
    }
    text
}

/// A loopback address nothing listens on: bound, then closed.
fn refused_address() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

async fn chat(gateway: &Gateway, key: &str, body: &'static str) -> TestResponse {
    send("POST", &gateway.url("/v1/chat/completions"), &[("authorization", &format!("Bearer {key}"))], body)
        .await
}

const PLAIN: &str = r#"{"model":"mock","messages":[{"role":"user","content":"one two three"}]}"#;
const STREAM: &str =
    r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"stream me some words"}]}"#;

/// Every sample of a scrape, parsed by the Python parsers.
async fn scrape(gateway: &Gateway) -> Vec<Value> {
    let output = python_output("metrics_check.py", &[gateway.admin_url("/metrics")], "metrics ok").await;
    output.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn value(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(found.len(), 1, "{name} {labels:?}: {found:?}");
    found[0]
}

#[tokio::test]
async fn scrapes_parse_and_count_first_tokens_gaps_and_errors_by_type() {
    let gateway = Gateway::start(Some(&config(3, refused_address())), &[]);
    assert_eq!(chat(&gateway, KEY, PLAIN).await.status, 200);
    let streamed = chat(&gateway, KEY, STREAM).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert_eq!(chat(&gateway, KEY, r#"{"model":"broken","messages":[]}"#).await.status, 502);
    assert_eq!(chat(&gateway, KEY, r#"{"model":"nope","messages":[]}"#).await.status, 404);
    assert_eq!(chat(&gateway, "sk-wrong", PLAIN).await.status, 401);
    // The ledger settles after the last byte has gone out: wait for the counts.
    let wait = std::time::Duration::from_secs(5);
    let settled = r#"switchboard_requests_total{route="mock",status="200"}"#;
    assert_eq!(gateway.metric_reaches(settled, 2.0, wait).await, Some(2.0));
    let settled = r#"switchboard_requests_total{route="",status="401"}"#;
    assert_eq!(gateway.metric_reaches(settled, 1.0, wait).await, Some(1.0));

    let samples = scrape(&gateway).await;
    let route = [("route", "mock"), ("provider", "mock")];
    // One stream: one first token; its later reads are gaps. The whole answer is no TTFT.
    assert_eq!(value(&samples, "switchboard_time_to_first_token_seconds_count", &route), 1.0);
    assert!(value(&samples, "switchboard_time_between_tokens_seconds_count", &route) >= 3.0);
    assert_eq!(value(&samples, "switchboard_request_duration_seconds_count", &[("route", "mock")]), 2.0);
    let errors = |route: &str, kind: &str| {
        value(&samples, "switchboard_errors_total", &[("route", route), ("type", kind)])
    };
    assert_eq!(errors("broken", "upstream_unreachable"), 1.0);
    assert_eq!(errors("", "not_found"), 1.0);
    assert_eq!(errors("", "auth"), 1.0);
    assert!(!samples.iter().any(|s| s["family"] == "switchboard_errors" && s["labels"]["route"] == "mock"));
    // Every attempt counts: the route's one dead backend was tried 3 times (the default
    // max_attempts, retries within the budget).
    let upstream = [("provider", "dead"), ("outcome", "connect_error")];
    assert_eq!(value(&samples, "switchboard_upstream_requests_total", &upstream), 3.0);
    assert!(value(&samples, "switchboard_cost_usd_total", &[("route", "mock"), ("key", "k0")]) > 0.0);
    assert_eq!(value(&samples, "switchboard_config_generation", &[]), 1.0);
    assert_eq!(value(&samples, "switchboard_config_info", &[]), 1.0);
    // No label ever carries a key or a prompt.
    for sample in &samples {
        let text = sample.to_string();
        assert!(!text.contains("sk-metrics") && !text.contains("stream me"), "{text}");
    }
}

/// Every series of a scrape, by name and labels.
fn series(samples: &[Value]) -> HashSet<String> {
    samples.iter().map(|s| format!("{}{}", s["name"], s["labels"])).collect()
}

#[tokio::test]
async fn ten_thousand_keys_keep_the_series_bounded() {
    const KEYS: usize = 10_000;
    let config = config(KEYS, refused_address());
    let used: Vec<String> = (0..KEYS).step_by(25).map(|i| format!("sk-metrics-{i}")).collect();
    for (flags, per_key) in [(&["--no-key-metrics"][..], false), (&[][..], true)] {
        let gateway = Gateway::start(Some(&config), flags);
        assert_eq!(chat(&gateway, KEY, PLAIN).await.status, 200);
        let settled = r#"switchboard_requests_total{route="mock",status="200"}"#;
        gateway.metric_reaches(settled, 1.0, std::time::Duration::from_secs(5)).await;
        let before = series(&scrape(&gateway).await);
        for key in &used {
            assert_eq!(chat(&gateway, key, PLAIN).await.status, 200);
        }
        let total = 1.0 + used.len() as f64;
        assert_eq!(
            gateway.metric_reaches(settled, total, std::time::Duration::from_secs(10)).await,
            Some(total)
        );
        let after = series(&scrape(&gateway).await);
        let added: Vec<&String> = after.difference(&before).collect();
        if per_key {
            // Four token types and a cost per key used (the first key was already counted),
            // every one of them naming a configured key, and nothing else new.
            assert_eq!(added.len(), 5 * (used.len() - 1), "{:?}", &added[..5.min(added.len())]);
            assert!(added.iter().all(|s| s.contains("\"key\":\"k")), "{added:?}");
        } else {
            // Teams are labels too, and bounded: three of them, the first already seen.
            assert!(added.len() <= 2 * 5, "series grew with keys: {added:?}");
            assert!(after.iter().all(|s| !s.contains("\"key\"")), "a key label without key metrics");
        }
    }
}
