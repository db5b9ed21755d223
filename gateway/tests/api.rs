//! The OpenAI-compatible API end to end: the real binary, real HTTP, the built-in mock provider.

pub mod support;

use std::time::Duration;
use support::*;

const KEY: &str = "sk-test-full";
const LIMITED: &str = "sk-test-limited";

fn config() -> String {
    format!(
        r#"
version: 1
generation: 3
providers:
  - name: mock
    type: mock
routes:
  - model: mock
    backends: [{{ provider: mock }}]
  - model: other
    backends: [{{ provider: mock, model: other-upstream }}]
  - model: embed
    backends: [{{ provider: mock }}]
keys:
  - name: full
    hash: {full}
  - name: limited
    hash: {limited}
    models: [mock]
  - name: disabled
    hash: {disabled}
    disabled: true
  - name: expired
    hash: {expired}
    expires_at: "2020-01-01T00:00:00Z"
"#,
        full = hash_key(KEY),
        limited = hash_key(LIMITED),
        disabled = hash_key("sk-test-disabled"),
        expired = hash_key("sk-test-expired"),
    )
}

const CHAT: &str = r#"{"model":"mock","messages":[{"role":"user","content":"hello gateway"}]}"#;

#[tokio::test]
async fn embedded_default_config_serves_the_mock_model() {
    let gateway = Gateway::start(None, &[]);
    let auth = bearer("sk-switchboard-dev");
    let headers = [(auth.0, auth.1.as_str())];

    let response = send("POST", &gateway.url("/v1/chat/completions"), &headers, CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "Mock response to: hello gateway");
    assert_eq!(body["usage"]["prompt_tokens"], 2);
    assert!(response.headers.contains_key("x-request-id"));

    let stream = r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"hello gateway"}]}"#;
    let response = send("POST", &gateway.url("/v1/chat/completions"), &headers, stream).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let events = sse_data(&response.text());
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let text: String = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e).unwrap())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Mock response to: hello gateway");
    assert!(!response.text().contains("\"usage\""), "usage was not asked for");

    let response = send("GET", &gateway.url("/v1/models"), &headers, "").await;
    let ids: Vec<_> = response.json()["data"].as_array().unwrap().iter().map(|m| m["id"].clone()).collect();
    assert_eq!(ids, ["mock", "mock-embedding"]);

    let embed = r#"{"model":"mock-embedding","input":["a","b"]}"#;
    let response = send("POST", &gateway.url("/v1/embeddings"), &headers, embed).await;
    let body = response.json();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["embedding"].as_array().unwrap().len(), 16);

    assert_eq!(send("GET", &gateway.admin_url("/readyz"), &[], "").await.status, 200);
    assert_eq!(send("GET", &gateway.admin_url("/healthz"), &[], "").await.status, 200);
}

