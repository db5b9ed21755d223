//! The Anthropic Messages mock: auth and version headers, every validation rule, every model-id
//! behaviour, error envelopes and the SSE event sequence.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_mock_providers::anthropic::{CACHE_CREATION_TOKENS, CACHE_READ_TOKENS};
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions};

use crate::client::{Resp, send};

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

#[tokio::test]
async fn text_reply_is_derived_from_the_request() {
    let m = mock().await;
    let body = json!({"model": "claude-mock", "max_tokens": 64,
        "system": "Be brief and kind",
        "messages": [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "Hi!"},
                     {"role": "user", "content": [{"type": "text", "text": "what is up"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}]}]});
    let resp = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", KEY),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("request-id"), Some("req_mock_1"));
    // Key order as documented, too.
    assert_eq!(
        resp.text(),
        r#"{"id":"msg_mock_1","type":"message","role":"assistant","model":"claude-mock","content":[{"type":"text","text":"You said: what is up [image image/png] [image https://example.com/a.jpg]"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":9,"service_tier":"standard"}}"#
    );
    // input_tokens: system 4 + "hello there" 2 + "Hi!" 1 + "what is up" 3 + 2 images = 12.
    let rec = m.last_request().unwrap();
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str(), rec.query.as_deref()),
        ("POST", "/v1/messages", None)
    );
    assert_eq!(rec.body, body);
    assert_eq!(rec.header("Anthropic-Beta"), Some("prompt-caching-2024-07-31"));
    assert_eq!(rec.header("x-api-key"), Some(KEY));
    assert_eq!(m.requests(), 1);
    assert!(m.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(m.messages_url(), format!("{}/v1/messages", m.base_url()));
}

