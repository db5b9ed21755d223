//! End-to-end tests of the mock over real TCP: chat (plain and SSE), errors, aborts, embeddings.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers outside #[test] fns: a failed unwrap is a failed test"
)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_mock_upstream::{MockUpstream, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> MockUpstream {
    MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap()
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
    auth: Option<&str>,
) -> (StatusCode, HeaderMap, Bytes) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "mock");
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    let resp = tx.send_request(req.body(Full::new(body)).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (StatusCode, HeaderMap, Bytes) {
    send(addr, "POST", path, Some(body), None).await
}

/// Splits an SSE body into its `data:` payloads, checking the framing.
fn events(body: &[u8]) -> Vec<String> {
    let text = std::str::from_utf8(body).unwrap();
    assert!(text.ends_with("\n\n"), "{text}");
    text.split_terminator("\n\n").map(|e| e.strip_prefix("data: ").unwrap().to_owned()).collect()
}

#[tokio::test]
async fn chat_non_streaming_shape_and_recording() {
    let mock = start().await;
    let body = json!({"model": "up-model", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "say \"hi\" to everyone in the room please, now and forever"}]}
    ]});
    let (status, headers, bytes) = post(mock.addr(), "/v1/chat/completions", body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/json");
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let reply = "mock reply to: say \"hi\" to everyone in the room please,";
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_eq!(v["object"], "chat.completion");
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "up-model");
    assert_eq!(v["system_fingerprint"], "fp_mock");
    assert_eq!(
        v["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
    );
    assert_eq!(v["usage"], json!({"prompt_tokens": 13, "completion_tokens": 11, "total_tokens": 24}));

    let rec = mock.last_request().unwrap();
    assert_eq!(rec.path, "/v1/chat/completions");
    assert_eq!(rec.body, body);
    assert_eq!(rec.header("Host"), Some("mock"));
    let s = mock.stats();
    assert_eq!((s.requests, s.chat_requests, s.streams_started), (1, 1, 0));
    assert!(mock.base_url().starts_with("http://127.0.0.1:") && mock.base_url().ends_with("/v1"));
}

