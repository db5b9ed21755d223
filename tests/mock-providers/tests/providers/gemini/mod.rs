//! The Gemini / Vertex AI mock: authentication, both validation layers, every model-id
//! behaviour, error envelopes, SSE and JSON-array streams, token counting and embeddings.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_mock_providers::gemini::{THOUGHT_SIGNATURE, THOUGHTS_TOKENS};
use switchboard_mock_providers::{GeminiMock, GeminiOptions};

use crate::client::{Resp, send};

mod replies;
mod streams;
mod validation;

const KEY: &str = "gemini-mock-key";
const TOKEN: &str = "Bearer ya29.mock-access-token";
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUg==";
const GEN: &str = "/v1beta/models/gemini-mock:generateContent";
const VERTEX: &str = "/v1/projects/proj-1/locations/us-central1/publishers/google/models";

async fn mock_with(options: GeminiOptions) -> GeminiMock {
    GeminiMock::start(([127, 0, 0, 1], 0).into(), options).await.unwrap()
}

async fn mock() -> GeminiMock {
    mock_with(GeminiOptions::default()).await
}

fn gen_path(model: &str, method: &str) -> String {
    format!("/v1beta/models/{model}:{method}")
}

async fn post_path(m: &GeminiMock, path: &str, body: &Value) -> Resp {
    let headers: &[(&str, &str)] = if path.starts_with("/v1/") || path.starts_with("/v1beta1/") {
        &[("authorization", TOKEN), ("content-type", "application/json")]
    } else {
        &[("x-goog-api-key", KEY), ("content-type", "application/json")]
    };
    send(m.addr(), "POST", path, headers, body.to_string().as_bytes()).await
}

async fn generate(m: &GeminiMock, model: &str, body: &Value) -> Resp {
    post_path(m, &gen_path(model, "generateContent"), body).await
}

fn base() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]})
}

fn weather_decl() -> Value {
    json!({"name": "get_weather", "description": "Weather for a city", "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}})
}

fn time_decl() -> Value {
    json!({"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {"zone": {"type": "string"}},
        "additionalProperties": false}})
}

/// Google's envelope with this code and status; returns the message.
fn assert_google_error(resp: &Resp, code: u16, status: &str) -> String {
    assert_eq!(resp.status, code, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json; charset=UTF-8"));
    let v = resp.json();
    let e = &v["error"];
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!((&e["code"], &e["status"]), (&json!(code), &json!(status)), "{v}");
    e["message"].as_str().unwrap().to_owned()
}

fn assert_invalid(resp: &Resp, message: &str) {
    assert_eq!(assert_google_error(resp, 400, "INVALID_ARGUMENT"), message);
}