#[tokio::test]
async fn authentication_and_version_headers() {
    let m = mock().await;
    let body = base().to_string();
    let r =
        send(m.addr(), "POST", "/v1/messages", &[("anthropic-version", "2023-06-01")], body.as_bytes()).await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "x-api-key header is required");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "invalid x-api-key");
    // Bearer and api-key are Foundry forms, refused unless enabled.
    let bearer = format!("Bearer {KEY}");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("authorization", &bearer), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(m.addr(), "POST", "/v1/messages", &[("x-api-key", KEY)], body.as_bytes()).await;
    assert_invalid(&r, "anthropic-version: header is required");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2024-13-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("anthropic-version: invalid version"));
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2023-01-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);

    let foundry = mock_with(AnthropicOptions {
        azure_auth: true,
        path_prefix: "/anthropic".into(),
        api_key: "azure-key".into(),
        ..Default::default()
    })
    .await;
    assert!(foundry.base_url().ends_with("/anthropic"));
    for auth in [("api-key", "azure-key"), ("authorization", "Bearer azure-key"), ("x-api-key", "azure-key")]
    {
        let r = send(
            foundry.addr(),
            "POST",
            "/anthropic/v1/messages",
            &[auth, ("anthropic-version", "2023-06-01")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{auth:?}: {}", r.text());
    }
    let r = send(
        foundry.addr(),
        "POST",
        "/anthropic/v1/messages",
        &[("api-key", "wrong"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "invalid x-api-key");
    let r = send(
        foundry.addr(),
        "POST",
        "/v1/messages",
        &[("api-key", "azure-key"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 404, "not_found_error"), "Not Found");
}

#[tokio::test]
async fn routes_bodies_and_size_limit() {
    let m = mock_with(AnthropicOptions { max_body_bytes: 1024, ..Default::default() }).await;
    let r = send(m.addr(), "GET", "/v1/messages", HEADERS, b"").await;
    assert_eq!(assert_error(&r, 405, "invalid_request_error"), "Method Not Allowed");
    let r = send(m.addr(), "POST", "/v1/complete", HEADERS, b"{}").await;
    assert_eq!(assert_error(&r, 404, "not_found_error"), "Not Found");
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, b"{\"model\":").await;
    assert_error(&r, 400, "invalid_request_error");
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, b"[1]").await;
    assert_invalid(&r, "body: Input should be a valid dictionary");
    let mut big = base();
    big["messages"][0]["content"] = json!("word ".repeat(300));
    let r = post(&m, &big).await;
    assert_eq!(
        assert_error(&r, 413, "request_too_large"),
        "Request exceeds the maximum allowed number of bytes."
    );
    assert_eq!(m.requests(), 5);
}

/// Each case: a change to a valid request, and the exact message the API answers it with.
#[tokio::test]
async fn rejects_what_the_real_api_rejects() {
    let m = mock().await;
    let user = |content: Value| json!({"role": "user", "content": content});
    let asst = |content: Value| json!({"role": "assistant", "content": content});
    let tool_use =
        |id: &str| json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Oslo"}});
    let tool_result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "12 degrees"});
    let cc = json!({"type": "ephemeral"});
    let text_cc = json!({"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}});

    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing max_tokens",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("max_tokens");
            }),
            "max_tokens: Field required",
        ),
        (
            "negative max_tokens",
            Box::new(|b| b["max_tokens"] = json!(-1)),
            "max_tokens: Input should be greater than or equal to 0",
        ),
        (
            "max_tokens string",
            Box::new(|b| b["max_tokens"] = json!("10")),
            "max_tokens: Input should be a valid integer",
        ),
        (
            "missing model",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("model");
            }),
            "model: Field required",
        ),
        (
            "missing messages",
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("messages");
            }),
            "messages: Field required",
        ),
        (
            "empty messages",
            Box::new(|b| b["messages"] = json!([])),
            "messages: at least one message is required",
        ),
        ("unknown field", Box::new(|b| b["foo"] = json!(1)), "foo: Extra inputs are not permitted"),
        ("OpenAI's n", Box::new(|b| b["n"] = json!(1)), "n: Extra inputs are not permitted"),
        (
            "OpenAI's response_format",
            Box::new(|b| b["response_format"] = json!({"type": "json_object"})),
            "response_format: Extra inputs are not permitted",
        ),
        (
            "system role",
            Box::new(move |b| {
                b["messages"] = json!([{"role": "system", "content": "be nice"}, user(json!("hi"))])
            }),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            "tool role",
            Box::new(move |b| b["messages"] = json!([user(json!("hi")), {"role": "tool", "content": "x"}])),
            "messages.1.role: Input should be 'user' or 'assistant'",
        ),
        (
            "message extra field",
            Box::new(move |b| b["messages"][0]["name"] = json!("bob")),
            "messages.0.name: Extra inputs are not permitted",
        ),
        (
            "two user turns",
            Box::new(move |b| b["messages"] = json!([user(json!("a")), user(json!("b"))])),
            "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row",
        ),
        (
            "two assistant turns",
            Box::new(move |b| b["messages"] = json!([user(json!("a")), asst(json!("b")), asst(json!("c"))])),
            "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"assistant\" roles in a row",
        ),
        (
            "assistant first",
            Box::new(move |b| b["messages"] = json!([asst(json!("a")), user(json!("b"))])),
            "messages: first message must use the \"user\" role",
        ),
        (
            "empty string content",
            Box::new(move |b| b["messages"] = json!([user(json!(""))])),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            "empty block list",
            Box::new(move |b| b["messages"] = json!([user(json!([]))])),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            "empty text block",
            Box::new(move |b| b["messages"] = json!([user(json!([{"type": "text", "text": ""}]))])),
            "messages: text content blocks must be non-empty",
        ),
        (
            "blank text block",
            Box::new(move |b| b["messages"] = json!([user(json!([{"type": "text", "text": " \n"}]))])),
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            "content object",
            Box::new(move |b| b["messages"] = json!([user(json!({"type": "text", "text": "x"}))])),
            "messages.0.content: Input should be a valid string, got dict",
        ),
        (
            "block without type",
            Box::new(move |b| b["messages"] = json!([user(json!([{"text": "x"}]))])),
            "messages.0.content.0: Unable to extract tag using discriminator 'type'",
        ),
        (
            "OpenAI image_url block",
            Box::new(move |b| {
                b["messages"] =
                    json!([user(json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]))])
            }),
            "messages.0.content.0: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result', 'code_execution_tool_result', 'bash_code_execution_tool_result', 'text_editor_code_execution_tool_result', 'tool_search_tool_result', 'container_upload', 'mcp_tool_use', 'mcp_tool_result'",
        ),
        (
            "text block extra field",
            Box::new(move |b| {
                b["messages"] = json!([user(json!([{"type": "text", "text": "x", "foo": 1}]))])
            }),
            "messages.0.content.0.text.foo: Extra inputs are not permitted",
        ),
        (
            "image bmp",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_B64}}])
                )])
            }),
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        ),
        (
            "image data URL",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": format!("data:image/png;base64,{PNG_B64}")}}])
                )])
            }),
            "messages.0.content.0.image.source.base64.data: Invalid base64 data",
        ),
        (
            "image type mismatch",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": JPEG_B64}}])
                )])
            }),
            "messages.0.content.0.image.source.base64.data: The image was specified using the image/png media type, but the image appears to be a image/jpeg image",
        ),
        (
            "image not an image",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}}])
                )])
            }),
            "messages.0.content.0.image.source.base64.data: Could not process image",
        ),
        (
            "image bad url",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "image", "source": {"type": "url", "url": "ftp://x/y.png"}}])
                )])
            }),
            "messages.0.content.0.image.source.url.url: Input should be a valid URL",
        ),
        (
            "image missing source",
            Box::new(move |b| b["messages"] = json!([user(json!([{"type": "image"}]))])),
            "messages.0.content.0.image.source: Field required",
        ),
        (
            "tool_use in user turn",
            Box::new(move |b| b["messages"] = json!([user(json!([tool_use("toolu_1")]))])),
            "messages.0.content.0: `tool_use` blocks can only appear in `assistant` messages",
        ),
        (
            "tool_use bad id",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(json!([tool_use("call 1")])),
                    user(json!([tool_result("call 1")]))
                ])
            }),
            "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
        ),
        (
            "tool_use string input",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(
                        json!([{"type": "tool_use", "id": "t1", "name": "get_weather", "input": "{\"city\":\"Oslo\"}"}])
                    ),
                    user(json!([tool_result("t1")]))
                ])
            }),
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            "OpenAI tool_calls field",
            Box::new(move |b| {
                b["messages"] =
                    json!([user(json!("hi")), {"role": "assistant", "content": "x", "tool_calls": []}])
            }),
            "messages.1.tool_calls: Extra inputs are not permitted",
        ),
        (
            "tool_result without tool_use",
            Box::new(move |b| {
                b["messages"] =
                    json!([user(json!("hi")), asst(json!("ok")), user(json!([tool_result("toolu_9")]))])
            }),
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            "tool_result wrong id",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([tool_result("toolu_1"), tool_result("toolu_2")]))
                ])
            }),
            "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_2. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            "tool_use unanswered",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1"), tool_use("toolu_2")])),
                    user(json!([tool_result("toolu_1")]))
                ])
            }),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            "tool_use last",
            Box::new(move |b| b["messages"] = json!([user(json!("hi")), asst(json!([tool_use("toolu_1")]))])),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            "text before tool_result",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([{"type": "text", "text": "here"}, tool_result("toolu_1")]))
                ])
            }),
            "messages.2.content.1: `tool_result` blocks must come first in the user message content, before any other content blocks",
        ),
        (
            "tool_result in assistant",
            Box::new(move |b| {
                b["messages"] = json!([user(json!("hi")), asst(json!([tool_result("toolu_1")]))])
            }),
            "messages.1.content.0: `tool_result` blocks can only appear in `user` messages",
        ),
        (
            "tool_result bad content",
            Box::new(move |b| {
                b["messages"] = json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": {"temp": 12}}]))
                ])
            }),
            "messages.2.content.0.tool_result.content: Input should be a valid string, got dict",
        ),
        (
            "trailing whitespace prefill",
            Box::new(move |b| b["messages"] = json!([user(json!("hi")), asst(json!("The answer is "))])),
            "messages: final assistant content cannot end with trailing whitespace",
        ),
        (
            "system object",
            Box::new(|b| b["system"] = json!({"text": "x"})),
            "system: Input should be a valid string",
        ),
        (
            "system image block",
            Box::new(|b| b["system"] = json!([{"type": "image", "text": "x"}])),
            "system.0.type: Input should be 'text'",
        ),
        (
            "tool name with space",
            Box::new(|b| {
                b["tools"] = json!([{"name": "get weather", "input_schema": {"type": "object"}}]);
            }),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            "tool name too long",
            Box::new(|b| {
                b["tools"] = json!([{"name": "x".repeat(65), "input_schema": {"type": "object"}}]);
            }),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            "tool schema array",
            Box::new(|b| {
                b["tools"] = json!([{"name": "t", "input_schema": {"type": "array"}}]);
            }),
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            "tool schema without type",
            Box::new(|b| {
                b["tools"] = json!([{"name": "t", "input_schema": {"properties": {}}}]);
            }),
            "tools.0.custom.input_schema.type: Field required",
        ),
        (
            "tool schema invalid",
            Box::new(|b| {
                b["tools"] =
                    json!([{"name": "t", "input_schema": {"type": "object", "properties": {"a": 5}}}]);
            }),
            "tools.0.custom.input_schema: JSON schema is invalid - please consult https://json-schema.org or our documentation at https://docs.anthropic.com/en/docs/tool-use",
        ),
        (
            "tool without schema",
            Box::new(|b| {
                b["tools"] = json!([{"name": "t"}]);
            }),
            "tools.0.custom.input_schema: Field required",
        ),
        (
            "OpenAI parameters",
            Box::new(|b| {
                b["tools"] = json!([{"name": "t", "input_schema": {"type": "object"}, "parameters": {}}]);
            }),
            "tools.0.custom.parameters: Extra inputs are not permitted",
        ),
        (
            "OpenAI function tool",
            Box::new(|b| {
                b["tools"] = json!([{"type": "function", "function": {"name": "t"}}]);
            }),
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected tags: 'custom', or a versioned server tool type such as 'web_search_20250305'",
        ),
        (
            "duplicate tool names",
            Box::new(|b| {
                b["tools"] = json!([weather_tool(), weather_tool()]);
            }),
            "tools: Tool names must be unique.",
        ),
        (
            "tool_choice without tools",
            Box::new(|b| b["tool_choice"] = json!({"type": "auto"})),
            "tool_choice: tool_choice may only be specified while providing tools.",
        ),
        (
            "tool_choice required",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "required"});
            }),
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
        (
            "tool_choice string",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!("auto");
            }),
            "tool_choice: Input should be a valid dictionary",
        ),
        (
            "tool_choice tool without name",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "tool"});
            }),
            "tool_choice.tool.name: Field required",
        ),
        (
            "tool_choice unknown tool",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "tool", "name": "nope"});
            }),
            "tool_choice.tool.name: Tool 'nope' not found in tools",
        ),
        (
            "tool_choice none parallel",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "none", "disable_parallel_tool_use": true});
            }),
            "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
        ),
        ("temperature 1.5", Box::new(|b| b["temperature"] = json!(1.5)), "temperature: range: 0..1"),
        ("temperature -1", Box::new(|b| b["temperature"] = json!(-1)), "temperature: range: 0..1"),
        (
            "temperature null",
            Box::new(|b| b["temperature"] = json!(null)),
            "temperature: Input should be a valid number",
        ),
        ("top_p 2", Box::new(|b| b["top_p"] = json!(2)), "top_p: range: 0..1"),
        (
            "top_k -1",
            Box::new(|b| b["top_k"] = json!(-1)),
            "top_k: Input should be greater than or equal to 0",
        ),
        (
            "stop_sequences string",
            Box::new(|b| b["stop_sequences"] = json!("END")),
            "stop_sequences: Input should be a valid list",
        ),
        (
            "stop_sequences blank",
            Box::new(|b| b["stop_sequences"] = json!(["END", " "])),
            "stop_sequences: each stop sequence must contain non-whitespace",
        ),
        (
            "stream string",
            Box::new(|b| b["stream"] = json!("yes")),
            "stream: Input should be a valid boolean",
        ),
        (
            "metadata extra",
            Box::new(|b| b["metadata"] = json!({"session": "x"})),
            "metadata.session: Extra inputs are not permitted",
        ),
        (
            "service_tier",
            Box::new(|b| b["service_tier"] = json!("priority")),
            "service_tier: Input should be 'auto' or 'standard_only'",
        ),
        (
            "cache_control type",
            Box::new(move |b| {
                b["messages"] = json!([user(
                    json!([{"type": "text", "text": "x", "cache_control": {"type": "persistent"}}])
                )])
            }),
            "messages.0.content.0.text.cache_control.type: Input should be 'ephemeral'",
        ),
        (
            "cache_control ttl",
            Box::new(move |b| {
                b["system"] = json!([{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1d"}}])
            }),
            "system.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            "five cache breakpoints",
            Box::new(move |b| {
                b["system"] = json!([text_cc, text_cc]);
                b["messages"] = json!([user(json!([text_cc, text_cc]))]);
                b["tools"] = json!([{"name": "t", "input_schema": {"type": "object"}, "cache_control": cc}]);
            }),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            "thinking budget small",
            Box::new(|b| b["thinking"] = json!({"type": "enabled", "budget_tokens": 100})),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            "thinking budget over max",
            Box::new(|b| b["thinking"] = json!({"type": "enabled", "budget_tokens": 2048})),
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        ),
        (
            "thinking with temperature",
            Box::new(|b| {
                b["max_tokens"] = json!(4096);
                b["temperature"] = json!(0.2);
                b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
            }),
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ),
        (
            "thinking forced tool",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "any"});
                b["thinking"] = json!({"type": "adaptive"});
            }),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            "output_config format",
            Box::new(|b| b["output_config"] = json!({"format": {"type": "json_object"}})),
            "output_config.format.schema: Field required",
        ),
    ];
    for (what, edit, message) in &cases {
        let mut body = base();
        edit(&mut body);
        let resp = post(&m, &body).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_eq!(resp.json()["error"]["message"], *message, "{what}");
        assert_invalid(&resp, message);
    }
}

