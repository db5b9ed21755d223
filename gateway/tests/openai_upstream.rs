//! The `openai` provider against a mock OpenAI-compatible upstream on loopback: passthrough,
//! streaming usage, upstream errors, fallback and cancellation.

pub mod support;

use std::time::Duration;
use support::*;
use switchboard_mock_upstream::{MockUpstream, Options};

const KEY: &str = "sk-client-key";
const UPSTREAM_KEY: &str = "sk-upstream-secret";

#[expect(clippy::panic, reason = "test helper")]
async fn upstream() -> MockUpstream {
    let options = Options { api_key: Some(UPSTREAM_KEY.to_owned()), ..Options::default() };
    let bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    MockUpstream::start_with(bind, options).await.unwrap_or_else(|e| panic!("mock upstream: {e}"))
}

/// Routes: `gpt` → upstream model `gpt-upstream`; `<name>` → upstream model `<name>` for the mock
/// upstream's behaviours; `fallback` → a failing primary, then a working secondary.
fn config(base_url: &str) -> String {
    format!(
        r#"
version: 1
providers:
  - name: primary
    type: openai
    base_url: {base_url}
    api_key: {{ value: {UPSTREAM_KEY} }}
    timeout_ms: 500
  - name: secondary
    type: openai
    base_url: {base_url}
    api_key: {{ value: {UPSTREAM_KEY} }}
  - name: nowhere
    type: openai
    base_url: http://127.0.0.1:1/v1
  - name: no-stream-options
    type: openai
    base_url: {base_url}
    api_key: {{ value: {UPSTREAM_KEY} }}
    stream_usage: false
routes:
  - model: gpt
    backends: [{{ provider: primary, model: gpt-upstream }}]
  - model: error-400
    backends: [{{ provider: primary }}]
  - model: error-503
    backends: [{{ provider: primary }}]
  - model: error-429
    backends: [{{ provider: primary }}]
  - model: slow-3000
    backends: [{{ provider: primary }}]
  - model: midstream-error
    backends: [{{ provider: primary }}]
  - model: stream-200-20
    backends: [{{ provider: primary }}]
  - model: stream-5-1000
    backends: [{{ provider: primary }}]
  - model: unreachable
    backends: [{{ provider: nowhere }}]
  - model: fallback
    backends:
      - {{ provider: primary, model: error-503, priority: 0 }}
      - {{ provider: nowhere, priority: 1 }}
      - {{ provider: secondary, model: healthy, priority: 2 }}
  - model: embed
    backends: [{{ provider: primary, model: embed-upstream }}]
  - model: plain-stream
    backends: [{{ provider: no-stream-options }}]
  - model: continuous-usage
    backends: [{{ provider: primary }}]
  - model: weighted
    backends:
      - {{ provider: primary, model: a, weight: 3 }}
      - {{ provider: secondary, model: b, weight: 1 }}
keys:
  - name: client
    hash: {hash}
"#,
        hash = hash_key(KEY)
    )
}

fn chat(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi there"}}]{extra}}}"#)
}

/// One chat request to `model` with the client key; `extra` is appended to the JSON body.
async fn ask(gateway: &Gateway, model: &str, extra: &str) -> TestResponse {
    send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], chat(model, extra)).await
}

/// The `data:` payload of a stream's last event, parsed.
#[expect(clippy::unwrap_used, reason = "test helper: a malformed stream fails the test")]
fn last_event(response: &TestResponse) -> serde_json::Value {
    let events = sse_data(&response.text());
    serde_json::from_str(events.last().unwrap()).unwrap()
}

