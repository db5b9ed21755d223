//! The conformance suite for the OpenAI passthrough (`type: openai`) against the
//! OpenAI-compatible mock (`tests/mock-upstream`), which answers as OpenAI's chat completions
//! reference documents (`tool_calls` deltas by `index`, `usage.prompt_tokens_details.cached_tokens`,
//! `"usage": null` on chunks and a last `choices: []` chunk with `include_usage`) and refuses
//! what OpenAI refuses where a case relies on it (a `tool` message answering no preceding tool
//! call, an `image_url` that is neither `http(s)` nor a base64 image data URL).
//!
//! Every case applies unchanged. The passthrough forwards the client's body with only `model`
//! rewritten, so tool calls, tool results, images and `response_format` reach the mock as the
//! client wrote them; the mock's echo shows what it received.

use super::*;
use switchboard_mock_upstream::{MockUpstream, Options};

const UPSTREAM_KEY: &str = "sk-conformance-upstream";

pub(crate) const OPENAI: Dialect = Dialect {
    provider: |base_url| {
        format!(
            "  - name: upstream\n    type: openai\n    base_url: {base_url}\n    api_key: {{ value: {UPSTREAM_KEY} }}\n    allow_private_network: true\n    timeout_ms: 5000\n"
        )
    },
    model: |behaviour| match behaviour {
        Behaviour::Text => "gpt-mock".into(),
        Behaviour::Tool => "gpt-mock-tool".into(),
        Behaviour::ParallelTools => "gpt-mock-parallel-tools".into(),
        Behaviour::Cache => "gpt-mock-cache".into(),
        Behaviour::Malformed => "gpt-mock-malformed".into(),
        Behaviour::MidstreamError => "gpt-mock-midstream-error".into(),
        Behaviour::Disconnect => "gpt-mock-disconnect".into(),
        // OpenAI documents no 529, but OpenAI-compatible servers and the proxies in front of
        // them do send it (Anthropic's "overloaded"); the gateway treats it as overloaded (503)
        // whichever provider sends it, so the case applies as written.
        Behaviour::Status(status) => format!("error-{status}"),
    },
    // OpenAI streams a call's arguments in many `tool_calls` deltas; the mock cuts
    // `{"city":"mock city"}` into 4.
    argument_pieces: 3,
};

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_openai() -> (MockUpstream, String) {
    let options = Options { api_key: Some(UPSTREAM_KEY.to_owned()), ..Options::default() };
    let mock = MockUpstream::start_with(([127, 0, 0, 1], 0).into(), options).await.unwrap();
    let base_url = mock.base_url();
    (mock, base_url)
}

// The mock reports half the prompt, rounded up, as cached: "Be brief." and "long prompt" are 4
// words.
conformance!(openai, OPENAI, start_openai(), cache_read = 2);

/// OpenAI-only: the mock refuses a conversation OpenAI refuses, and the gateway hands the
/// provider's 400 and explanation to the client unchanged.
#[tokio::test]
async fn openai_refusals_reach_the_client() {
    let (_mock, base_url) = start_openai().await;
    let gateway = gateway(&OPENAI, &base_url);
    let orphan = json!([{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]);
    let response = chat(&gateway, json!({"model": "text", "messages": orphan})).await;
    assert_eq!(response.status, 400, "{}", response.text());
    let error = response.error(400);
    assert!(
        error["message"].as_str().unwrap_or_default().contains("must be a response to a preceeding message"),
        "{error}"
    );
    let image = json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]}]);
    let response = chat(&gateway, json!({"model": "text", "messages": image})).await;
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.error(400)["param"], "messages.[0].content.[0].image_url.url");
}