/// Valid requests that exercise every accepted form: all answered 200.
#[tokio::test]
async fn accepts_every_documented_form() {
    let m = mock().await;
    let full = json!({
        "model": "claude-mock", "max_tokens": 128,
        "system": [{"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Oslo?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG_B64}, "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a doc"}, "title": "t"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_9-x", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "12 degrees"}]},
                {"type": "tool_result", "tool_use_id": "call_9-x", "content": "timeout", "is_error": true},
                {"type": "text", "text": "thanks"}]},
            {"role": "assistant", "content": "Prefilled"}],
        "tools": [weather_tool(), time_tool(), {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "temperature": 0, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}, "service_tier": "auto", "thinking": {"type": "disabled"},
        "output_config": {"effort": "high"}, "stream": false, "inference_geo": null, "container": null
    });
    let r = post(&m, &full).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["content"][0]["text"],
        "You said: [tool_result toolu_01A: 12 degrees] [tool_error call_9-x: timeout] thanks"
    );
    // system 3 + "Weather in Oslo?" 3 + image 1 + document 1 + "Checking." 1 + 2 tool_use
    // + 2 tool_result (+ "12 degrees" 2, "timeout" 1) + "thanks" 1 + "Prefilled" 1 + 3 tools = 21
    assert_eq!(v["usage"]["input_tokens"], 21);

    // max_tokens 0 only pre-warms the cache: no content.
    let mut zero = base();
    zero["max_tokens"] = json!(0);
    let v = post(&m, &zero).await.json();
    assert_eq!((v["content"].clone(), v["stop_reason"].clone()), (json!([]), json!("max_tokens")));
    assert_eq!(v["usage"]["output_tokens"], 1);

    // A reply longer than max_tokens words is cut there.
    let mut short = base();
    short["max_tokens"] = json!(2);
    let v = post(&m, &short).await.json();
    assert_eq!(
        (v["content"][0]["text"].clone(), v["stop_reason"].clone()),
        (json!("You said: "), json!("max_tokens"))
    );

    // Combining consecutive turns, as the current API documents, when strict_turns is off.
    let lenient = mock_with(AnthropicOptions { strict_turns: false, ..Default::default() }).await;
    let body = json!({"model": "m", "max_tokens": 50, "messages": [
        {"role": "assistant", "content": "Earlier."}, {"role": "user", "content": "one"}, {"role": "user", "content": "two"}]});
    let v = post(&lenient, &body).await.json();
    assert_eq!(v["content"][0]["text"], "You said: one two");
    assert_eq!(post(&m, &body).await.status, 400);
}

