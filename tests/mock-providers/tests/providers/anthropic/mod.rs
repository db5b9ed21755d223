//! The Anthropic Messages mock: auth and version headers, every validation rule, every model-id
//! behaviour, error envelopes and the SSE event sequence.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_mock_providers::anthropic::{CACHE_CREATION_TOKENS, CACHE_READ_TOKENS};
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions};

use crate::client::{Resp, send};

mod replies;
mod streams;
mod validation;

const KEY: &str = "sk-ant-mock-key";
/// A 1×1-ish PNG and JPEG header (the mock checks magic numbers, not whole images).
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUg==";
const JPEG_B64: &str = "/9j/4AAQSkZJRgABAQ==";

async fn mock_with(options: AnthropicOptions) -> AnthropicMock {
    AnthropicMock::start(([127, 0, 0, 1], 0).into(), options).await.unwrap()
}

async fn mock() -> AnthropicMock {
    mock_with(AnthropicOptions::default()).await
}

const HEADERS: &[(&str, &str)] =
    &[("x-api-key", KEY), ("anthropic-version", "2023-06-01"), ("content-type", "application/json")];

async fn post_to(m: &AnthropicMock, path: &str, body: &Value) -> Resp {
    send(m.addr(), "POST", path, HEADERS, body.to_string().as_bytes()).await
}

async fn post(m: &AnthropicMock, body: &Value) -> Resp {
    post_to(m, "/v1/messages", body).await
}

fn base() -> Value {
    json!({"model": "claude-mock", "max_tokens": 64, "messages": [{"role": "user", "content": "hello there"}]})
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Weather for a city", "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                       "days": {"type": "integer", "minimum": 1}},
        "required": ["city"]}})
}

fn time_tool() -> Value {
    json!({"name": "get_time", "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}}})
}

/// The full error envelope, its status and the matching `request-id` header.
fn assert_error(resp: &Resp, status: u16, kind: &str) -> String {
    assert_eq!(resp.status, status, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v = resp.json();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    assert_eq!(v["error"].as_object().unwrap().len(), 2, "{v}");
    let id = v["request_id"].as_str().unwrap();
    assert!(id.starts_with("req_"), "{v}");
    assert_eq!(resp.header("request-id"), Some(id));
    v["error"]["message"].as_str().unwrap().to_owned()
}

fn assert_invalid(resp: &Resp, message: &str) {
    assert_eq!(assert_error(resp, 400, "invalid_request_error"), message);
    assert_eq!(resp.header("x-should-retry"), Some("false"));
}

/// Parses an SSE body into (event name, data) pairs, checking the framing of every event.
fn events(resp: &Resp) -> Vec<(String, Value)> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("text/event-stream; charset=utf-8"));
    let text = resp.text();
    text.split_terminator("\n\n")
        .map(|e| {
            let (name, data) = e.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap_or_else(|| panic!("no event line: {e:?}"));
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name, "{e}");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}
