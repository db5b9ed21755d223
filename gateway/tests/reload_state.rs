//! What a reload keeps and what it drops: backend health and balancing survive a reload that
//! does not touch the backend, series of removed routes disappear, an older generation is
//! refused, and rate-limit counters are kept.

pub mod support;

use std::time::Duration;
use support::*;

const KEY: &str = "sk-reload-state";

/// Route `r` splits 1:1 between a provider nobody listens on and the built-in mock; `extra`
/// adds routes that have nothing to do with `r`.
fn config(generation: u64, extra: &str) -> String {
    format!(
        r#"
version: 2
generation: {generation}
providers:
  - {{ name: nowhere, type: openai, base_url: "http://127.0.0.1:1/v1", timeout_ms: 2000 }}
  - {{ name: mock, type: mock }}
routes:
  - model: r
    backends: [{{ provider: nowhere }}, {{ provider: mock }}]
{extra}
keys:
  - {{ id: k, hash: {hash} }}
"#,
        hash = hash_key(KEY)
    )
}

const OTHER_ROUTE: &str = "  - model: other\n    backends: [{ provider: mock }]";

async fn chat(gateway: &Gateway, model: &str) {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

const NOWHERE_ATTEMPTS: &str =
    r#"switchboard_upstream_requests_total{provider="nowhere",outcome="connect_error"}"#;

async fn wait_for_generation(gateway: &Gateway, generation: u64) {
    let applied = eventually(Duration::from_secs(10), async || {
        gateway.metric("switchboard_config_generation").await == generation as f64
    })
    .await;
    assert!(applied, "generation {generation} was not applied:\n{}", gateway.log());
}

#[tokio::test]
async fn a_reload_that_does_not_touch_a_backend_keeps_it_ejected() {
    let gateway = Gateway::start(Some(&config(1, "")), &[]);
    // Every request succeeds (the mock answers after `nowhere` fails) until `nowhere` has failed
    // three times in a row and is ejected.
    while gateway.metric(r#"switchboard_backend_ejections_total{provider="nowhere"}"#).await < 1.0 {
        chat(&gateway, "r").await;
    }
    let attempts = gateway.metric(NOWHERE_ATTEMPTS).await;
    assert_eq!(attempts, 3.0);
    chat(&gateway, "r").await;
    chat(&gateway, "r").await;
    assert_eq!(gateway.metric(NOWHERE_ATTEMPTS).await, attempts, "an ejected backend is tried last");

    gateway.replace_config(&config(2, OTHER_ROUTE));
    wait_for_generation(&gateway, 2).await;
    // With health rebuilt on reload, one of these two would go to `nowhere` first.
    chat(&gateway, "r").await;
    chat(&gateway, "r").await;
    assert_eq!(gateway.metric(NOWHERE_ATTEMPTS).await, attempts, "the reload forgot the ejection");
    assert_eq!(gateway.metric(r#"switchboard_backend_ejections_total{provider="nowhere"}"#).await, 1.0);
}

#[tokio::test]
async fn removed_routes_lose_their_series_and_older_generations_are_refused() {
    let gateway = Gateway::start(Some(&config(5, OTHER_ROUTE)), &[]);
    chat(&gateway, "other").await;
    let other = r#"switchboard_requests_total{route="other",status="200"}"#;
    assert_eq!(gateway.metric(other).await, 1.0);

    gateway.replace_config(&config(6, ""));
    wait_for_generation(&gateway, 6).await;
    let metrics = send("GET", &gateway.admin_url("/metrics"), &[], "").await.text();
    assert!(!metrics.contains(r#"route="other""#), "a removed route is still exported:\n{metrics}");

    gateway.replace_config(&config(4, OTHER_ROUTE));
    let refused = eventually(Duration::from_secs(10), async || {
        gateway.metric("switchboard_config_reload_failures_total").await == 1.0
    })
    .await;
    assert!(refused, "an older generation was not refused:\n{}", gateway.log());
    assert_eq!(gateway.metric("switchboard_config_generation").await, 6.0);
    assert!(
        gateway.log().contains("generation 4 is older than the served generation 6"),
        "{}",
        gateway.log()
    );
}

#[tokio::test]
async fn rate_limit_counters_survive_a_reload() {
    let policy = "    policies: [per-minute]\npolicies:\n  - { name: per-minute, scope: route, window_seconds: 60, requests: 1 }";
    let gateway = Gateway::start(Some(&config(1, policy)), &[]);
    assert_eq!(gateway.metric("switchboard_policies_counted_locally").await, 0.0, "a local policy");
    chat(&gateway, "r").await;
    let more = "  - { name: in-flight, scope: key, concurrent_requests: 5 }";
    gateway.replace_config(&config(2, &format!("{policy}\n{more}")));
    wait_for_generation(&gateway, 2).await;
    let body = r#"{"model":"r","messages":[{"role":"user","content":"hi"}]}"#;
    let second = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
    assert_eq!(second.status, 429, "the reload kept the count: {}", second.text());
    assert_eq!(second.json()["error"]["code"], "rate_limit_exceeded");
}