/// How many 3, 4, 5, 3, … character pieces ASCII text of `len` characters is streamed in.
fn json_piece_count(mut len: usize) -> u64 {
    let (mut n, mut want) = (0, 3);
    while len > 0 {
        len = len.saturating_sub(want);
        n += 1;
        want = if want == 5 { 3 } else { want + 1 };
    }
    n
}

#[tokio::test]
async fn tool_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["model"] = json!("claude-tool");
    body["tools"] = json!([weather_tool(), time_tool()]);
    let v = post(&m, &body).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather",
                "input": {"city": "city sample", "unit": "celsius", "days": 1}}])
    );
    let input = serde_json::to_string(&v["content"][0]["input"]).unwrap();
    // output_tokens: the empty opening piece plus 3-5 character pieces of the input JSON.
    assert_eq!(v["usage"]["output_tokens"], 1 + json_piece_count(input.len()));

    body["model"] = json!("claude-parallel-tools");
    let v = post(&m, &body).await.json();
    let calls: Vec<(&str, &str)> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_str().unwrap(), b["name"].as_str().unwrap()))
        .collect();
    assert_eq!(calls, [("toolu_mock_1_1", "get_weather"), ("toolu_mock_1_2", "get_time")]);
    assert_eq!(v["content"][1]["input"], json!({"zone": "zone sample"}));
    body["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
    assert_eq!(post(&m, &body).await.json()["content"].as_array().unwrap().len(), 1);

    // tool_choice forces a named tool even on the default model; none forbids tools.
    body["model"] = json!("claude-mock");
    body["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["name"].clone(), v["stop_reason"].clone()),
        (json!("get_time"), json!("tool_use"))
    );
    body["model"] = json!("claude-tool");
    body["tool_choice"] = json!({"type": "none"});
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["type"].clone(), v["stop_reason"].clone()),
        (json!("text"), json!("end_turn"))
    );

    body["model"] = json!("claude-text-tool");
    body.as_object_mut().unwrap().remove("tool_choice");
    let v = post(&m, &body).await.json();
    assert_eq!(v["content"][0], json!({"type": "text", "text": "Let me call get_weather."}));
    assert_eq!(v["content"][1]["type"], "tool_use");

    // The id follows the conversation length, so a second round gets new ids.
    body["model"] = json!("claude-tool");
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1_1", "content": "sunny"}]}]);
    assert_eq!(post(&m, &body).await.json()["content"][0]["id"], "toolu_mock_3_1");
    // A model without tools in the request answers in text.
    let mut plain = base();
    plain["model"] = json!("claude-tool");
    assert_eq!(post(&m, &plain).await.json()["content"][0]["type"], "text");
}

