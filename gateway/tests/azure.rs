//! The `azure_openai` provider against the OpenAI mock in Azure mode
//! (`tests/mock-upstream/src/azure.rs`): deployment URLs with `api-version`, the v1 API, `api-key`
//! and Entra ID tokens, streams with usage, tool calls, and Azure's errors (401, 429 with
//! `retry-after`, the 400 `content_filter`, the 404 for an unknown API version). The passthrough
//! is OpenAI's, which the translated conformance suite does not cover, hence these cases.

pub mod support;

use serde_json::{Value, json};
use support::*;
use switchboard_mock_providers::{TokenMock, TokenOptions};
use switchboard_mock_upstream::{AzureOptions, MockUpstream, Options};

const KEY: &str = "sk-azure-client";

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn azure() -> MockUpstream {
    let options = Options { azure: Some(AzureOptions::default()), ..Options::default() };
    MockUpstream::start_with(([127, 0, 0, 1], 0).into(), options).await.unwrap()
}

/// The mock's origin (its `base_url()` ends in `/v1`, which Azure's endpoint does not have).
fn endpoint(mock: &MockUpstream) -> String {
    format!("http://{}", mock.addr())
}

/// A gateway with one `azure_openai` provider (`settings` are its extra lines) and routes
/// `chat` → deployment `my-gpt`, `tool` → `gpt-tool`, `filtered` → `content-filter`,
/// `error-<n>` → `error-<n>`.
fn gateway(endpoint: &str, settings: &str) -> Gateway {
    let routes: String = [
        ("chat", "my-gpt"),
        ("tool", "gpt-tool"),
        ("filtered", "content-filter"),
        ("error-429", "error-429"),
    ]
    .iter()
    .map(|(name, model)| {
        format!("  - model: {name}\n    backends: [{{ provider: azure, model: {model} }}]\n")
    })
    .collect();
    let config = format!(
        "version: 2\nproviders:\n  - name: azure\n    type: azure_openai\n    base_url: {endpoint}\n{settings}    allow_private_network: true\n    timeout_ms: 5000\nroutes:\n{routes}keys:\n  - id: client\n    hash: {}\n",
        hash_key(KEY)
    );
    Gateway::start(Some(&config), &["--log-level", "debug"])
}

const DATED_KEY: &str = "    api_version: 2024-10-21\n    api_key: { value: azure-mock-key }\n";

async fn chat(gateway: &Gateway, body: Value) -> TestResponse {
    send(
        "POST",
        &gateway.url("/v1/chat/completions"),
        &[("authorization", &format!("Bearer {KEY}"))],
        body.to_string(),
    )
    .await
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}

fn chunks(response: &TestResponse) -> Vec<Value> {
    sse_data(&response.text())
        .iter()
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect()
}

#[tokio::test]
async fn deployment_urls_with_api_version_and_key() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), DATED_KEY);
    let response = chat(&gateway, json!({"model": "chat", "messages": user("hello there")})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.json()["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("hello there"))
    );
    assert_eq!(
        mock.last_azure_uri().as_deref(),
        Some("/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21")
    );
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.header("api-key"), Some("azure-mock-key"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.body["model"], "my-gpt");
}

#[tokio::test]
async fn stream_with_usage() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), DATED_KEY);
    let body = json!({"model": "chat", "messages": user("one two three"), "stream": true,
        "stream_options": {"include_usage": true}});
    let response = chat(&gateway, body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().ends_with("data: [DONE]\n\n"), "{}", response.text());
    let chunks = chunks(&response);
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert!(text.contains("one two three"), "{text}");
    let usage = &chunks.last().cloned().unwrap_or_default()["usage"];
    assert!(usage["prompt_tokens"].as_u64().is_some_and(|n| n > 0), "{usage}");
    assert!(usage["completion_tokens"].as_u64().is_some_and(|n| n > 0), "{usage}");
}

