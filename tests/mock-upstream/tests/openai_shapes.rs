//! The behaviours the conformance suite uses (`*-tool`, `*-parallel-tools`, `*-cache`,
//! `*-malformed`, `*-disconnect`, echoes, JSON mode) and the requests the mock refuses as
//! OpenAI does, over real TCP.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] fns: a failed unwrap is a failed test")]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_mock_upstream::MockUpstream;
use tokio::net::TcpStream;

async fn start() -> MockUpstream {
    MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap()
}

/// The status and the body; `Err` with what arrived when the connection broke mid-body.
async fn post(addr: SocketAddr, body: Value) -> (StatusCode, Result<String, String>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/chat/completions").header("host", "mock");
    let resp = tx.send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let status = resp.status();
    let mut body = resp.into_body();
    let mut got = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => got.extend_from_slice(frame.data_ref().map_or(&[][..], |d| d)),
            Err(_) => return (status, Err(String::from_utf8(got).unwrap())),
        }
    }
    (status, Ok(String::from_utf8(got).unwrap()))
}

fn data(text: &str) -> Vec<&str> {
    text.split_terminator("\n\n").filter_map(|e| e.strip_prefix("data: ")).collect()
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}}}}}
    ])
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

#[tokio::test]
async fn tool_calls_complete_and_streamed_by_index() {
    let mock = start().await;
    let (status, body) =
        post(mock.addr(), json!({"model": "m-tool", "messages": user("hi"), "tools": tools()})).await;
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], r#"{"city":"mock city","days":1}"#);
    assert!(body["choices"][0]["message"]["content"].is_null());

    let request = json!({"model": "m-parallel-tools", "messages": user("hi"), "tools": tools(), "stream": true,
        "stream_options": {"include_usage": true}});
    let (_, text) = post(mock.addr(), request).await;
    let text = text.unwrap();
    let events = data(&text);
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> =
        events[..events.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut arguments = [String::new(), String::new()];
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(chunk["usage"].is_null() && chunk.get("usage").is_some(), "{chunk}");
        for delta in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = delta["index"].as_u64().unwrap() as usize;
            arguments[index].push_str(delta["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(arguments, [r#"{"city":"mock city","days":1}"#, r#"{"zone":"UTC"}"#]);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[chunks.len() - 1]["choices"], json!([]));
    assert!(chunks[chunks.len() - 1]["usage"]["completion_tokens"].as_u64() > Some(0));
}

#[tokio::test]
async fn cached_tokens_in_both_forms() {
    let mock = start().await;
    let request = json!({"model": "m-cache", "messages": user("one two three")});
    let (_, body) = post(mock.addr(), request.clone()).await;
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    let mut streamed = request;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (_, text) = post(mock.addr(), streamed).await;
    let text = text.unwrap();
    let events = data(&text);
    let usage: Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
}

#[tokio::test]
async fn echoes_images_tool_results_and_answers_json() {
    let mock = start().await;
    let messages = json!([
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "user", "content": [{"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}}]}
    ]);
    let (status, body) = post(mock.addr(), json!({"model": "m", "messages": messages})).await;
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "mock reply to: look [image image/jpeg] [tool_result c1: sunny]"
    );

    let format = json!({"type": "json_schema", "json_schema": {"name": "p", "schema": {"type": "object",
        "properties": {"city": {"type": "string"}}}}});
    let (_, body) =
        post(mock.addr(), json!({"model": "m", "messages": user("a city"), "response_format": format})).await;
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], r#"{"city":"mock city"}"#);
    let format = json!({"type": "json_object"});
    let (_, body) =
        post(mock.addr(), json!({"model": "m", "messages": user("in JSON"), "response_format": format}))
            .await;
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], r#"{"reply":"mock reply to: in JSON"}"#);
}

#[tokio::test]
async fn refuses_what_openai_refuses() {
    let mock = start().await;
    let call = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let image =
        |url: &str| json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]});
    for (messages, param, says) in [
        (
            json!([{"role": "tool", "tool_call_id": "c1", "content": "x"}]),
            "messages.[0].role",
            "preceeding message",
        ),
        (
            json!([call, {"role": "tool", "tool_call_id": "c1", "content": "x"}, {"role": "user", "content": "y"}]),
            "messages.[0].role",
            "did not have response messages: c2",
        ),
        (
            json!([call, {"role": "tool", "tool_call_id": "c3", "content": "x"}]),
            "messages.[1].tool_call_id",
            "'c3' not found",
        ),
        (
            json!([image("ftp://host/cat.png")]),
            "messages.[0].content.[0].image_url.url",
            "without the 'data:'",
        ),
        (
            json!([image("data:text/plain;base64,AAAA")]),
            "messages.[0].content.[0].image_url.url",
            "'text/plain'",
        ),
    ] {
        let (status, body) = post(mock.addr(), json!({"model": "m", "messages": messages})).await;
        let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(says), "{body}");
    }
    let format = json!({"type": "json_object"});
    let (status, _) =
        post(mock.addr(), json!({"model": "m", "messages": user("hi"), "response_format": format})).await;
    assert_eq!(status, 400, "json_object needs the word json in the messages");
}

#[tokio::test]
async fn malformed_and_disconnected_answers() {
    let mock = start().await;
    let (status, body) = post(mock.addr(), json!({"model": "m-malformed", "messages": user("a b c")})).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body.unwrap()).is_err());
    let (_, text) =
        post(mock.addr(), json!({"model": "m-malformed", "messages": user("a b c"), "stream": true})).await;
    let text = text.unwrap();
    let events = data(&text);
    assert_eq!(events.len(), 4, "{text}");
    assert!(serde_json::from_str::<Value>(events[2]).is_err(), "{text}");

    let (_, broken) =
        post(mock.addr(), json!({"model": "m-disconnect", "messages": user("a b c"), "stream": true})).await;
    let received = broken.unwrap_err();
    assert_eq!(data(&received).len(), 3, "role and two content chunks, then the cut: {received}");
    let (_, broken) = post(mock.addr(), json!({"model": "m-disconnect", "messages": user("a b c")})).await;
    assert!(broken.is_err());
}