#[tokio::test]
async fn stop_cache_and_json_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["messages"][0]["content"] = json!("one two three four five");
    body["model"] = json!("claude-max-tokens");
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["text"].clone(), v["stop_reason"].clone()),
        (json!("You said: one "), json!("max_tokens"))
    );
    assert_eq!(v["usage"]["output_tokens"], 3);

    body["model"] = json!("claude-stop-sequence");
    body["stop_sequences"] = json!(["STOP", "END"]);
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["stop_reason"].clone(), v["stop_sequence"].clone()),
        (json!("stop_sequence"), json!("STOP"))
    );
    body.as_object_mut().unwrap().remove("stop_sequences");
    assert_eq!(post(&m, &body).await.json()["stop_reason"], "end_turn");

    body["model"] = json!("claude-cache");
    let v = post(&m, &body).await.json();
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 5, "cache_creation_input_tokens": CACHE_CREATION_TOKENS,
               "cache_read_input_tokens": CACHE_READ_TOKENS,
               "cache_creation": {"ephemeral_5m_input_tokens": CACHE_CREATION_TOKENS, "ephemeral_1h_input_tokens": 0},
               "output_tokens": 7, "service_tier": "standard"})
    );

    // JSON output: the text is JSON built from the schema (GA and beta spellings).
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"], "additionalProperties": false});
    body["model"] = json!("claude-mock");
    body["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    let v = post(&m, &body).await.json();
    let text: Value = serde_json::from_str(v["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({"name": "name sample", "age": 42}));
    body.as_object_mut().unwrap().remove("output_config");
    body["output_format"] = json!({"type": "json_schema", "schema": schema});
    let text = post(&m, &body).await.json()["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"name": "name sample", "age": 42}));
    // Properties keep the request's order (json! above sorts keys; this body is written by hand).
    let raw = r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}],
        "output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"z":{"type":"boolean"},"a":{"type":"null"}}}}}}"#;
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, raw.as_bytes()).await;
    assert_eq!(r.json()["content"][0]["text"], r#"{"z":true,"a":null}"#);
}

#[tokio::test]
async fn error_models() {
    let m = mock().await;
    for (status, kind, retry) in [
        (400, "invalid_request_error", "false"),
        (401, "authentication_error", "false"),
        (403, "permission_error", "false"),
        (404, "not_found_error", "false"),
        (413, "request_too_large", "false"),
        (429, "rate_limit_error", "true"),
        (500, "api_error", "true"),
        (529, "overloaded_error", "true"),
    ] {
        for stream in [false, true] {
            let mut body = base();
            body["model"] = json!(format!("error-{status}"));
            body["stream"] = json!(stream);
            let r = post(&m, &body).await;
            let message = assert_error(&r, status, kind);
            assert!(!message.is_empty());
            assert_eq!(r.header("x-should-retry"), Some(retry), "{status}");
            assert_eq!(r.header("retry-after"), (status == 429).then_some("7"), "{status}");
        }
    }
    let mut body = base();
    body["model"] = json!("error-529");
    assert_eq!(post(&m, &body).await.json()["error"]["message"], "Overloaded");
    // The request is validated first: an invalid one is a 400 whatever the model.
    body.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(post(&m, &body).await.status, 400);
}

#[tokio::test]
async fn malformed_and_disconnect_without_stream() {
    let m = mock().await;
    let mut body = base();
    body["model"] = json!("claude-malformed");
    let r = post(&m, &body).await;
    assert_eq!((r.status.as_u16(), r.header("content-type")), (200, Some("application/json")));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err(), "{}", r.text());
    assert!(!r.cut);

    body["model"] = json!("claude-disconnect");
    let r = post(&m, &body).await;
    assert_eq!(r.status, 200);
    assert!(r.cut, "{}", r.text());
    assert!(r.text().starts_with(r#"{"id":"msg_mock_2","#), "{}", r.text());

    body["model"] = json!("claude-midstream-error");
    let r = post(&m, &body).await;
    assert_eq!((r.status.as_u16(), r.json()["stop_reason"].clone()), (200, json!("end_turn")));
}

#[tokio::test]
async fn text_stream_event_sequence() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("tell me a story");
    let r = post(&m, &body).await;
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(!r.cut);
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        evs[0].1,
        json!({"type": "message_start", "message": {"id": "msg_mock_1", "type": "message", "role": "assistant",
            "model": "claude-mock", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                      "output_tokens": 1, "service_tier": "standard"}}})
    );
    // The raw text keeps the documented key order.
    assert!(
        r.text().starts_with("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":")
    );
    assert_eq!(
        evs[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    let text: String = evs[3..9]
        .iter()
        .map(|(_, d)| {
            assert_eq!((&d["index"], &d["delta"]["type"]), (&json!(0), &json!("text_delta")));
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "You said: tell me a story");
    assert_eq!(evs[9].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        evs[10].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 6}})
    );
    // The same request without streaming reports the same usage.
    body["stream"] = json!(false);
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["usage"]["output_tokens"].clone(), v["content"][0]["text"].clone()),
        (json!(6), json!(text))
    );
}