#[tokio::test]
async fn tool_call_plain_and_streamed() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), DATED_KEY);
    let response =
        chat(&gateway, json!({"model": "tool", "messages": user("weather?"), "tools": tools()})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let choice = &response.json()["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(choice["message"]["tool_calls"][0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.body["tools"], tools(), "tools pass through untouched");

    let body = json!({"model": "tool", "messages": user("weather?"), "tools": tools(), "stream": true});
    let response = chat(&gateway, body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let chunks = chunks(&response);
    let arguments: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
    // The gateway asked for usage to count tokens; the client did not, so it sees none.
    assert!(chunks.iter().all(|c| c.get("usage").is_none_or(Value::is_null)), "{chunks:?}");
}

#[tokio::test]
async fn a_refused_key_is_the_gateways_problem() {
    let mock = azure().await;
    let gateway =
        gateway(&endpoint(&mock), "    api_version: 2024-10-21\n    api_key: { value: wrong-key }\n");
    let response = chat(&gateway, json!({"model": "chat", "messages": user("hi")})).await;
    let error = response.error(502);
    assert!(!response.text().contains("wrong-key"), "{error}");
    assert!(!gateway.log().contains("wrong-key"));
}

#[tokio::test]
async fn rate_limits_keep_retry_after() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), DATED_KEY);
    let response = chat(&gateway, json!({"model": "error-429", "messages": user("hi")})).await;
    response.error(429);
    assert!(response.headers.contains_key("retry-after"), "{:?}", response.headers);
}

#[tokio::test]
async fn content_filter_is_a_400_with_its_code() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), DATED_KEY);
    let response = chat(&gateway, json!({"model": "filtered", "messages": user("something filtered")})).await;
    let error = response.error(400);
    assert_eq!(error["code"], "content_filter", "{error}");
    assert_eq!(error["param"], "prompt", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("content management policy")), "{error}");
}

#[tokio::test]
async fn an_unknown_api_version_is_azures_404() {
    let mock = azure().await;
    let gateway =
        gateway(&endpoint(&mock), "    api_version: 2019-01-01\n    api_key: { value: azure-mock-key }\n");
    let response = chat(&gateway, json!({"model": "chat", "messages": user("hi")})).await;
    let error = response.error(404);
    assert_eq!(error["message"], "Resource not found", "{error}");
}

#[tokio::test]
async fn the_v1_api_takes_the_model_in_the_body() {
    let mock = azure().await;
    let gateway = gateway(&endpoint(&mock), "    api_version: v1\n    api_key: { value: azure-mock-key }\n");
    let response = chat(&gateway, json!({"model": "chat", "messages": user("hi")})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.last_azure_uri().as_deref(), Some("/openai/v1/chat/completions"));
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.body["model"], "my-gpt");

    let response = send(
        "POST",
        &gateway.url("/v1/embeddings"),
        &[("authorization", &format!("Bearer {KEY}"))],
        json!({"model": "chat", "input": "hi"}).to_string(),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(mock.last_azure_uri().as_deref(), Some("/openai/v1/embeddings"));
}

#[tokio::test]
async fn entra_tokens_instead_of_a_key() {
    let mock = azure().await;
    let token = TokenMock::start(([127, 0, 0, 1], 0).into(), TokenOptions::default())
        .await
        .unwrap_or_else(|_| unreachable!());
    let o = TokenOptions::default();
    let settings = format!(
        "    api_version: 2024-10-21\n    entra:\n      tenant_id: {t}\n      client_id: {}\n      client_secret: {{ value: {} }}\n      token_url: {}/{t}/oauth2/v2.0/token\n",
        o.client_id,
        o.client_secret,
        token.base_url(),
        t = o.tenant_id
    );
    let gateway = gateway(&endpoint(&mock), &settings);
    for _ in 0..3 {
        let response = chat(&gateway, json!({"model": "chat", "messages": user("hi")})).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(token.entra_tokens_issued(), 1);
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.header("authorization"), Some("Bearer entra.mock-access-token"));
    assert_eq!(request.header("api-key"), None);
    assert!(!gateway.log().contains("entra.mock-access-token") && !gateway.log().contains(&o.client_secret));
}
