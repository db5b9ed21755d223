//! `--access-log`: one JSON object per request on the process's stdout, sampled with
//! `--access-log-sample`, errors always.

pub mod support;

use serde_json::Value;
use std::time::Duration;
use support::*;

const KEY: &str = "sk-access-log";

fn config() -> String {
    format!(
        r#"
version: 2
providers:
  - name: mock
    type: mock
routes:
  - model: mock
    backends: [{{ provider: mock, price: {{ input: "1", output: "2" }} }}]
keys:
  - id: reader
    labels: {{ team: search }}
    hash: "{}"
"#,
        hash_key(KEY)
    )
}

async fn chat(gateway: &Gateway, key: &str, body: &'static str) -> u16 {
    let auth = bearer(key);
    send("POST", &gateway.url("/v1/chat/completions"), &[(auth.0, auth.1.as_str())], body)
        .await
        .status
        .as_u16()
}

const PLAIN: &str = r#"{"model":"mock","messages":[{"role":"user","content":"one two three"}]}"#;
const STREAM: &str = r#"{"model":"mock","stream":true,"messages":[{"role":"user","content":"a b c"}]}"#;
const UNKNOWN: &str = r#"{"model":"nope","messages":[]}"#;

/// The access log once it has `n` lines (it is written after each request's last byte).
async fn lines(gateway: &Gateway, n: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    let complete = eventually(Duration::from_secs(5), async || {
        lines = gateway.access_log();
        lines.len() >= n
    })
    .await;
    assert!(complete, "{} of {n} access log lines: {lines:?}", lines.len());
    lines
}

#[tokio::test]
async fn every_request_is_one_json_line_with_its_accounting() {
    let gateway = Gateway::start(Some(&config()), &["--access-log"]);
    assert_eq!(chat(&gateway, KEY, PLAIN).await, 200);
    assert_eq!(chat(&gateway, KEY, STREAM).await, 200);
    assert_eq!(chat(&gateway, KEY, UNKNOWN).await, 404);
    let log = lines(&gateway, 3).await;
    assert_eq!(log.len(), 3, "{log:?}");
    let plain = log
        .iter()
        .find(|l| l["status"] == 200 && l["ttft_ms"].is_null())
        .unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(plain["key"], "reader");
    assert_eq!(plain["team"], "search");
    assert_eq!(plain["route"], "mock");
    assert_eq!(plain["provider"], "mock");
    assert_eq!(plain["attempts"], 1);
    assert_eq!(plain["error"], Value::Null);
    assert_eq!(plain["method"], "POST");
    assert_eq!(plain["path"], "/v1/chat/completions");
    assert!(
        plain["tokens_in"].as_u64().is_some_and(|n| n > 0)
            && plain["tokens_out"].as_u64().is_some_and(|n| n > 0)
    );
    assert!(plain["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{plain}");
    assert!(plain["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    let streamed = log.iter().find(|l| l["ttft_ms"].is_number()).unwrap_or_else(|| panic!("{log:?}"));
    let (ttft, latency) =
        (streamed["ttft_ms"].as_f64().unwrap_or(-1.0), streamed["latency_ms"].as_f64().unwrap_or(-1.0));
    assert!(0.0 <= ttft && ttft <= latency, "{streamed}");
    let failed = log.iter().find(|l| l["status"] == 404).unwrap_or_else(|| panic!("{log:?}"));
    assert_eq!(
        (failed["error"].as_str(), failed["attempts"].as_u64()),
        (Some("not_found"), Some(0)),
        "{failed}"
    );
    assert!(
        !std::fs::read_to_string(&gateway.stdout_path).unwrap_or_default().contains(KEY),
        "the key leaked"
    );
}

#[tokio::test]
async fn a_zero_sample_logs_only_errors() {
    let gateway = Gateway::start(Some(&config()), &["--access-log", "--access-log-sample", "0"]);
    for _ in 0..5 {
        assert_eq!(chat(&gateway, KEY, PLAIN).await, 200);
    }
    assert_eq!(chat(&gateway, "sk-wrong", PLAIN).await, 401);
    assert_eq!(chat(&gateway, KEY, UNKNOWN).await, 404);
    // Requests settle in order here (each answered before the next is sent), so once both
    // errors are in, every success before them has been decided.
    let log = lines(&gateway, 2).await;
    let statuses: Vec<&Value> = log.iter().map(|l| &l["status"]).collect();
    assert_eq!(statuses, [401, 404], "{log:?}");
    assert_eq!(log[0]["error"], "auth");
}

#[test]
fn a_sample_outside_zero_to_one_is_refused() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
        .args(["--access-log", "--access-log-sample", "1.5"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code() == Some(2) && stderr.contains("from 0 to 1"), "{stderr}");
}