/// Concatenates the `partial_json` pieces of block `index`, checking each piece's size.
fn tool_input(evs: &[(String, Value)], index: u64) -> (Value, usize) {
    let pieces: Vec<&str> = evs
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(pieces[0], "", "the API opens tool input with an empty piece");
    assert!(pieces[1..].iter().all(|p| (1..=5).contains(&p.chars().count())), "{pieces:?}");
    (serde_json::from_str(&pieces.concat()).unwrap(), pieces.len())
}

#[tokio::test]
async fn tool_streams_split_arguments_into_many_pieces() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["model"] = json!("claude-tool");
    body["tools"] = json!([weather_tool(), time_tool()]);
    let evs = events(&post(&m, &body).await);
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather", "input": {}})
    );
    assert_eq!(evs[2].0, "ping");
    let (input, pieces) = tool_input(&evs, 0);
    assert_eq!(input, json!({"city": "city sample", "unit": "celsius", "days": 1}));
    assert!(pieces > 10, "{pieces}");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], pieces as u64);
    assert_eq!(evs.last().unwrap().0, "message_stop");

    body["model"] = json!("claude-parallel-tools");
    let evs = events(&post(&m, &body).await);
    let starts: Vec<&Value> =
        evs.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d).collect();
    assert_eq!(starts.len(), 2);
    assert_eq!((starts[0]["index"].clone(), starts[1]["index"].clone()), (json!(0), json!(1)));
    assert_eq!(starts[1]["content_block"]["name"], "get_time");
    let (first, n0) = tool_input(&evs, 0);
    let (second, n1) = tool_input(&evs, 1);
    assert_eq!((first["city"].clone(), second), (json!("city sample"), json!({"zone": "zone sample"})));
    assert_eq!(evs[evs.len() - 2].1["usage"]["output_tokens"], (n0 + n1) as u64);
    // Blocks never interleave: each block's stop comes before the next block's start.
    let order: Vec<(&str, u64)> = evs
        .iter()
        .filter(|(n, _)| n.starts_with("content_block"))
        .map(|(n, d)| (n.as_str(), d["index"].as_u64().unwrap()))
        .collect();
    let stop0 = order.iter().position(|&x| x == ("content_block_stop", 0)).unwrap();
    assert_eq!(order[stop0 + 1], ("content_block_start", 1));

    body["model"] = json!("claude-text-tool-cache");
    let evs = events(&post(&m, &body).await);
    assert_eq!(evs[1].1["content_block"]["type"], "text");
    assert_eq!(evs[3].1["delta"], json!({"type": "text_delta", "text": "Let "}));
    let (input, _) = tool_input(&evs, 1);
    assert_eq!(input["unit"], "celsius");
    assert_eq!(evs[0].1["message"]["usage"]["cache_read_input_tokens"], CACHE_READ_TOKENS);
    assert_eq!(evs[evs.len() - 2].1["usage"]["cache_creation_input_tokens"], CACHE_CREATION_TOKENS);
}

