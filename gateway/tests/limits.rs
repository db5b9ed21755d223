//! Rate limits, concurrency limits, budgets and cost on one gateway (`mode: local`): what the
//! client is told (OpenAI's headers and error codes) and what is counted (exact usage, streams
//! cut short included). Fleet-wide limits in Redis are in `limits_redis.rs`.

pub mod support;

use std::time::Duration;
use support::*;

const KEY: &str = "sk-limits-local";

/// The built-in mock answers with a fixed five-word reply, so every answer is 5 output tokens;
/// `slow` streams it at 5 tokens per second (a second per answer).
fn config(policies: &str, key_extra: &str) -> String {
    format!(
        r#"
version: 2
providers:
  - {{ name: mock, type: mock, reply: "one two three four five" }}
  - {{ name: slow, type: mock, reply: "one two three four five", tokens_per_second: 5 }}
routes:
  - model: m
    backends: [{{ provider: mock, price: {{ input: "0", output: "10000" }} }}]
    policies: [route-limit]
  - model: slow
    backends: [{{ provider: slow }}]
    policies: [route-limit]
keys:
  - {{ id: team-key, labels: {{ team: search }}, hash: {hash}{key_extra} }}
policies:
  - {{ name: route-limit, scope: route, concurrent_requests: 1000 }}
{policies}
"#,
        hash = hash_key(KEY)
    )
}

fn chat(model: &str, extra: &str) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":5,"messages":[{{"role":"user","content":"hi there"}}]{extra}}}"#
    )
}

async fn ask(gateway: &Gateway, model: &str) -> TestResponse {
    send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], chat(model, "")).await
}

fn header(response: &TestResponse, name: &str) -> String {
    response.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_request_limit_answers_like_openai() {
    let policy = "  - { name: three, scope: key, window_seconds: 60, requests: 3, total_tokens: 1000 }";
    let gateway = Gateway::start(Some(&config(policy, ", policies: [three]")), &[]);
    for remaining in ["2", "1", "0"] {
        let response = ask(&gateway, "m").await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(header(&response, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header(&response, "x-ratelimit-remaining-requests"), remaining);
        assert_eq!(header(&response, "x-ratelimit-limit-tokens"), "1000");
        assert!(header(&response, "x-ratelimit-reset-requests").ends_with('s'), "{:?}", response.headers);
    }
    let refused = ask(&gateway, "m").await;
    let error = refused.error(429);
    assert_eq!(error["code"], "rate_limit_exceeded", "{error}");
    assert_eq!(error["type"], "requests");
    assert!(error["message"].as_str().unwrap().contains("'three'"), "{error}");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    // This window's end, then the time for its count to decay enough: at most two windows.
    assert!((1..=120).contains(&retry), "Retry-After {retry}");
    assert_eq!(header(&refused, "x-ratelimit-remaining-requests"), "0");
    assert_eq!(gateway.metric("switchboard_rate_limited_total").await, 1.0);
    // Three answers of 2 prompt and 5 completion tokens, exactly (the refused one took nothing).
    let tokens = async |kind| {
        gateway.metric_sum("switchboard_tokens_total", &[("key", "team-key"), ("type", kind)]).await
    };
    assert_eq!((tokens("input").await, tokens("output").await), (6.0, 15.0));
}

#[tokio::test]
async fn a_concurrency_limit_frees_its_place_when_a_stream_ends() {
    let policy = "  - { name: one-at-a-time, scope: key, concurrent_requests: 1 }";
    let gateway = Gateway::start(Some(&config(policy, ", policies: [one-at-a-time]")), &[]);
    let client = client();
    let url = gateway.url("/v1/chat/completions");
    let stream = open_stream(&client, &url, &[("x-api-key", KEY)], chat("slow", r#","stream":true"#)).await;
    assert_eq!(stream.status(), 200);
    let busy = ask(&gateway, "m").await;
    assert_eq!(busy.error(429)["code"], "rate_limit_exceeded");
    // Read the stream to its end: the place is given back.
    let mut body = stream.into_body();
    while next_chunk(&mut body).await.is_some() {}
    drop(body);
    let freed = eventually(Duration::from_secs(5), async || ask(&gateway, "m").await.status == 200).await;
    assert!(freed, "the stream's place was never given back");
}

#[tokio::test]
async fn a_stream_cut_by_the_client_settles_what_was_relayed() {
    let policy = "  - { name: tokens, scope: key, window_seconds: 3600, total_tokens: 100000 }";
    let gateway = Gateway::start(Some(&config(policy, ", policies: [tokens]")), &[]);
    let client = client();
    let url = gateway.url("/v1/chat/completions");
    let stream = open_stream(&client, &url, &[("x-api-key", KEY)], chat("slow", r#","stream":true"#)).await;
    let mut body = stream.into_body();
    for _ in 0..3 {
        assert!(next_chunk(&mut body).await.is_some());
    }
    drop(body);
    drop(client);
    let settled = eventually(Duration::from_secs(5), async || {
        gateway.metric(r#"switchboard_streams_aborted_total{route="slow"}"#).await == 1.0
    })
    .await;
    assert!(settled);
    let output =
        gateway.metric_sum("switchboard_tokens_total", &[("route", "slow"), ("type", "output")]).await;
    let input = gateway.metric_sum("switchboard_tokens_total", &[("route", "slow"), ("type", "input")]).await;
    // The usage chunk never came: the prompt estimate and at least the relayed events count.
    assert!(input > 0.0 && output >= 2.0, "input {input}, output {output}");
    // And the limit was charged the same: the next answer shows less than the full window left.
    let next = ask(&gateway, "m").await;
    let remaining: f64 = header(&next, "x-ratelimit-remaining-tokens").parse().unwrap();
    assert!(remaining <= 100_000.0 - input - output - 5.0, "remaining {remaining}");
}

#[tokio::test]
async fn a_budget_stops_spend_within_one_request_and_cost_is_exported() {
    // 5 output tokens at $10,000 per million: $0.05 an answer, reserved exactly (max_tokens 5,
    // free input), so a $0.20 daily budget admits exactly four.
    let budget = r#", budget: { daily_usd: "0.20", mode: local }"#;
    let gateway = Gateway::start(Some(&config("", budget)), &[]);
    for _ in 0..4 {
        let response = ask(&gateway, "m").await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    let refused = ask(&gateway, "m").await;
    let error = refused.error(429);
    assert_eq!(error["code"], "budget_exceeded", "{error}");
    assert_eq!(error["type"], "insufficient_quota");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until the next UTC day: {retry}");
    let cost = r#"switchboard_cost_usd_total{route="m",provider="mock",team="search",key="team-key"}"#;
    assert_eq!(gateway.metric(cost).await, 0.2);
}

#[tokio::test]
async fn key_labels_can_be_left_out_of_usage_metrics() {
    let gateway = Gateway::start(Some(&config("", "")), &["--no-key-metrics"]);
    assert_eq!(ask(&gateway, "m").await.status, 200);
    let metrics = send("GET", &gateway.admin_url("/metrics"), &[], "").await.text();
    let cost = metrics.lines().find(|l| l.starts_with("switchboard_cost_usd_total{")).unwrap_or_default();
    assert_eq!(cost, r#"switchboard_cost_usd_total{route="m",provider="mock",team="search"} 0.05"#);
}
