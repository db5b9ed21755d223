//! The built-in mock provider refuses what OpenAI refuses among the fields it reads: a 400 in
//! OpenAI's envelope naming the field, as the real API answers, never a 200 that a client would
//! only learn was wrong in production. Limits from OpenAI's OpenAPI spec
//! (https://github.com/openai/openai-openapi: `CreateChatCompletionRequest.messages` has
//! `minItems: 1`; `CreateEmbeddingRequest.input` is a non-empty string or an array of 1 to 2048
//! entries, `encoding_format` is `float` or `base64`, `dimensions` has `minimum: 1`) and the
//! embeddings guide (text-embedding-3-small's vectors have 1536 dimensions:
//! https://platform.openai.com/docs/guides/embeddings#embedding-models).

pub mod support;

use serde_json::{Value, json};
use support::*;

const DEV_KEY: &str = "sk-switchboard-dev";

async fn post(gateway: &Gateway, path: &str, body: &Value) -> TestResponse {
    let (name, value) = bearer(DEV_KEY);
    send("POST", &gateway.url(path), &[(name, value.as_str())], body.to_string()).await
}

async fn embed(gateway: &Gateway, fields: Value) -> TestResponse {
    let mut body = json!({ "model": "mock-embedding", "input": "hello" });
    for (key, value) in fields.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    post(gateway, "/v1/embeddings", &body).await
}

/// Asserts a 400 `invalid_request_error` naming `param`, and returns its message.
fn refused(response: &TestResponse, param: &str) -> String {
    let error = response.error(400);
    assert_eq!(error["type"], "invalid_request_error", "{error}");
    assert_eq!(error["param"], param, "{error}");
    error["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn chat_needs_at_least_one_message() {
    let gateway = Gateway::start(None, &[]);
    let response = post(&gateway, "/v1/chat/completions", &json!({"model": "mock", "messages": []})).await;
    assert_eq!(refused(&response, "messages"), "[] is too short - 'messages'");

    let ok = json!({"model": "mock", "messages": [{"role": "user", "content": "hello"}]});
    assert_eq!(post(&gateway, "/v1/chat/completions", &ok).await.status, 200);
}

#[tokio::test]
async fn embeddings_input_must_be_non_empty_and_at_most_2048_entries() {
    let gateway = Gateway::start(None, &[]);
    let message = refused(&embed(&gateway, json!({"input": ""})).await, "input");
    assert!(message.contains("'$.input' is invalid"), "{message}");
    refused(&embed(&gateway, json!({"input": []})).await, "input");
    refused(&embed(&gateway, json!({"input": [[]]})).await, "input");

    let tokens: Vec<u32> = (0..2049).collect();
    let message = refused(&embed(&gateway, json!({"input": tokens})).await, "input");
    assert!(message.contains("2049") && message.contains("2048"), "{message}");
    let texts = vec!["a"; 2049];
    refused(&embed(&gateway, json!({"input": texts})).await, "input");
    let long_tokens: Vec<u32> = (0..8193).collect();
    refused(&embed(&gateway, json!({"input": [long_tokens]})).await, "input");

    // At the bounds: served, one vector per entry.
    let response = embed(&gateway, json!({"input": (0..2048).collect::<Vec<u32>>()})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["data"].as_array().map(Vec::len), Some(1));
    let response = embed(&gateway, json!({"input": vec!["a"; 2048]})).await;
    assert_eq!(response.json()["data"].as_array().map(Vec::len), Some(2048));
}

#[tokio::test]
async fn embeddings_dimensions_and_encoding_format_are_checked_not_clamped() {
    let gateway = Gateway::start(None, &[]);
    let message = refused(&embed(&gateway, json!({"dimensions": 0})).await, "dimensions");
    assert_eq!(message, "0 is less than the minimum of 1 - 'dimensions'");
    let message = refused(&embed(&gateway, json!({"dimensions": 9000})).await, "dimensions");
    assert_eq!(message, "9000 is greater than the maximum of 1536 - 'dimensions'");
    refused(&embed(&gateway, json!({"dimensions": -3})).await, "dimensions");
    refused(&embed(&gateway, json!({"dimensions": "8"})).await, "dimensions");

    let response = embed(&gateway, json!({"dimensions": 1536})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["data"][0]["embedding"].as_array().map(Vec::len), Some(1536));
    let response = embed(&gateway, json!({"dimensions": 1})).await;
    assert_eq!(response.json()["data"][0]["embedding"].as_array().map(Vec::len), Some(1));

    let message = refused(&embed(&gateway, json!({"encoding_format": "xml"})).await, "encoding_format");
    assert_eq!(message, r#"'xml' is not one of ['float', 'base64'] - 'encoding_format'"#);
    refused(&embed(&gateway, json!({"encoding_format": 1})).await, "encoding_format");
    let response = embed(&gateway, json!({"encoding_format": "base64", "dimensions": 4})).await;
    assert!(response.json()["data"][0]["embedding"].is_string(), "{}", response.text());
    assert_eq!(embed(&gateway, json!({"encoding_format": "float"})).await.status, 200);

    // The process serves on after every refusal.
    let ok = json!({"model": "mock", "messages": [{"role": "user", "content": "hello"}]});
    assert_eq!(post(&gateway, "/v1/chat/completions", &ok).await.status, 200);
}