#[tokio::test]
async fn stream_failures() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("a b c d e f");

    body["model"] = json!("claude-midstream-error");
    let r = post(&m, &body).await;
    assert!(!r.cut);
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        evs[5].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    body["model"] = json!("claude-tool-disconnect");
    body["tools"] = json!([weather_tool()]);
    let r = post(&m, &body).await;
    assert!(r.cut, "{}", r.text());
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );

    body["model"] = json!("claude-malformed");
    let r = post(&m, &body).await;
    let text = r.text();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    let second = text.split_terminator("\n\n").nth(1).unwrap();
    let data = second.split_once("\ndata: ").unwrap().1;
    assert!(serde_json::from_str::<Value>(data).is_err(), "{data}");
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn pacing_spaces_events() {
    let m = mock_with(AnthropicOptions { pace: Duration::from_millis(15), ..Default::default() }).await;
    let mut body = base();
    body["stream"] = json!(true);
    let t = Instant::now();
    let evs = events(&post(&m, &body).await);
    assert_eq!(evs.len(), 10);
    assert!(t.elapsed() >= Duration::from_millis(15 * 9), "{:?}", t.elapsed());
}

#[tokio::test]
async fn count_tokens() {
    let m = mock().await;
    let mut body = json!({"model": "claude-mock", "system": "Be brief",
        "messages": [{"role": "user", "content": "count these four words"}],
        "tools": [weather_tool()], "tool_choice": {"type": "auto"}});
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"input_tokens":7}"#);
    // The same counting rule as /v1/messages.
    body["max_tokens"] = json!(10);
    assert_eq!(post(&m, &body).await.json()["usage"]["input_tokens"], 7);
    // max_tokens and stream are not count_tokens fields.
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_invalid(&r, "max_tokens: Extra inputs are not permitted");
    body.as_object_mut().unwrap().remove("max_tokens");
    body["messages"] = json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]);
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_invalid(
        &r,
        "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row",
    );
    body["model"] = json!("error-429");
    body["messages"] = json!([{"role": "user", "content": "a"}]);
    assert_error(&post_to(&m, "/v1/messages/count_tokens", &body).await, 429, "rate_limit_error");
}
