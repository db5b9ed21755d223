//! The conformance suite for Azure OpenAI (`type: azure_openai`): the OpenAI passthrough at an
//! Azure deployment URL (`/openai/deployments/{deployment}/chat/completions?api-version=`, the
//! `api-key` header), against `tests/mock-upstream` in its Azure mode, which requires exactly
//! those and answers with the same behaviours as the OpenAI mock (the deployment name picks
//! them). Azure's own specifics (the v1 surface, Entra ID, content filters, unknown API
//! versions) are in `gateway/tests/azure.rs`.

use super::*;
use switchboard_mock_upstream::{AzureOptions, MockUpstream, Options};

const AZURE: Dialect = Dialect {
    provider: |endpoint| {
        format!(
            "  - name: upstream\n    type: azure_openai\n    base_url: {endpoint}\n    api_version: 2024-10-21\n    api_key: {{ value: {} }}\n    allow_private_network: true\n    timeout_ms: 5000\n",
            AzureOptions::default().api_key
        )
    },
    ..openai::OPENAI
};

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_azure() -> (MockUpstream, String) {
    let options = Options { azure: Some(AzureOptions::default()), ..Options::default() };
    let mock = MockUpstream::start_with(([127, 0, 0, 1], 0).into(), options).await.unwrap();
    // Azure's endpoint is the resource's origin, without the OpenAI mock's `/v1`.
    let endpoint = format!("http://{}", mock.addr());
    (mock, endpoint)
}

conformance!(azure, AZURE, start_azure(), cache_read = 2);
