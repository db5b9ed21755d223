//! The official Anthropic Python SDK against `/v1/messages` (tests/py/anthropic_sdk.py): on the
//! built-in mock, an OpenAI-compatible backend, Gemini and Anthropic itself (forwarded as it is),
//! each behind strict mocks of the provider's documented wire format.
//!
//! `scripts/test` provisions the SDK in a venv and sets SWITCHBOARD_PYTHON.

pub mod support;

use support::*;
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions};
use switchboard_mock_upstream::MockUpstream;

const KEY: &str = "sk-anthropic-sdk";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_anthropic_sdk_works_on_every_backend() {
    let local = || "127.0.0.1:0".parse().unwrap();
    let anthropic = AnthropicMock::start(local(), AnthropicOptions::default()).await.unwrap();
    let gemini = GeminiMock::start(local(), GeminiOptions::default()).await.unwrap();
    let openai = MockUpstream::start(local()).await.unwrap();
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
{gemini}{anthropic}routes:
  - model: mock
    backends: [{{ provider: builtin }}]
  - model: openai
    backends: [{{ provider: openai, model: gpt-mock }}]
  - model: openai-tool
    backends: [{{ provider: openai, model: gpt-mock-tool }}]
  - model: gemini
    backends: [{{ provider: gemini, model: gemini-mock }}]
  - model: gemini-tool
    backends: [{{ provider: gemini, model: gemini-mock-tool }}]
  - model: claude
    backends: [{{ provider: anthropic, model: claude-mock }}]
  - model: claude-tool
    backends: [{{ provider: anthropic, model: claude-mock-tool }}]
keys:
  - id: sdk
    hash: {key}
"#,
        openai = openai.base_url(),
        gemini = gemini_provider_yaml(&gemini),
        anthropic = anthropic_provider_yaml(&anthropic),
        key = hash_key(KEY),
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let fixture = repo_root().join("tests/fixtures/claude-code-request.json");
    let mut args = vec!["--base-url".to_owned(), gateway.url(""), "--key".to_owned(), KEY.to_owned()];
    for backend in [
        "mock=mock,mock",
        "openai=openai,openai-tool",
        "gemini=gemini,gemini-tool",
        "anthropic=claude,claude-tool",
    ] {
        args.extend(["--backend".to_owned(), backend.to_owned()]);
    }
    args.extend(["--claude-code".to_owned(), format!("openai={}", fixture.display())]);
    args.extend(["--count-tokens".to_owned(), "claude,openai".to_owned()]);
    run_python_check("anthropic_sdk.py", &args, "anthropic sdk ok", &[&gateway]).await;

    // To an Anthropic backend the body goes as the client sent it (a field only Anthropic acts
    // on kept, only `model` rewritten) with `anthropic-beta`; to any other backend, neither.
    let body = r#"{"model":"claude","max_tokens":16,"service_tier":"auto","messages":[{"role":"user","content":"hi"}]}"#;
    let beta = "prompt-caching-2024-07-31";
    let headers = [("x-api-key", KEY), ("anthropic-version", "2023-06-01"), ("anthropic-beta", beta)];
    let answer = send("POST", &gateway.url("/v1/messages"), &headers, body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let forwarded = anthropic.last_request().unwrap();
    assert_eq!(forwarded.header("anthropic-beta"), Some(beta));
    assert_eq!(
        (&forwarded.body["model"], &forwarded.body["service_tier"]),
        (&"claude-mock".into(), &"auto".into())
    );
    let body = body.replace("\"claude\"", "\"openai\"").replace(r#""service_tier":"auto","#, "");
    let answer = send("POST", &gateway.url("/v1/messages"), &headers, body).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(openai.last_request().unwrap().header("anthropic-beta"), None);
}