#[tokio::test]
async fn passthrough_rewrites_only_the_model_and_uses_the_provider_key() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let body = chat("gpt", r#","temperature":0.5,"x_future_field":{"nested":[1,"two",null]},"n":1"#);
    let response = send("POST", &gateway.url("/v1/chat/completions"), &[("x-api-key", KEY)], body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.headers["x-switchboard-provider"], "primary");
    assert_eq!(response.json()["choices"][0]["message"]["content"], "mock reply to: hi there");

    let seen = mock.last_request().unwrap();
    assert_eq!(seen.body["model"], "gpt-upstream");
    assert_eq!(seen.body["temperature"], 0.5);
    assert_eq!(seen.body["x_future_field"], serde_json::json!({"nested": [1, "two", null]}));
    assert!(seen.body.get("stream_options").is_none(), "non-streaming requests are not changed");
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {UPSTREAM_KEY}").as_str()));
    assert!(seen.header("x-api-key").is_none(), "the client's key must not go upstream");
    let request_id = response.headers["x-request-id"].to_str().unwrap();
    assert_eq!(seen.header("x-request-id"), Some(request_id), "the request id is forwarded");

    let response = send(
        "POST",
        &gateway.url("/v1/embeddings"),
        &[("x-api-key", KEY)],
        r#"{"model":"embed","input":"abc","encoding_format":"float"}"#,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(mock.last_request().unwrap().body["model"], "embed-upstream");
    assert_eq!(
        gateway.metric_sum("switchboard_tokens_total", &[("route", "gpt"), ("type", "input")]).await,
        2.0
    );
}

#[tokio::test]
async fn streams_count_usage_and_strip_it_unless_asked() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let url = gateway.url("/v1/chat/completions");

    let response = ask(&gateway, "gpt", r#","stream":true"#).await;
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let sent = mock.last_request().unwrap().body;
    assert_eq!(sent["stream_options"]["include_usage"], true, "the gateway asks upstream for usage");
    let events = sse_data(&response.text());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert!(
        chunks.iter().all(|c| !c["choices"].as_array().unwrap().is_empty()),
        "usage chunk leaked: {events:?}"
    );
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "mock reply to: hi there");
    // 2 prompt words, 5 completion words, counted from the stripped chunk.
    assert_eq!(
        gateway.metric_sum("switchboard_tokens_total", &[("route", "gpt"), ("type", "output")]).await,
        5.0
    );

    let asked = chat("gpt", r#","stream":true,"stream_options":{"include_usage":true}"#);
    let response = send("POST", &url, &[("x-api-key", KEY)], asked).await;
    let events = sse_data(&response.text());
    let usage: serde_json::Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    assert_eq!(
        gateway.metric_sum("switchboard_tokens_total", &[("route", "gpt"), ("type", "output")]).await,
        10.0
    );

    // A provider that must not be sent `stream_options` gets the stream request as the client wrote it.
    let response = ask(&gateway, "plain-stream", r#","stream":true"#).await;
    assert_eq!(sse_data(&response.text()).last().unwrap(), "[DONE]");
    assert!(mock.last_request().unwrap().body.get("stream_options").is_none());
}

#[tokio::test]
async fn usage_repeated_as_a_running_total_on_every_chunk_is_counted_once() {
    // vLLM's `continuous_usage_stats`: each chunk carries the total so far. The prompt has 2
    // words ("hi there"), the reply 5 ("mock reply to: hi there"): 2 in and 5 out, however many
    // chunks repeat the total (summing them would count 14 in).
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let response = ask(&gateway, "continuous-usage", r#","stream":true"#).await;
    let events = sse_data(&response.text());
    assert!(events.len() > 4, "{events:?}");
    assert!(events[1].contains(r#""usage":{"prompt_tokens""#), "the upstream repeats usage: {events:?}");
    let series = async |kind: &str| {
        gateway.metric_sum("switchboard_tokens_total", &[("route", "continuous-usage"), ("type", kind)]).await
    };
    let tokens = (series("input").await, series("output").await);
    assert_eq!(tokens, (2.0, 5.0));
}

#[tokio::test]
async fn upstream_failures_map_to_client_errors() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);

    // The provider's own explanation of a bad request reaches the caller.
    let error = ask(&gateway, "error-400", "").await.error(400);
    assert_eq!(error["type"], "invalid_request_error");
    let error = ask(&gateway, "error-503", "").await.error(502);
    assert!(error["message"].as_str().unwrap().contains("status 503"), "{error}");
    let response = ask(&gateway, "error-429", "").await;
    response.error(429);
    assert_eq!(response.headers["retry-after"], "7");
    let error = ask(&gateway, "slow-3000", "").await.error(504);
    assert_eq!(error["code"], "upstream_timeout");
    let error = ask(&gateway, "unreachable", "").await.error(502);
    assert!(error["message"].as_str().unwrap().contains("unreachable"), "{error}");
    // Streaming requests fail the same way before any byte is sent.
    ask(&gateway, "error-503", r#","stream":true"#).await.error(502);
}

#[tokio::test]
async fn fallback_tries_the_next_priority_when_a_backend_fails() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let before = mock.stats().chat_requests;
    let response = ask(&gateway, "fallback", "").await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.headers["x-switchboard-provider"], "secondary");
    assert_eq!(mock.last_request().unwrap().body["model"], "healthy");
    assert_eq!(mock.stats().chat_requests - before, 2, "primary once, then secondary");
    let outcome = |provider: &str, outcome: &str| {
        format!(r#"switchboard_upstream_requests_total{{provider="{provider}",outcome="{outcome}"}}"#)
    };
    assert_eq!(gateway.metric(&outcome("primary", "status_5xx")).await, 1.0);
    assert_eq!(gateway.metric(&outcome("nowhere", "connect_error")).await, 1.0);
    assert_eq!(gateway.metric(&outcome("secondary", "ok")).await, 1.0);
}

#[tokio::test]
async fn weights_split_traffic_between_backends() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let client = client();
    let mut primary = 0;
    for _ in 0..40 {
        let response = send_with(
            &client,
            "POST",
            &gateway.url("/v1/chat/completions"),
            &[("x-api-key", KEY)],
            chat("weighted", ""),
        )
        .await;
        assert_eq!(response.status, 200);
        if response.headers["x-switchboard-provider"] == "primary" {
            primary += 1;
        }
    }
    assert_eq!(primary, 30, "weights 3:1 over 40 requests");
}

#[tokio::test]
async fn a_mid_stream_upstream_error_reaches_the_client_as_an_event() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let response = ask(&gateway, "midstream-error", r#","stream":true"#).await;
    assert_eq!(response.status, 200);
    let last = last_event(&response);
    assert!(last["error"]["message"].is_string(), "{last}");
}

#[tokio::test]
async fn client_disconnect_mid_stream_cancels_the_upstream_request() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let client = client();
    // 200 chunks 20 ms apart: four seconds if nobody hangs up.
    let response = open_stream(
        &client,
        &gateway.url("/v1/chat/completions"),
        &[("x-api-key", KEY)],
        chat("stream-200-20", r#","stream":true"#),
    )
    .await;
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    for _ in 0..3 {
        assert!(next_chunk(&mut body).await.is_some());
    }
    assert_eq!(mock.stats().streams_started, 1);
    drop(body);
    drop(client);
    let stats =
        mock.wait_for(Duration::from_secs(2), |s| s.streams_aborted == 1 && s.open_connections == 0).await;
    assert_eq!(stats.streams_aborted, 1, "{stats:?}");
    assert_eq!(stats.streams_completed, 0, "{stats:?}");
    assert_eq!(stats.open_connections, 0, "the upstream connection must be closed, not pooled: {stats:?}");
    let aborted = eventually(Duration::from_secs(2), async || {
        gateway.metric(r#"switchboard_streams_aborted_total{route="stream-200-20"}"#).await == 1.0
    })
    .await;
    assert!(aborted);
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_after_the_provider_timeout() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    // One chunk per second upstream; the provider's timeout is 500 ms.
    let response = ask(&gateway, "stream-5-1000", r#","stream":true"#).await;
    assert_eq!(response.status, 200);
    let last = last_event(&response);
    let events = sse_data(&response.text());
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{events:?}");
    assert!(last["error"]["message"].as_str().unwrap().contains("stalled"));
    // Only the role chunk came before the silence: the relay did not wait for the next token.
    assert_eq!(events.len(), 2, "{events:?}");
    let stats = mock.wait_for(Duration::from_secs(2), |s| s.streams_aborted == 1).await;
    assert_eq!(stats.streams_aborted, 1, "the stalled upstream request is cancelled: {stats:?}");
}

#[tokio::test]
async fn a_backend_that_keeps_failing_is_tried_last() {
    let mock = upstream().await;
    let gateway = Gateway::start(Some(&config(&mock.base_url())), &[]);
    let calls = |before: u64| mock.stats().chat_requests - before;
    // The `fallback` route: primary (always 503), then an unreachable provider, then secondary.
    for _ in 0..3 {
        let before = mock.stats().chat_requests;
        let response = ask(&gateway, "fallback", "").await;
        assert_eq!(response.headers["x-switchboard-provider"], "secondary");
        assert_eq!(calls(before), 2, "primary is still tried first");
    }
    // Three consecutive failures each: both broken backends are ejected for a while.
    let before = mock.stats().chat_requests;
    let response = ask(&gateway, "fallback", "").await;
    assert_eq!(response.headers["x-switchboard-provider"], "secondary");
    assert_eq!(calls(before), 1, "the healthy backend is tried first now");
    let ejections =
        |provider: &str| format!(r#"switchboard_backend_ejections_total{{provider="{provider}"}}"#);
    assert_eq!(gateway.metric(&ejections("primary")).await, 1.0);
    assert_eq!(gateway.metric(&ejections("nowhere")).await, 1.0);
}
