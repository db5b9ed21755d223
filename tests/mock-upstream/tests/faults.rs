//! Injected faults over real TCP: every kind, a ratio, clearing, and the control endpoint (in
//! the router and in the binary).
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] fns: a failed unwrap is a failed test")]

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_mock_upstream::{Fault, MockUpstream};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CHAT: &str = "/v1/chat/completions";

async fn start() -> MockUpstream {
    MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap()
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "one two three"}]})
}

/// Sends a request on a fresh connection; the response head, or the client's error.
async fn open(addr: SocketAddr, path: &str, body: &Value) -> Result<Response<Incoming>, hyper::Error> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req =
        Request::post(path).header("host", "mock").body(Full::new(Bytes::from(body.to_string()))).unwrap();
    tx.send_request(req).await
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let resp = open(addr, path, body).await.unwrap();
    let (parts, body) = resp.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

/// The body's data frames until it ends (`Ok`) or fails (`Err`, with the frames so far).
async fn frames(resp: Response<Incoming>) -> Result<Vec<Bytes>, Vec<Bytes>> {
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => got.extend(f.into_data().ok()),
            Err(_) => return Err(got),
        }
    }
    Ok(got)
}

/// A raw request on its own connection (`connection: close`); every byte the server sent until
/// it closed, or the read error.
async fn raw(addr: SocketAddr, path: &str, body: &Value) -> std::io::Result<Vec<u8>> {
    let body = body.to_string();
    let mut s = TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.map(|_| got)
}

/// The SSE `data:` payloads of a chat stream's frames.
fn data(frames: &[Bytes]) -> Vec<String> {
    let text: String = frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    text.split_terminator("\n\n").map(|e| e.strip_prefix("data: ").unwrap().to_owned()).collect()
}

#[tokio::test]
async fn status_faults_answer_every_route_with_or_without_retry_after() {
    let mock = start().await;
    mock.set_fault(Some(Fault::Status { status: 503, retry_after: Some(2) }));
    let requests = [
        (CHAT, chat(false)),
        (CHAT, chat(true)),
        ("/v1/responses", json!({"model": "gpt-4o", "input": "hi"})),
        ("/v1/embeddings", json!({"model": "error-429", "input": "hi"})),
    ];
    for (path, body) in &requests {
        let (status, headers, bytes) = post(mock.addr(), path, body).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(headers["retry-after"], "2");
        let error: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error["error"]["type"], "server_error");
    }
    mock.set_fault(Some(Fault::Status { status: 529, retry_after: None }));
    let (status, headers, _) = post(mock.addr(), CHAT, &chat(false)).await;
    assert_eq!(status, 529);
    assert!(headers.get("retry-after").is_none());
    mock.set_fault(Some(Fault::Status { status: 429, retry_after: None }));
    let (status, headers, _) = post(mock.addr(), CHAT, &chat(false)).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none(), "a fault's Retry-After is exactly the one asked for");

    mock.set_fault(None);
    let (status, _, _) = post(mock.addr(), CHAT, &chat(false)).await;
    assert_eq!(status, 200, "cleared");
    let (status, _, _) =
        post(mock.addr(), "/v1/embeddings", &json!({"model": "error-404", "input": "x"})).await;
    assert_eq!(status, 404, "model behaviours are back");
    assert_eq!(mock.stats().faults_injected, 6);
}

#[tokio::test]
async fn delay_holds_the_head_then_answers_normally() {
    let mock = start().await;
    let delay = Duration::from_millis(300);
    mock.set_fault(Some(Fault::Delay(delay)));
    for (path, body) in [(CHAT, chat(false)), ("/v1/embeddings", json!({"model": "e", "input": "x"}))] {
        let sent = Instant::now();
        let resp = open(mock.addr(), path, &body).await.unwrap();
        assert!(sent.elapsed() >= delay, "{path}: head after {:?}", sent.elapsed());
        assert_eq!(resp.status(), 200);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(serde_json::from_slice::<Value>(&bytes).is_ok());
    }
    assert_eq!(mock.stats().faults_injected, 2);
}