#[tokio::test]
async fn chat_streaming_event_sequence() {
    let mock = start().await;
    for include_usage in [false, true] {
        let mut body =
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "one two three"}]});
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let (status, headers, bytes) = post(mock.addr(), "/v1/chat/completions", body).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "text/event-stream");
        let evs = events(&bytes);
        assert_eq!(evs.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> =
            evs[..evs.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        let id = &chunks[0]["id"];
        for c in &chunks {
            assert_eq!(c["object"], "chat.completion.chunk");
            assert_eq!((&c["id"], &c["model"], &c["created"]), (id, &json!("m"), &chunks[0]["created"]));
            assert_eq!(c["system_fingerprint"], "fp_mock");
            assert_eq!(c.get("usage").is_some(), include_usage);
        }
        let (body_chunks, usage) =
            if include_usage { (&chunks[..chunks.len() - 1], chunks.last()) } else { (&chunks[..], None) };
        assert_eq!(body_chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        let fin = body_chunks.last().unwrap();
        assert_eq!(fin["choices"][0]["delta"], json!({}));
        assert_eq!(fin["choices"][0]["finish_reason"], "stop");
        let words = &body_chunks[1..body_chunks.len() - 1];
        assert_eq!(words.len(), 6);
        let text: String =
            words.iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
        assert_eq!(text, "mock reply to: one two three");
        assert!(words.iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
        if let Some(u) = usage {
            assert_eq!(u["choices"], json!([]));
            assert_eq!(u["usage"], json!({"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}));
            assert!(body_chunks.iter().all(|c| c["usage"].is_null()));
        }
    }
    let s = mock.wait_for(Duration::from_secs(1), |s| s.streams_completed == 2).await;
    assert_eq!((s.streams_started, s.streams_completed, s.streams_aborted), (2, 2, 0));
}

#[tokio::test]
async fn error_models_and_routes() {
    let mock = start().await;
    for stream in [false, true] {
        let body = json!({"model": "error-503", "stream": stream, "messages": []});
        let (status, headers, bytes) = post(mock.addr(), "/v1/chat/completions", body).await;
        assert_eq!(status, 503);
        assert_eq!(headers["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["type"], "server_error");
        assert_eq!(v["error"]["code"], "server_error");
        assert!(v["error"]["param"].is_null() && v["error"]["message"].is_string());
    }
    let (status, headers, bytes) =
        post(mock.addr(), "/v1/chat/completions", json!({"model": "error-429"})).await;
    assert_eq!((status, &headers["retry-after"]), (StatusCode::TOO_MANY_REQUESTS, &"7".parse().unwrap()));
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        (&v["error"]["type"], &v["error"]["code"]),
        (&json!("requests"), &json!("rate_limit_exceeded"))
    );

    let (status, _, bytes) = post(mock.addr(), "/v1/chat/completions", json!({"messages": []})).await;
    assert_eq!(status, 400);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["error"]["type"], "invalid_request_error");
    let (status, _, _) = send(mock.addr(), "GET", "/v1/nope", None, None).await;
    assert_eq!(status, 404);
    let (status, _, bytes) = send(mock.addr(), "GET", "/v1/models", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["data"][0]["id"], "mock-upstream-model");
    let (_, _, bytes) = send(mock.addr(), "GET", "/_mock/stats", None, None).await;
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["chat_requests"], 4);

    // Invalid JSON, over a raw socket.
    let mut s = TcpStream::connect(mock.addr()).await.unwrap();
    s.write_all(
        b"POST /v1/embeddings HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\nconnection: close\r\n\r\n{nope",
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains(r#""type":"invalid_request_error","param":null"#), "{out}");
}

#[tokio::test]
async fn api_key_is_enforced() {
    let opts = Options { api_key: Some("sk-test".into()), ..Options::default() };
    let mock = MockUpstream::start_with(([127, 0, 0, 1], 0).into(), opts).await.unwrap();
    let body = json!({"model": "m", "messages": []});
    let (status, _, bytes) =
        send(mock.addr(), "POST", "/v1/chat/completions", Some(body.clone()), None).await;
    assert_eq!(status, 401);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap()["error"]["code"], "invalid_api_key");
    let (status, _, _) =
        send(mock.addr(), "POST", "/v1/chat/completions", Some(body), Some("Bearer sk-test")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn midstream_error_and_timed_stream() {
    let mock = start().await;
    let body = json!({"model": "midstream-error", "stream": true, "messages": [{"role": "user", "content": "a b c d"}]});
    let (_, _, bytes) = post(mock.addr(), "/v1/chat/completions", body).await;
    let evs = events(&bytes);
    assert_eq!(evs.len(), 4);
    assert_eq!(
        evs[3],
        r#"{"error":{"message":"upstream failed mid-stream","type":"server_error","param":null,"code":"server_error"}}"#
    );

    let t = std::time::Instant::now();
    let body =
        json!({"model": "stream-3-20", "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let (_, _, bytes) = post(mock.addr(), "/v1/chat/completions", body).await;
    assert!(t.elapsed() >= Duration::from_millis(60));
    let evs = events(&bytes);
    assert_eq!(evs.len(), 1 + 3 + 1 + 1);
    assert!(evs[3].contains(r#""delta":{"content":"tok3"}"#), "{}", evs[3]);
}

#[tokio::test]
async fn stream_abort_is_counted() {
    let mock = start().await;
    let body =
        json!({"model": "stream-50-20", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
            .to_string();
    let mut s = TcpStream::connect(mock.addr()).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("tok2") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(s);
    let st =
        mock.wait_for(Duration::from_secs(2), |s| s.streams_aborted == 1 && s.open_connections == 0).await;
    assert_eq!((st.streams_started, st.streams_completed, st.streams_aborted), (1, 0, 1));
    assert_eq!((st.connections_opened, st.connections_closed), (1, 1));
}

fn b64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 {c}"),
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let n = chunk.iter().take_while(|&&c| c != b'=').count();
        let v = chunk[..n].iter().fold(0u32, |acc, &c| acc << 6 | u32::from(val(c))) << (6 * (4 - n));
        out.extend_from_slice(&v.to_be_bytes()[1..n]);
    }
    out
}

#[tokio::test]
async fn embeddings_float_and_base64_agree() {
    let mock = start().await;
    let req = |fmt: &str| json!({"model": "emb", "input": ["hello world", "bye"], "dimensions": 5, "encoding_format": fmt});
    let (status, _, floats) = post(mock.addr(), "/v1/embeddings", req("float")).await;
    assert_eq!(status, 200);
    let floats: Value = serde_json::from_slice(&floats).unwrap();
    let (_, _, b64) = post(mock.addr(), "/v1/embeddings", req("base64")).await;
    let b64: Value = serde_json::from_slice(&b64).unwrap();
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "emb");
    assert_eq!(floats["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
    for i in 0..2 {
        let f = &floats["data"][i];
        assert_eq!((&f["object"], &f["index"]), (&json!("embedding"), &json!(i)));
        let want: Vec<f32> =
            f["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(want.len(), 5);
        assert!(want.iter().all(|x| (-1.0..=1.0).contains(x)));
        let bytes = b64_decode(b64["data"][i]["embedding"].as_str().unwrap());
        let got: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(got, want);
    }
    assert_ne!(floats["data"][0]["embedding"], floats["data"][1]["embedding"]);
    let (_, _, tokens) =
        post(mock.addr(), "/v1/embeddings", json!({"model": "e", "input": [[1, 2], [3]]})).await;
    let tokens: Value = serde_json::from_slice(&tokens).unwrap();
    assert_eq!(tokens["data"][1]["embedding"].as_array().unwrap().len(), 8);
    assert_eq!(tokens["usage"]["prompt_tokens"], 3);
    assert_eq!(mock.stats().embeddings_requests, 3);
}
