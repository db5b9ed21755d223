//! The hardened edge (`gateway/src/edge.rs`) against hostile input, end to end: the real binary
//! on loopback, requests a careless or hostile client would send. Every test ends by checking
//! the process still serves an ordinary request.

pub mod support;

use std::time::Duration;
use support::*;
use switchboard_mock_upstream::{MockUpstream, Options};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const DEV_KEY: &str = "sk-switchboard-dev";
/// How long a test waits for the gateway to reach a state it is driven into.
const WAIT: Duration = Duration::from_secs(10);
const CHAT: &str = r#"{"model":"mock","messages":[{"role":"user","content":"hello"}]}"#;

fn dev_key() -> [(&'static str, String); 1] {
    [bearer(DEV_KEY)]
}

async fn chat(gateway: &Gateway, body: impl Into<bytes::Bytes>) -> TestResponse {
    let [(name, value)] = dev_key();
    send("POST", &gateway.url("/v1/chat/completions"), &[(name, value.as_str())], body).await
}

/// The process is alive and answers an ordinary request as before.
async fn assert_still_serves(gateway: &Gateway) {
    let response = chat(gateway, CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["choices"][0]["message"]["content"], "Mock response to: hello");
}

/// Opens a chat request whose body never completes: the head and `sent` of `content_length`
/// body bytes. The request stays in flight (and its bytes buffered) until the stream is dropped.
#[expect(clippy::unwrap_used, reason = "test helper: a failed connection fails the test")]
async fn hold_request(gateway: &Gateway, sent: usize, content_length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.api).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {DEV_KEY}\r\n\
         content-type: application/json\r\ncontent-length: {content_length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // JSON whitespace: what arrives is a valid start of a body, only unfinished.
    stream.write_all(&vec![b' '; sent]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

/// Sends `body` until it is served: a client that went away leaves the gateway's bookkeeping
/// asynchronously.
async fn until_served(gateway: &Gateway, body: &str) {
    let mut last = None;
    let served = eventually(WAIT, async || {
        let response = chat(gateway, body.to_owned()).await;
        let ok = response.status == 200;
        last = Some((response.status, response.text()));
        ok
    })
    .await;
    assert!(served, "never served again; last answer: {last:?}");
}

#[tokio::test]
async fn deeply_nested_bodies_are_refused_before_routing() {
    let gateway = Gateway::start(None, &[]);
    // The issue's reproduction: 100,000 levels under an unknown model used to reach routing
    // (404 unknown model); it must be refused for its shape, before any model is looked up.
    let levels = 100_000;
    let deep = format!(r#"{{"model":"nope","messages":{}{}}}"#, "[".repeat(levels), "]".repeat(levels));
    let error = chat(&gateway, deep).await.error(400);
    assert!(error["message"].as_str().unwrap_or("").contains("nested more than 128 levels"), "{error}");
    assert_eq!(error["param"], serde_json::Value::Null);
    assert_eq!(error["type"], "invalid_request_error");

    // Just over the limit (the body's own object is level one, so 1 + 128 arrays), in an
    // otherwise valid request to a real model: refused too.
    let nest = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    let over = format!(
        r#"{{"model":"mock","metadata_extra":{},"messages":[{{"role":"user","content":"hello"}}]}}"#,
        nest(128)
    );
    chat(&gateway, over).await.error(400);
    // At the limit, and brackets inside strings, pass.
    let at_limit = format!(
        r#"{{"model":"mock","metadata_extra":{},"messages":[{{"role":"user","content":"hello"}}]}}"#,
        nest(127)
    );
    assert_eq!(chat(&gateway, at_limit).await.status, 200);
    let text =
        format!(r#"{{"model":"mock","messages":[{{"role":"user","content":"{}"}}]}}"#, "[{".repeat(5000));
    assert_eq!(chat(&gateway, text).await.status, 200);

    assert_still_serves(&gateway).await;
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let gateway = Gateway::start(None, &[]);
    let [(name, value)] = dev_key();
    // Under the 64 KiB default: served.
    let big = "a".repeat(32 * 1024);
    let headers = [(name, value.as_str()), ("x-filler", big.as_str())];
    let response = send("POST", &gateway.url("/v1/chat/completions"), &headers, CHAT).await;
    assert_eq!(response.status, 200, "{}", response.text());
    // The issue's 100 KB header: refused by the HTTP layer, the connection closed.
    let huge = "a".repeat(100 * 1024);
    let headers = [(name, value.as_str()), ("x-filler", huge.as_str())];
    let response = send("POST", &gateway.url("/v1/chat/completions"), &headers, CHAT).await;
    assert_eq!(response.status.as_u16(), 431, "{}", response.text());

    assert_still_serves(&gateway).await;

    // The bound is a flag: a smaller one refuses the 32 KiB header too.
    let strict = Gateway::start(None, &["--max-header-bytes", "16384"]);
    let headers = [(name, value.as_str()), ("x-filler", big.as_str())];
    let response = send("POST", &strict.url("/v1/chat/completions"), &headers, CHAT).await;
    assert_eq!(response.status.as_u16(), 431);
    assert_still_serves(&strict).await;
}

#[tokio::test]
async fn requests_over_the_in_flight_bound_get_503_with_retry_after() {
    let gateway = Gateway::start(None, &["--max-in-flight", "2"]);
    let held = [hold_request(&gateway, 10, 1000).await, hold_request(&gateway, 10, 1000).await];
    // Both held requests are in flight before anything else is sent (else a probe could take
    // a slot first and a held request be the one refused).
    let in_flight = gateway.metric_reaches("switchboard_in_flight_requests", 2.0, WAIT).await;
    assert_eq!(in_flight, Some(2.0));

    let refused = chat(&gateway, CHAT).await;
    let error = refused.error(503);
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("server_error"), Some("overloaded")));
    assert_eq!(refused.headers["retry-after"], "1");

    // The held clients give up: their slots free, and service resumes.
    drop(held);
    until_served(&gateway, CHAT).await;
    assert_still_serves(&gateway).await;
}

#[tokio::test]
async fn request_bodies_over_the_buffer_budget_get_503() {
    let gateway = Gateway::start(None, &["--max-body-bytes", "1000", "--max-buffered-body-bytes", "1500"]);
    // One slow client holds 900 bytes of a 1000-byte body.
    let held = hold_request(&gateway, 900, 1000).await;
    let buffered = gateway.metric_reaches("switchboard_buffered_request_body_bytes", 900.0, WAIT).await;
    assert_eq!(buffered, Some(900.0));

    // 700 more bytes would pass 1500: refused, though one such request alone is fine.
    let padded = |len: usize| format!("{CHAT:<len$}");
    let refused = chat(&gateway, padded(700)).await;
    let error = refused.error(503);
    assert_eq!(error["code"], "overloaded");
    assert!(error["message"].as_str().unwrap_or("").contains("request bodies"), "{error}");
    assert_eq!(refused.headers["retry-after"], "1");
    // The budget is bytes, not requests: a smaller body still fits next to the held one.
    assert_eq!(chat(&gateway, padded(500)).await.status, 200);

    drop(held);
    until_served(&gateway, &padded(700)).await;
    assert_still_serves(&gateway).await;
}

/// A body that arrives in pieces is charged piece by piece and joined whole: the second half is
/// sent only once the gateway holds the first.
#[tokio::test]
async fn a_body_sent_in_pieces_is_served_whole() {
    use tokio::io::AsyncReadExt;
    let gateway = Gateway::start(None, &[]);
    let body = CHAT.as_bytes();
    let (first, second) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(gateway.api).await.expect("connect");
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer {DEV_KEY}\r\n\
         content-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write the head");
    stream.write_all(first).await.expect("write the first half");
    let held =
        gateway.metric_reaches("switchboard_buffered_request_body_bytes", first.len() as f64, WAIT).await;
    assert_eq!(held, Some(first.len() as f64));
    stream.write_all(second).await.expect("write the second half");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read the answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Mock response to: hello"), "{answer}");
    // Given back once the request is done.
    assert_eq!(gateway.metric("switchboard_buffered_request_body_bytes").await, 0.0);
}

/// Two backends each allowed 1.5 s by their provider: without a total deadline the request
/// would wait 3 s and end in the last backend's timeout; with `--request-deadline-ms 2000` it
/// ends at 2 s, in the second attempt, with the deadline's own error.
#[tokio::test]
async fn the_request_deadline_bounds_all_attempts_together() {
    let bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let mock = MockUpstream::start_with(bind, Options::default()).await.expect("mock upstream");
    let config = format!(
        r#"
version: 1
providers:
  - {{ name: first, type: openai, base_url: "{base}", timeout_ms: 1500 }}
  - {{ name: second, type: openai, base_url: "{base}", timeout_ms: 1500 }}
routes:
  - model: slow
    backends:
      - {{ provider: first, model: slow-5000, priority: 0 }}
      - {{ provider: second, model: slow-5000, priority: 1 }}
  - model: fast
    backends: [{{ provider: first, model: fast }}]
keys:
  - {{ name: dev, hash: "{hash}" }}
"#,
        base = mock.base_url(),
        hash = hash_key(DEV_KEY)
    );
    let gateway = Gateway::start(Some(&config), &["--request-deadline-ms", "2000"]);

    let slow = r#"{"model":"slow","messages":[{"role":"user","content":"hello"}]}"#;
    let error = chat(&gateway, slow).await.error(504);
    assert_eq!((error["type"].as_str(), error["code"].as_str()), (Some("server_error"), Some("timeout")));
    assert!(error["message"].as_str().unwrap_or("").contains("2000 ms"), "{error}");
    assert_eq!(mock.stats().chat_requests, 2, "the deadline ended the second attempt, not the first");

    let fast = r#"{"model":"fast","messages":[{"role":"user","content":"hello"}]}"#;
    let response = chat(&gateway, fast).await;
    assert_eq!(response.status, 200, "{}", response.text());
}

#[tokio::test]
async fn the_messages_and_responses_apis_refuse_hostile_bodies_in_their_own_envelopes() {
    let gateway = Gateway::start(None, &[]);
    let [(name, value)] = dev_key();
    let headers = [(name, value.as_str()), ("anthropic-version", "2023-06-01")];
    let post = |path: &'static str, body: String| {
        let url = gateway.url(path);
        async move { send("POST", &url, &headers, body).await }
    };
    let deep =
        |model: &str| format!(r#"{{"model":"{model}","x":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let hostile = [
        deep("mock"),
        "[1,2,3]".to_owned(),
        "not json".to_owned(),
        r#"{"model":"mock","max_tokens":16,"messages":"\ud800"}"#.to_owned(),
        r#"{"model":"mock","max_tokens":-1,"messages":[]}"#.to_owned(),
        format!(
            r#"{{"model":"mock","max_tokens":16,"messages":[{}]}}"#,
            vec![r#"{"role":"user","content":[]}"#; 20_000].join(",")
        ),
    ];
    for body in &hostile {
        // Anthropic's envelope on /v1/messages...
        let response = post("/v1/messages", body.clone()).await;
        assert_eq!(response.status, 400, "{body:.80}: {}", response.text());
        let error = response.json();
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["error"]["type"], "invalid_request_error", "{error}");
        // ...OpenAI's on /v1/responses.
        let response = post("/v1/responses", body.replace("\"messages\"", "\"input\"")).await;
        assert_eq!(response.status, 400, "{body:.80}: {}", response.text());
        assert_eq!(response.json()["error"]["type"], "invalid_request_error");
    }
    // An id that is not one of ours is no endpoint, never a path into the store.
    let response = send("GET", &gateway.url("/v1/responses/..%2F..%2Fetc"), &headers, "").await;
    assert_eq!(response.status, 404);
    assert_still_serves(&gateway).await;
}