#[tokio::test]
async fn reset_drops_the_connection_with_rst_and_no_response() {
    let mock = start().await;
    mock.set_fault(Some(Fault::Reset));
    for (path, body) in [
        (CHAT, chat(false)),
        (CHAT, chat(true)),
        ("/v1/responses", json!({"model": "m", "input": "hi", "stream": true})),
        ("/v1/embeddings", json!({"model": "e", "input": "x"})),
    ] {
        let err = raw(mock.addr(), path, &body).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{path}: {err}");
    }
    assert!(open(mock.addr(), CHAT, &chat(false)).await.is_err(), "a client sees an error, not a response");
    let st = mock.wait_for(Duration::from_secs(2), |s| s.open_connections == 0).await;
    assert_eq!((st.faults_injected, st.chat_requests, st.open_connections), (5, 3, 0));
}

#[tokio::test]
async fn stream_cut_sends_n_content_chunks_then_drops() {
    let mock = start().await;
    for n in [0u32, 2, 10] {
        mock.set_fault(Some(Fault::StreamCut { after_chunks: n }));
        let resp = open(mock.addr(), CHAT, &chat(true)).await.unwrap();
        assert_eq!(resp.status(), 200);
        let got = frames(resp).await.unwrap_err();
        let events = data(&got);
        assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
        let chunks: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let content = &chunks[1..];
        // The reply ("mock reply to: one two three") has 6 words: 10 gets all of them, no finish.
        assert_eq!(content.len(), n.min(6) as usize, "n = {n}: {events:?}");
        assert!(content.iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
    }

    mock.set_fault(Some(Fault::StreamCut { after_chunks: 1 }));
    let resp =
        open(mock.addr(), "/v1/responses", &json!({"model": "m", "input": "hi there", "stream": true}))
            .await
            .unwrap();
    let got = frames(resp).await.unwrap_err();
    let text: String = got.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    assert_eq!(text.matches("event: response.output_text.delta\n").count(), 1, "{text}");
    assert!(text.starts_with("event: response.created\n"));
    assert!(!text.contains("response.completed"));

    // Not a stream: the connection closes (FIN) before any response byte.
    assert_eq!(raw(mock.addr(), CHAT, &chat(false)).await.unwrap(), b"");
    assert_eq!(raw(mock.addr(), "/v1/embeddings", &json!({"model": "e", "input": "x"})).await.unwrap(), b"");
    let st = mock.wait_for(Duration::from_secs(2), |s| s.open_connections == 0).await;
    assert_eq!((st.faults_injected, st.streams_started, st.streams_completed), (6, 3, 0));
    assert_eq!(st.streams_aborted, 0, "a cut is not a client abort");
}

#[tokio::test]
async fn slow_first_token_holds_the_body_not_the_head() {
    let mock = start().await;
    let delay = Duration::from_millis(800);
    mock.set_fault(Some(Fault::SlowFirstToken(delay)));
    let requests =
        [(CHAT, chat(true)), ("/v1/responses", json!({"model": "m", "input": "hi", "stream": true}))];
    for (path, body) in &requests {
        let sent = Instant::now();
        let resp = open(mock.addr(), path, body).await.unwrap();
        let head = sent.elapsed();
        assert!(head < delay, "{path}: the head came after {head:?}");
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert!(sent.elapsed() >= delay, "{path}: first bytes after {:?}", sent.elapsed());
        let rest = body.collect().await.unwrap().to_bytes();
        let text = format!("{}{}", String::from_utf8_lossy(&first), String::from_utf8_lossy(&rest));
        assert!(text.ends_with("data: [DONE]\n\n") || text.contains("event: response.completed\n"), "{text}");
    }
    let sent = Instant::now();
    let (status, _, _) = post(mock.addr(), CHAT, &chat(false)).await;
    assert_eq!(status, 200);
    assert!(sent.elapsed() >= delay, "not a stream: a delay before the head");
    assert_eq!(mock.stats().faults_injected, 3);
}

#[tokio::test]
async fn a_ratio_hits_the_first_of_every_n() {
    let mock = start().await;
    mock.set_fault_ratio(Fault::Status { status: 500, retry_after: None }, 3);
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(post(mock.addr(), CHAT, &chat(false)).await.0.as_u16());
    }
    assert_eq!(statuses, [500, 200, 200, 500, 200, 200, 500]);
    assert_eq!(mock.stats().faults_injected, 3);
}

