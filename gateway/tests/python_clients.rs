//! Python clients against the gateway: the official OpenAI SDK (tests/py/openai_sdk.py, and
//! tests/py/translated_tool_calls.py through translated providers) and OpenAI's own response
//! schemas (tests/py/openapi_conformance.py).
//!
//! `scripts/test` provisions both in a venv and sets SWITCHBOARD_PYTHON; run that, or point
//! SWITCHBOARD_PYTHON at a Python with tests/py/requirements.txt installed.

pub mod support;

use support::*;
use switchboard_mock_upstream::MockUpstream;

const KEY: &str = "sk-sdk-full";
const LIMITED: &str = "sk-sdk-limited";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_works_against_the_gateway() {
    run_python("openai_sdk.py", &[], "all checks passed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_conform_to_openais_schemas() {
    run_python("openapi_conformance.py", &["--max-body-bytes", "4000"], "responses valid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_streams_a_tool_call_through_every_translated_provider() {
    use switchboard_mock_providers::{
        AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions, TokenMock, TokenOptions,
    };
    use switchboard_mock_upstream::{AzureOptions, Options};
    let local = || "127.0.0.1:0".parse().unwrap();
    let anthropic = AnthropicMock::start(local(), AnthropicOptions::default()).await.unwrap();
    let foundry_options = AnthropicOptions {
        azure_auth: true,
        path_prefix: "/anthropic".into(),
        ..AnthropicOptions::default()
    };
    let foundry = AnthropicMock::start(local(), foundry_options).await.unwrap();
    let gemini = GeminiMock::start(local(), GeminiOptions::default()).await.unwrap();
    // One token endpoint for both grants: Google's for Vertex, Entra's (issuing the key the
    // Foundry mock takes as a bearer token) for Foundry.
    let tokens =
        TokenOptions { entra_access_token: AnthropicOptions::default().api_key, ..TokenOptions::default() };
    let token = TokenMock::start(local(), tokens.clone()).await.unwrap();
    let azure_options = Options { azure: Some(AzureOptions::default()), ..Options::default() };
    let azure = MockUpstream::start_with(local(), azure_options).await.unwrap();
    let openai = MockUpstream::start(local()).await.unwrap();
    let service_account = repo_root().join("tests/mock-providers/fixtures/test-only-service-account.json");
    let config = format!(
        r#"
version: 2
providers:
  - name: anthropic
    type: anthropic
    base_url: {anthropic}/v1
    api_key: {{ value: {anthropic_key} }}
    allow_private_network: true
  - name: gemini
    type: gemini
    base_url: {gemini}/v1beta
    api_key: {{ value: {gemini_key} }}
    allow_private_network: true
  - name: vertex
    type: vertex
    project: mock-project
    location: us-central1
    base_url: {vertex}/v1
    token_url: {token}/token
    service_account: {{ file: {service_account} }}
    allow_private_network: true
  - name: foundry
    type: anthropic
    base_url: {foundry}/v1
    entra:
      tenant_id: {tenant}
      client_id: {client}
      client_secret: {{ value: {client_secret} }}
      token_url: {token}/{tenant}/oauth2/v2.0/token
    allow_private_network: true
  - name: azure
    type: azure_openai
    base_url: http://{azure}
    api_version: 2024-10-21
    api_key: {{ value: azure-mock-key }}
    allow_private_network: true
  - name: openai
    type: openai
    base_url: {openai}
    allow_private_network: true
routes:
  - model: claude
    backends: [{{ provider: anthropic, model: claude-mock-tool }}]
  - model: gemini
    backends: [{{ provider: gemini, model: gemini-mock-tool }}]
  - model: vertex
    backends: [{{ provider: vertex, model: gemini-mock-tool }}]
  - model: foundry
    backends: [{{ provider: foundry, model: claude-mock-tool }}]
  - model: azure
    backends: [{{ provider: azure, model: gpt-tool }}]
  - model: openai
    backends: [{{ provider: openai, model: gpt-mock-tool }}]
keys:
  - id: full
    hash: {full}
"#,
        anthropic = anthropic.base_url(),
        anthropic_key = AnthropicOptions::default().api_key,
        gemini = gemini.base_url(),
        gemini_key = GeminiOptions::default().api_key,
        vertex = gemini.vertex_base_url(),
        token = token.base_url(),
        service_account = service_account.display(),
        foundry = foundry.base_url(),
        tenant = tokens.tenant_id,
        client = tokens.client_id,
        client_secret = tokens.client_secret,
        azure = azure.addr(),
        openai = openai.base_url(),
        full = hash_key(KEY),
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let args = [
        "--base-url",
        &gateway.url("/v1"),
        "--key",
        KEY,
        "--models",
        "claude:3,gemini:1,vertex:1,foundry:3,azure:3,openai:3",
    ]
    .map(str::to_owned);
    run_python_check("translated_tool_calls.py", &args, "translated tool calls ok", &[&gateway]).await;
}

/// Runs a Python test script against a gateway with the built-in mock and a mock upstream.
#[expect(clippy::unwrap_used, reason = "test helper: failures abort the test")]
async fn run_python(script: &str, gateway_args: &[&str], success_marker: &str) {
    let mock = MockUpstream::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = format!(
        r#"
version: 1
providers:
  - name: builtin
    type: mock
  - name: upstream
    type: openai
    base_url: {base_url}
routes:
  - model: mock
    backends: [{{ provider: builtin }}]
  - model: upstream
    backends: [{{ provider: upstream, model: upstream-model }}]
  - model: other
    backends: [{{ provider: builtin }}]
  - model: org/other
    backends: [{{ provider: builtin }}]
  - model: broken
    backends: [{{ provider: upstream, model: error-500 }}]
keys:
  - name: full
    hash: {full}
  - name: limited
    hash: {limited}
    models: [mock]
"#,
        base_url = mock.base_url(),
        full = hash_key(KEY),
        limited = hash_key(LIMITED),
    );
    let gateway = Gateway::start(Some(&config), gateway_args);
    let args = ["--base-url", &gateway.url("/v1"), "--key", KEY, "--limited-key", LIMITED].map(str::to_owned);
    run_python_check(script, &args, success_marker, &[&gateway]).await;
}