#[tokio::test]
async fn every_error_uses_the_openai_envelope_and_the_right_status() {
    let gateway = Gateway::start(Some(&config()), &["--max-body-bytes", "2000"]);
    let chat = gateway.url("/v1/chat/completions");
    let full = bearer(KEY);
    let full = [(full.0, full.1.as_str())];

    let error = send("POST", &chat, &full, "{not json").await.error(400);
    assert!(error["message"].as_str().unwrap().contains("not valid JSON"), "{error}");
    let error = send("POST", &chat, &full, r#"{"messages":[]}"#).await.error(400);
    assert_eq!(error["param"], "model");

    let error = send("POST", &chat, &[], CHAT).await.error(401);
    assert_eq!(error["code"], "missing_api_key");
    let error = send("POST", &chat, &[("authorization", "Bearer sk-nope")], CHAT).await.error(401);
    assert_eq!(error["code"], "invalid_api_key");
    send("POST", &chat, &[("x-api-key", "sk-test-disabled")], CHAT).await.error(401);
    let error = send("POST", &chat, &[("x-api-key", "sk-test-expired")], CHAT).await.error(401);
    assert!(error["message"].as_str().unwrap().contains("expired"));

    let other = r#"{"model":"other","messages":[{"role":"user","content":"hi"}]}"#;
    let error = send("POST", &chat, &[("x-api-key", LIMITED)], other).await.error(403);
    assert_eq!(error["code"], "model_not_allowed");
    assert_eq!(send("POST", &chat, &[("x-api-key", LIMITED)], CHAT).await.status, 200);

    let unknown = r#"{"model":"gpt-9","messages":[]}"#;
    let error = send("POST", &chat, &full, unknown).await.error(404);
    assert_eq!((error["code"].as_str(), error["param"].as_str()), (Some("model_not_found"), Some("model")));

    let big =
        format!(r#"{{"model":"mock","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(3000));
    send("POST", &chat, &full, big).await.error(413);

    send("GET", &gateway.url("/v1/nope"), &full, "").await.error(404);
    send("GET", &chat, &full, "").await.error(405);

    // The mock rejects what OpenAI would reject, with OpenAI's envelope.
    let error = send("POST", &chat, &full, r#"{"model":"mock"}"#).await.error(400);
    assert_eq!(error["param"], "messages");

    // A caller's request id is kept; otherwise one is made up.
    let mut headers = full.to_vec();
    headers.push(("x-request-id", "trace-abc-123"));
    let response = send("POST", &chat, &headers, CHAT).await;
    assert_eq!(response.headers["x-request-id"], "trace-abc-123");
    let a = send("POST", &chat, &full, CHAT).await.headers["x-request-id"].clone();
    let b = send("POST", &chat, &full, CHAT).await.headers["x-request-id"].clone();
    assert_ne!(a, b);
}

#[tokio::test]
async fn models_lists_only_what_the_key_may_use() {
    let gateway = Gateway::start(Some(&config()), &[]);
    let ids = |response: TestResponse| -> Vec<String> {
        response.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let full = send("GET", &gateway.url("/v1/models"), &[("x-api-key", KEY)], "").await;
    assert_eq!(ids(full), ["mock", "other", "embed"]);
    let limited = send("GET", &gateway.url("/v1/models"), &[("x-api-key", LIMITED)], "").await;
    assert_eq!(ids(limited), ["mock"]);
    let one = send("GET", &gateway.url("/v1/models/mock"), &[("x-api-key", LIMITED)], "").await;
    assert_eq!(one.json()["id"], "mock");
    send("GET", &gateway.url("/v1/models/other"), &[("x-api-key", LIMITED)], "").await.error(404);
    send("GET", &gateway.url("/v1/models"), &[], "").await.error(401);
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_config() {
    let gateway = Gateway::start(Some(&config()), &[]);
    let chat = gateway.url("/v1/chat/completions");
    for _ in 0..3 {
        assert_eq!(send("POST", &chat, &[("x-api-key", KEY)], CHAT).await.status, 200);
    }
    send("POST", &chat, &[], CHAT).await.error(401);
    assert_eq!(gateway.metric(r#"switchboard_requests_total{route="mock",status="200"}"#).await, 3.0);
    assert_eq!(gateway.metric(r#"switchboard_requests_total{route="",status="401"}"#).await, 1.0);
    assert_eq!(
        gateway.metric_sum("switchboard_tokens_total", &[("route", "mock"), ("type", "input")]).await,
        6.0
    );
    assert_eq!(
        gateway.metric_sum("switchboard_tokens_total", &[("route", "mock"), ("type", "output")]).await,
        15.0
    );
    assert_eq!(gateway.metric(r#"switchboard_request_duration_seconds_count{route="mock"}"#).await, 3.0);
    assert_eq!(gateway.metric("switchboard_config_generation").await, 3.0);
    assert_eq!(gateway.metric("switchboard_config_reload_failures_total").await, 0.0);
}

#[tokio::test]
async fn keys_never_reach_the_logs() {
    let gateway = Gateway::start(Some(&config()), &["--log-level", "trace", "--access-log"]);
    let chat = gateway.url("/v1/chat/completions");
    send("POST", &chat, &[("x-api-key", KEY)], CHAT).await;
    send("POST", &chat, &[("authorization", "Bearer sk-wrong-secret")], CHAT).await;
    send("POST", &chat, &[("x-api-key", "sk-test-disabled")], CHAT).await;
    let stream = r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"x"}]}"#;
    send("POST", &chat, &[("x-api-key", KEY)], stream).await;
    let log = gateway.log();
    assert!(log.contains("request refused"), "trace logging should show refusals:\n{log}");
    // The access log (stdout, one JSON object a line) names the key by its id.
    let mut access = Vec::new();
    assert!(
        eventually(Duration::from_secs(5), async || {
            access = gateway.access_log();
            access.len() == 4
        })
        .await
    );
    assert_eq!(
        (access[0]["route"].as_str(), access[0]["key"].as_str()),
        (Some("mock"), Some("full")),
        "{}",
        access[0]
    );
    assert_eq!((access[0]["provider"].as_str(), access[0]["status"].as_u64()), (Some("mock"), Some(200)));
    assert_eq!(access[1]["status"], 401, "{}", access[1]);
    let stdout = std::fs::read_to_string(&gateway.stdout_path).unwrap();
    for secret in [KEY, "sk-wrong-secret", "sk-test-disabled"] {
        assert!(!log.contains(secret), "{secret} leaked into the log:\n{log}");
        assert!(!stdout.contains(secret), "{secret} leaked into the access log:\n{stdout}");
    }
}

#[test]
fn an_invalid_config_at_startup_is_refused_with_every_field_path() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.yaml");
    std::fs::write(
        &path,
        "version: 1\nproviders:\n  - name: mock\n    type: mock\nroutes:\n  - model: a\n    backends: [{provider: opnai}]\n  - model: b\n    backends: [{provider: mock, weight: 0}]\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"routes[0].backends[0].provider: unknown provider "opnai""#), "{stderr}");
    assert!(stderr.contains("routes[1].backends[0].weight: must be at least 1"), "{stderr}");
}
