//! The conformance suite for the cloud-hosted dialects: Vertex AI (Gemini's bodies, a service
//! account's access token) and Claude on Microsoft Foundry (Anthropic's bodies, an Entra ID
//! token), each mock paired with the token mock (`tests/mock-providers/src/oauth.rs`). A setup's
//! "base URL" carries both mocks' (`provider|token`).

use super::*;
use switchboard_mock_providers::{TokenMock, TokenOptions};

/// Vertex AI: Gemini's bodies at Vertex's URLs, with an access token the gateway gets from a
/// service account key (the test-only key in `tests/mock-providers/fixtures`) through the token
/// mock. The setup's "base URL" is both mocks' (`gemini|token`).
const VERTEX: Dialect = Dialect {
    provider: |urls| {
        let (gemini, token) = urls.split_once('|').unwrap_or((urls, urls));
        format!(
            "  - name: upstream\n    type: vertex\n    project: mock-project\n    location: us-central1\n    base_url: {gemini}/v1\n    token_url: {token}/token\n    service_account: {{ file: {} }}\n    allow_private_network: true\n    timeout_ms: 5000\n",
            repo_root().join("tests/mock-providers/fixtures/test-only-service-account.json").display()
        )
    },
    ..GEMINI
};

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_vertex() -> ((GeminiMock, TokenMock), String) {
    let gemini = GeminiMock::start(([127, 0, 0, 1], 0).into(), GeminiOptions::default()).await.unwrap();
    let token = TokenMock::start(([127, 0, 0, 1], 0).into(), TokenOptions::default()).await.unwrap();
    let urls = format!("{}|{}", gemini.vertex_base_url(), token.base_url());
    ((gemini, token), urls)
}

conformance!(vertex, VERTEX, start_vertex(), cache_read = 2);

/// Claude on Microsoft Foundry: the Anthropic type at `/anthropic/v1/messages` with an Entra ID
/// token (the mock's `azure_auth` takes the key as a bearer token, so the token mock issues it).
const FOUNDRY: Dialect = Dialect {
    provider: |urls| {
        let (anthropic, token) = urls.split_once('|').unwrap_or((urls, urls));
        let o = TokenOptions::default();
        format!(
            "  - name: upstream\n    type: anthropic\n    base_url: {anthropic}/v1\n    entra:\n      tenant_id: {}\n      client_id: {}\n      client_secret: {{ value: {} }}\n      token_url: {token}/{}/oauth2/v2.0/token\n    allow_private_network: true\n    timeout_ms: 5000\n",
            o.tenant_id, o.client_id, o.client_secret, o.tenant_id
        )
    },
    ..ANTHROPIC
};

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_foundry() -> ((AnthropicMock, TokenMock), String) {
    let options = AnthropicOptions {
        azure_auth: true,
        path_prefix: "/anthropic".into(),
        ..AnthropicOptions::default()
    };
    let anthropic = AnthropicMock::start(([127, 0, 0, 1], 0).into(), options).await.unwrap();
    let tokens =
        TokenOptions { entra_access_token: AnthropicOptions::default().api_key, ..TokenOptions::default() };
    let token = TokenMock::start(([127, 0, 0, 1], 0).into(), tokens).await.unwrap();
    let urls = format!("{}|{}", anthropic.base_url(), token.base_url());
    ((anthropic, token), urls)
}

conformance!(
    foundry,
    FOUNDRY,
    start_foundry(),
    cache_read = switchboard_mock_providers::anthropic::CACHE_READ_TOKENS
);
