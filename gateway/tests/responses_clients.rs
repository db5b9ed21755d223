//! The official OpenAI SDK's Responses API (tests/py/responses_sdk.py) against two gateway
//! replicas that share a real Redis (the conversation store): `previous_response_id` continued
//! on the other replica, retrieve and delete across replicas, another key told 404; on the
//! built-in mock, an OpenAI-compatible backend (chat completions through the hub) and Anthropic.
//!
//! `scripts/test` provisions the SDK and redis-server, and sets SWITCHBOARD_PYTHON.

pub mod support;

use support::*;
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions};
use switchboard_mock_upstream::MockUpstream;
use switchboard_test_redis::RedisServer;

const KEY: &str = "sk-responses-sdk";
const OTHER_KEY: &str = "sk-responses-other";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_responses_api_continues_conversations_across_replicas() {
    let local = || "127.0.0.1:0".parse().unwrap();
    let anthropic = AnthropicMock::start(local(), AnthropicOptions::default()).await.unwrap();
    let openai = MockUpstream::start(local()).await.unwrap();
    let redis = RedisServer::start();
    let config = format!(
        r#"
version: 2
providers:
  - name: builtin
    type: mock
  - name: openai
    type: openai
    base_url: {openai}
    allow_private_network: true
  - name: native
    type: openai
    base_url: {openai}
    responses_api: true
    allow_private_network: true
{anthropic}routes:
  - model: mock
    backends: [{{ provider: builtin }}]
  - model: openai
    backends: [{{ provider: openai, model: gpt-mock }}]
  - model: openai-tool
    backends: [{{ provider: openai, model: gpt-mock-tool }}]
  - model: native
    backends: [{{ provider: native, model: gpt-mock }}]
  - model: native-tool
    backends: [{{ provider: native, model: gpt-mock-tool }}]
  - model: claude
    backends: [{{ provider: anthropic, model: claude-mock }}]
  - model: claude-tool
    backends: [{{ provider: anthropic, model: claude-mock-tool }}]
keys:
  - id: sdk
    hash: {key}
  - id: other
    hash: {other}
"#,
        openai = openai.base_url(),
        anthropic = anthropic_provider_yaml(&anthropic),
        key = hash_key(KEY),
        other = hash_key(OTHER_KEY),
    );
    let redis_url = redis.url();
    let args = ["--redis-url", redis_url.as_str(), "--redis-timeout-ms", "2000"];
    let (a, b) = (Gateway::start(Some(&config), &args), Gateway::start(Some(&config), &args));
    let mut args: Vec<String> =
        ["--url-a", &a.url("/v1"), "--url-b", &b.url("/v1"), "--key", KEY, "--other-key", OTHER_KEY]
            .map(str::to_owned)
            .to_vec();
    for backend in [
        "mock=mock,mock,mock",
        "openai=openai,openai-tool,openai",
        "anthropic=claude,claude-tool,claude",
        "native=native,native-tool",
    ] {
        args.extend(["--backend".to_owned(), backend.to_owned()]);
    }
    run_python_check("responses_sdk.py", &args, "responses sdk ok", &[&a, &b]).await;

    // A backend that speaks the Responses API gets the body as the client sent it: fields the
    // gateway does not translate kept, only `model` rewritten; continuing a conversation puts
    // the stored items in `input` (the mock refuses `previous_response_id`: it stores nothing).
    let auth = [bearer(KEY)];
    let headers = [(auth[0].0, auth[0].1.as_str())];
    let first = r#"{"model":"native","input":"Hello there","service_tier":"flex","truncation":"auto"}"#;
    let first = send("POST", &a.url("/v1/responses"), &headers, first).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let forwarded = openai.last_request().unwrap();
    assert_eq!(forwarded.path, "/v1/responses");
    assert_eq!(forwarded.body["model"], "gpt-mock");
    assert_eq!(
        (&forwarded.body["service_tier"], &forwarded.body["truncation"]),
        (&"flex".into(), &"auto".into())
    );
    let id = first.json()["id"].as_str().unwrap().to_owned();
    let next = format!(r#"{{"model":"native","input":"And again","previous_response_id":"{id}"}}"#);
    let next = send("POST", &b.url("/v1/responses"), &headers, next).await;
    assert_eq!(next.status, 200, "{}", next.text());
    let forwarded = openai.last_request().unwrap();
    assert!(forwarded.body.get("previous_response_id").is_none(), "{}", forwarded.body);
    let input = forwarded.body["input"].as_array().unwrap();
    assert_eq!(input.len(), 3, "the first question, its answer, the new turn: {input:?}");
    assert_eq!(input[0]["content"][0]["text"], "Hello there");
}
