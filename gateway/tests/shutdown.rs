//! SIGTERM: in-flight streams finish, new connections are refused, the drain has a deadline.

pub mod support;

use http_body_util::BodyExt;
use std::time::Duration;
use support::*;

const KEY: &str = "sk-drain";

/// Route `slow` streams 20 words at 20 tokens/s: about one second. Route `endless` streams 3600
/// words at one a second: an hour, so it cannot end before the process does.
fn config() -> String {
    let words = |n: usize| (1..=n).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    format!(
        "version: 1\nproviders:\n  - name: mock\n    type: mock\n    tokens_per_second: 20\n    reply: {slow}\n  - name: hour\n    type: mock\n    tokens_per_second: 1\n    reply: {endless}\nroutes:\n  - model: slow\n    backends: [{{provider: mock}}]\n  - model: endless\n    backends: [{{provider: hour}}]\nkeys:\n  - name: k\n    hash: {hash}\n",
        slow = words(20),
        endless = words(3600),
        hash = hash_key(KEY)
    )
}

const STREAM: &str = r#"{"model":"slow","stream":true,"messages":[{"role":"user","content":"go"}]}"#;
const ENDLESS_STREAM: &str =
    r#"{"model":"endless","stream":true,"messages":[{"role":"user","content":"go"}]}"#;

#[tokio::test]
async fn sigterm_lets_the_stream_finish_and_refuses_new_connections() {
    let mut gateway = Gateway::start(Some(&config()), &["--drain-timeout", "10"]);
    let client = client();
    let response =
        open_stream(&client, &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], STREAM).await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = String::from_utf8(next_chunk(&mut body).await.unwrap().to_vec()).unwrap();

    gateway.sigterm();
    let refused = eventually(Duration::from_secs(2), async || {
        tokio::net::TcpStream::connect(gateway.api).await.is_err()
    })
    .await;
    assert!(refused, "new connections must be refused once draining");
    let ready = send("GET", &gateway.admin_url("/readyz"), &[], "").await;
    assert_eq!(ready.status, 503, "/readyz reports the drain");

    while let Some(chunk) = next_chunk(&mut body).await {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = sse_data(&received);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"), "the stream was cut: {received}");
    let text: String = events[..events.len() - 1]
        .iter()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text.split_whitespace().count(), 20);
    let status = gateway.wait_exit(Duration::from_secs(5)).expect("the gateway exits after draining");
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn the_drain_deadline_bounds_shutdown() {
    let mut gateway = Gateway::start(Some(&config()), &["--drain-timeout", "0"]);
    let client = client();
    let response =
        open_stream(&client, &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], ENDLESS_STREAM)
            .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = String::from_utf8(next_chunk(&mut body).await.unwrap().to_vec()).unwrap();
    gateway.sigterm();
    // Waiting for the hour-long stream instead of the deadline would not exit in time.
    let status = gateway.wait_exit(Duration::from_secs(5)).expect("exits at the deadline");
    assert!(status.success(), "{status:?}");
    // The process is gone, so the body ends now (cleanly or with an error), cut short.
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            received.push_str(std::str::from_utf8(&data).unwrap());
        }
    }
    assert!(!received.contains("[DONE]"), "the stream was not cut: {received}");
}
