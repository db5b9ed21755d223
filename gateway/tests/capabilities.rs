//! Capabilities: a request that needs what a backend lacks (images, tools, JSON mode, streaming,
//! embeddings, a longer context) is not sent to it; the route's other backends serve it, and when
//! none can, the caller gets a 400 naming the capability instead of an upstream's confusing error.

pub mod support;

use serde_json::{Value, json};
use support::*;

const KEY: &str = "sk-capabilities";

/// `text-only`: one backend without vision, tools, JSON mode, streaming or embeddings, with a
/// 50-token window; `mixed`: a text-only backend first, then one that can do everything.
fn gateway() -> Gateway {
    let config = format!(
        r#"version: 2
providers:
  - {{ name: small, type: mock, reply: small }}
  - {{ name: large, type: mock, reply: large }}
routes:
  - model: text-only
    backends:
      - provider: small
        capabilities: {{ vision: false, tools: false, json_mode: false, streaming: false, embeddings: false, context_length: 50 }}
  - model: mixed
    backends:
      - {{ provider: small, capabilities: {{ vision: false, tools: false }} }}
      - {{ provider: large, priority: 1 }}
keys:
  - id: caller
    hash: {}
"#,
        hash_key(KEY)
    );
    Gateway::start(Some(&config), &[])
}

async fn post(gateway: &Gateway, path: &str, body: Value) -> TestResponse {
    let auth = format!("Bearer {KEY}");
    send("POST", &gateway.url(path), &[("authorization", auth.as_str())], body.to_string()).await
}

fn chat(model: &str, extra: Value) -> Value {
    let mut body = json!({ "model": model, "messages": [{ "role": "user", "content": "hello" }] });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

fn image() -> Value {
    json!({ "messages": [{ "role": "user", "content": [
        { "type": "text", "text": "what is in this picture?" },
        { "type": "image_url", "image_url": { "url": "https://example.com/cat.png" } },
    ]}]})
}

fn tools() -> Value {
    json!({ "tools": [{ "type": "function", "function": { "name": "get_weather",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }] })
}

#[tokio::test]
async fn what_no_backend_can_do_is_refused_with_the_capability_named() {
    let gateway = gateway();
    let plain = post(&gateway, "/v1/chat/completions", chat("text-only", json!({}))).await;
    assert_eq!(plain.status, 200, "{}", plain.text());

    for (extra, param, needs) in [
        (image(), "messages", "`vision`"),
        (tools(), "tools", "`tools`"),
        (json!({ "response_format": { "type": "json_object" } }), "response_format", "`json_mode`"),
        (json!({ "stream": true }), "stream", "`streaming`"),
    ] {
        let response = post(&gateway, "/v1/chat/completions", chat("text-only", extra.clone())).await;
        let error = response.error(400);
        assert_eq!(error["code"], "unsupported_capability", "{extra}");
        assert_eq!(error["param"], param, "{extra}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("'text-only'") && message.contains(needs), "{message}");
    }

    // 50 tokens: 400 bytes of prompt is at least ~66 tokens for any tokenizer.
    let long = chat("text-only", json!({ "messages": [{ "role": "user", "content": "word ".repeat(80) }] }));
    let error = post(&gateway, "/v1/chat/completions", long).await.error(400);
    assert_eq!(
        (error["code"].as_str(), error["param"].as_str()),
        (Some("context_length_exceeded"), Some("messages"))
    );
    let asks_too_much = chat("text-only", json!({ "max_tokens": 60 }));
    assert_eq!(
        post(&gateway, "/v1/chat/completions", asks_too_much).await.error(400)["code"],
        "context_length_exceeded"
    );
    let fits = chat("text-only", json!({ "max_tokens": 40 }));
    assert_eq!(post(&gateway, "/v1/chat/completions", fits).await.status, 200);

    let embeddings = post(&gateway, "/v1/embeddings", json!({ "model": "text-only", "input": "hi" })).await;
    assert_eq!(embeddings.error(400)["param"], "model");
}

#[tokio::test]
async fn a_backend_that_lacks_a_capability_is_skipped_for_one_that_has_it() {
    let gateway = gateway();
    let plain = post(&gateway, "/v1/chat/completions", chat("mixed", json!({}))).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.headers["x-switchboard-provider"], "small", "the first tier serves what it can");

    for extra in [image(), tools()] {
        let response = post(&gateway, "/v1/chat/completions", chat("mixed", extra)).await;
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.headers["x-switchboard-provider"], "large");
    }
    // Skipping is not an attempt: the text-only backend was not called, not failed, not ejected.
    let plain = post(&gateway, "/v1/chat/completions", chat("mixed", json!({}))).await;
    assert_eq!(plain.headers["x-switchboard-provider"], "small");
    let small = |outcome: &str| {
        format!("switchboard_upstream_requests_total{{provider=\"small\",outcome=\"{outcome}\"}}")
    };
    assert_eq!(gateway.metric(&small("ok")).await, 2.0);
    assert_eq!(gateway.metric(&small("bad_request")).await, 0.0);
    assert_eq!(gateway.metric("switchboard_backend_ejections_total{provider=\"small\"}").await, 0.0);
}

#[test]
fn capabilities_are_config_checked() {
    let config = r#"version: 2
providers: [{ name: m, type: mock }]
routes:
  - model: x
    backends: [{ provider: m, capabilities: { context_length: 0, telepathy: true } }]
"#;
    let errors = switchboard_config::Snapshot::from_yaml(config).unwrap_err().to_string();
    assert!(errors.contains("telepathy"), "{errors}");
    let config = config.replace(", telepathy: true", "");
    let errors = switchboard_config::Snapshot::from_yaml(&config).unwrap_err().to_string();
    assert!(
        errors.contains("routes[0].backends[0].capabilities.context_length: must be at least 1"),
        "{errors}"
    );
    let v1 = config.replace("version: 2", "version: 1").replace("context_length: 0", "vision: false");
    let errors = switchboard_config::Snapshot::from_yaml(&v1).unwrap_err().to_string();
    assert!(errors.contains("routes[0].backends[0].capabilities: needs schema version 2"), "{errors}");
}