async fn control(addr: SocketAddr, body: &str) -> StatusCode {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/_mock/fault")
        .header("host", "mock")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    tx.send_request(req).await.unwrap().status()
}

#[tokio::test]
async fn control_endpoint_sets_and_clears_faults() {
    let mock = start().await;
    let addr = mock.addr();
    assert_eq!(control(addr, r#"{"fault":"status","status":503,"retry_after":2}"#).await, 204);
    let (status, headers, _) = post(addr, CHAT, &chat(false)).await;
    assert_eq!(
        (status.as_u16(), &headers["retry-after"]),
        (503, &"2".parse::<hyper::header::HeaderValue>().unwrap())
    );
    assert_eq!(control(addr, r#"{"fault":"reset"}"#).await, 204);
    assert_eq!(raw(addr, CHAT, &chat(false)).await.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert_eq!(control(addr, r#"{"fault":"stream_cut","after_chunks":1}"#).await, 204);
    let got = frames(open(addr, CHAT, &chat(true)).await.unwrap()).await.unwrap_err();
    assert_eq!(data(&got).len(), 2, "role and one content chunk");
    assert_eq!(control(addr, r#"{"fault":"delay","ms":200}"#).await, 204);
    let sent = Instant::now();
    assert_eq!(post(addr, CHAT, &chat(false)).await.0, 200);
    assert!(sent.elapsed() >= Duration::from_millis(200));
    assert_eq!(control(addr, r#"{"fault":"slow_first_token","ms":1}"#).await, 204);
    assert_eq!(control(addr, r#"{"fault":"status","status":500,"one_in":2}"#).await, 204);
    let statuses = [post(addr, CHAT, &chat(false)).await.0, post(addr, CHAT, &chat(false)).await.0];
    assert_eq!(statuses, [500, 200]);
    assert_eq!(control(addr, r#"{"fault":"none"}"#).await, 204);
    assert_eq!(post(addr, CHAT, &chat(false)).await.0, 200);

    for bad in [
        "{",
        r#"{"fault":"explode"}"#,
        r#"{"fault":"status","status":700}"#,
        r#"{"fault":"reset","one_in":0}"#,
    ] {
        assert_eq!(control(addr, bad).await, 400, "{bad}");
    }
    assert_eq!(post(addr, CHAT, &chat(false)).await.0, 200, "a refused plan changes nothing");
    assert_eq!(mock.stats().faults_injected, 5);
}

#[tokio::test]
async fn the_binary_serves_the_control_endpoint() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard-mock-upstream"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let addr: SocketAddr = line.strip_prefix("listening ").unwrap().parse().unwrap();
    assert_eq!(control(addr, r#"{"fault":"status","status":502}"#).await, 204);
    assert_eq!(post(addr, CHAT, &chat(false)).await.0, 502);
    assert_eq!(control(addr, r#"{"fault":"none"}"#).await, 204);
    assert_eq!(post(addr, CHAT, &chat(false)).await.0, 200);
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get("/_mock/stats").header("host", "mock").body(Full::new(Bytes::new())).unwrap();
    let stats = tx.send_request(req).await.unwrap().into_body().collect().await.unwrap().to_bytes();
    let stats: Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["faults_injected"], 1);
    child.kill().await.unwrap();
}
