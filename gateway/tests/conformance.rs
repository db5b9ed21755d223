//! One conformance suite for every translated provider dialect: an OpenAI client's requests
//! through the gateway to a strict mock of the provider (`tests/mock-providers`, which refuses
//! what the real API refuses and answers deterministically), and the answers back in OpenAI's
//! format. Each dialect instantiates every case with `conformance!`; a dialect differs only in
//! its mock, its provider config and the model ids that pick the mock's behaviours.

pub mod support;

use serde_json::{Value, json};
use support::*;
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions};

const KEY: &str = "sk-conformance-client";

/// What a dialect brings to the suite.
struct Dialect {
    /// The provider entry of the gateway config for a mock at `base_url` (YAML, indented for
    /// the `providers:` list).
    provider: fn(base_url: &str) -> String,
    /// The upstream model id for each behaviour the cases need.
    model: fn(Behaviour) -> String,
    /// The fewest pieces a streamed tool call's arguments arrive in: Anthropic streams them as
    /// `input_json_delta` fragments; Gemini sends every call whole, in one chunk (its stream has
    /// no partial function calls), so one delta carries all of it.
    argument_pieces: usize,
}

#[derive(Clone, Copy)]
enum Behaviour {
    Text,
    Tool,
    ParallelTools,
    Cache,
    Malformed,
    MidstreamError,
    Disconnect,
    Status(u16),
}

const BEHAVIOURS: [(&str, Behaviour); 12] = [
    ("text", Behaviour::Text),
    ("tool", Behaviour::Tool),
    ("parallel", Behaviour::ParallelTools),
    ("cache", Behaviour::Cache),
    ("malformed", Behaviour::Malformed),
    ("midstream-error", Behaviour::MidstreamError),
    ("disconnect", Behaviour::Disconnect),
    ("error-400", Behaviour::Status(400)),
    ("error-401", Behaviour::Status(401)),
    ("error-429", Behaviour::Status(429)),
    ("error-500", Behaviour::Status(500)),
    ("error-529", Behaviour::Status(529)),
];

/// A gateway with one route per behaviour (the route's name is the behaviour's).
fn gateway(dialect: &Dialect, base_url: &str) -> Gateway {
    let routes: String = BEHAVIOURS
        .iter()
        .map(|(name, behaviour)| {
            format!(
                "  - model: {name}\n    backends: [{{ provider: upstream, model: \"{}\" }}]\n",
                (dialect.model)(*behaviour)
            )
        })
        .collect();
    let config = format!(
        "version: 2\nproviders:\n{}routes:\n{routes}keys:\n  - id: client\n    hash: {}\n",
        (dialect.provider)(base_url),
        hash_key(KEY)
    );
    Gateway::start(Some(&config), &[])
}

async fn chat(gateway: &Gateway, body: Value) -> TestResponse {
    send("POST", &gateway.url("/v1/chat/completions"), &[bearer_header()], body.to_string()).await
}

fn bearer_header() -> (&'static str, &'static str) {
    ("authorization", "Bearer sk-conformance-client")
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Local time in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    ])
}

/// The chunks of a stream (`[DONE]` excluded) and whether it ended with `[DONE]`.
#[expect(clippy::unwrap_used, reason = "test helper: a chunk that is not JSON fails the test")]
fn chunks(response: &TestResponse) -> (Vec<Value>, bool) {
    let data = sse_data(&response.text());
    let done = data.last().is_some_and(|d| d == "[DONE]");
    let chunks = data.iter().filter(|d| *d != "[DONE]").map(|d| serde_json::from_str(d).unwrap()).collect();
    (chunks, done)
}

fn streamed_text(chunks: &[Value]) -> String {
    chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect()
}

/// Tool calls assembled from stream deltas the way the OpenAI SDK does: by `index`, name and id
/// from the first delta, arguments concatenated. Also returns how many argument pieces came.
fn streamed_tool_calls(chunks: &[Value]) -> (Vec<(String, String, String)>, usize) {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut pieces = 0;
    for chunk in chunks {
        for delta in chunk["choices"][0]["delta"]["tool_calls"].as_array().into_iter().flatten() {
            let index = delta["index"].as_u64().unwrap_or(u64::MAX) as usize;
            if index == calls.len() {
                calls.push(Default::default());
            }
            let Some(call) = calls.get_mut(index) else { continue };
            if let Some(id) = delta["id"].as_str() {
                call.0 = id.to_owned();
            }
            if let Some(name) = delta["function"]["name"].as_str() {
                call.1 = name.to_owned();
            }
            if let Some(arguments) = delta["function"]["arguments"].as_str() {
                call.2.push_str(arguments);
                pieces += usize::from(!arguments.is_empty());
            }
        }
    }
    (calls, pieces)
}

fn finish_reason(chunks: &[Value]) -> Option<String> {
    chunks.iter().find_map(|c| c["choices"][0]["finish_reason"].as_str().map(str::to_owned))
}

fn user(text: &str) -> Value {
    json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}])
}

async fn plain_chat(gateway: &Gateway) {
    let response = chat(gateway, json!({"model": "text", "messages": user("hello there")})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    assert_eq!(body["object"], "chat.completion");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("hello there"), "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    assert!(usage["prompt_tokens"].as_u64() > Some(0), "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap_or(0) + usage["completion_tokens"].as_u64().unwrap_or(0))
    );
}

async fn streaming(gateway: &Gateway) {
    let request = json!({"model": "text", "messages": user("stream this please"), "stream": true,
        "stream_options": {"include_usage": true}});
    let response = chat(gateway, request.clone()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let (chunks, done) = chunks(&response);
    assert!(done, "{}", response.text());
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(finish_reason(&chunks).as_deref(), Some("stop"));
    // The same answer and usage as the complete response.
    let mut whole = request;
    whole["stream"] = json!(false);
    whole.as_object_mut().map(|o| o.remove("stream_options"));
    let body = chat(gateway, whole).await.json();
    assert_eq!(streamed_text(&chunks), body["choices"][0]["message"]["content"].as_str().unwrap_or_default());
    let last = chunks.last().cloned().unwrap_or_default();
    assert_eq!(last["choices"], json!([]), "the usage chunk comes last: {last}");
    assert_eq!(last["usage"]["prompt_tokens"], body["usage"]["prompt_tokens"]);
    assert_eq!(last["usage"]["completion_tokens"], body["usage"]["completion_tokens"]);
    // Without include_usage: no usage chunk, no usage fields.
    let plain = chat(gateway, json!({"model": "text", "messages": user("again"), "stream": true})).await;
    let (chunks, done) = self::chunks(&plain);
    assert!(done && chunks.iter().all(|c| c.get("usage").is_none()), "{}", plain.text());
    let tokens =
        gateway.metric_sum("switchboard_tokens_total", &[("route", "text"), ("type", "output")]).await;
    assert!(tokens > 0.0, "streams are counted");
}

async fn tool_call(gateway: &Gateway, argument_pieces: usize) {
    let request = json!({"model": "tool", "messages": user("weather in Paris?"), "tools": weather_tools()});
    let body = chat(gateway, request.clone()).await.json();
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function", "{body}");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("")).unwrap_or_default();
    assert!(arguments["city"].is_string(), "{arguments}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");

    // Streamed: the arguments arrive in pieces (as the provider sends them) and assemble to the
    // same call.
    let mut streamed = request;
    streamed["stream"] = json!(true);
    let response = chat(gateway, streamed).await;
    let (chunks, done) = chunks(&response);
    assert!(done, "{}", response.text());
    let (calls, pieces) = streamed_tool_calls(&chunks);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].1, "get_weather");
    assert!(!calls[0].0.is_empty(), "a tool call id");
    let assembled: Value = serde_json::from_str(&calls[0].2).unwrap_or_default();
    assert_eq!(assembled, arguments, "streamed arguments assemble to the complete call's");
    assert!(pieces >= argument_pieces, "arguments split across deltas as the provider sent them ({pieces})");
    assert_eq!(finish_reason(&chunks).as_deref(), Some("tool_calls"));
}

async fn parallel_tool_calls(gateway: &Gateway) {
    let request =
        json!({"model": "parallel", "messages": user("weather and time in Oslo?"), "tools": weather_tools()});
    let body = chat(gateway, request.clone()).await.json();
    let calls = body["choices"][0]["message"]["tool_calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 2, "{body}");
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    let mut streamed = request;
    streamed["stream"] = json!(true);
    let (chunks, _) = chunks(&chat(gateway, streamed).await);
    let (calls, _) = streamed_tool_calls(&chunks);
    assert_eq!(calls.len(), 2, "{calls:?}");
    for (_, name, arguments) in &calls {
        assert!(["get_weather", "get_time"].contains(&name.as_str()));
        assert!(serde_json::from_str::<Value>(arguments).is_ok_and(|v| v.is_object()), "{arguments}");
    }
}

async fn tool_result_round_trip(gateway: &Gateway) {
    let messages = json!([
        {"role": "user", "content": "weather in Paris and Oslo?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 C sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "4 C snow"},
        {"role": "user", "content": "thanks"}
    ]);
    let response =
        chat(gateway, json!({"model": "text", "messages": messages, "tools": weather_tools()})).await;
    assert_eq!(response.status, 200, "the provider accepted the translated history: {}", response.text());
    let content = response.json()["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned();
    assert!(content.contains("18 C sunny") && content.contains("4 C snow"), "{content}");
}

async fn image_input(gateway: &Gateway) {
    let png =
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}
    ]}]);
    let response = chat(gateway, json!({"model": "text", "messages": messages})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let content = response.json()["choices"][0]["message"]["content"].as_str().unwrap_or_default().to_owned();
    // Bedrock names an image by its format (`png`), the others by its media type.
    assert!(
        content.contains("image/png") || content.contains("image png"),
        "the provider saw the image: {content}"
    );
}

async fn json_mode(gateway: &Gateway) {
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]});
    let request = json!({"model": "text", "messages": user("a city?"),
        "response_format": {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}});
    let body = chat(gateway, request).await.json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap_or_default();
    let answer: Value = serde_json::from_str(content).unwrap_or_default();
    assert!(answer["city"].is_string() && answer["country"].is_string(), "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none(), "{body}");
}

async fn cached_usage(gateway: &Gateway, cache_read: u64) {
    let body = chat(gateway, json!({"model": "cache", "messages": user("long prompt")})).await.json();
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"].as_u64(), Some(cache_read), "{usage}");
    assert!(
        usage["prompt_tokens"].as_u64() >= Some(cache_read),
        "cached tokens are part of the prompt: {usage}"
    );
    let response = chat(
        gateway,
        json!({"model": "cache", "messages": user("long prompt"), "stream": true, "stream_options": {"include_usage": true}}),
    )
    .await;
    let (chunks, _) = chunks(&response);
    let streamed = &chunks.last().cloned().unwrap_or_default()["usage"];
    assert_eq!(streamed["prompt_tokens"], usage["prompt_tokens"], "{streamed}");
    assert_eq!(
        streamed["prompt_tokens_details"]["cached_tokens"],
        usage["prompt_tokens_details"]["cached_tokens"]
    );
}

/// `retry_after`: what the provider's 429 says (Bedrock sends no `Retry-After`).
async fn upstream_errors(gateway: &Gateway, retry_after: Option<&str>) {
    // The client's fault stays a 400 with the provider's explanation; the provider's problems
    // become OpenAI's statuses for them; a rate limit keeps its Retry-After.
    for (model, status, kind) in [
        ("error-400", 400, "invalid_request_error"),
        ("error-401", 502, "server_error"),
        ("error-429", 429, "rate_limit_error"),
        ("error-500", 502, "server_error"),
        ("error-529", 503, "server_error"),
    ] {
        let response = chat(gateway, json!({"model": model, "messages": user("hi")})).await;
        assert_eq!(response.status, status, "{model}: {}", response.text());
        assert_eq!(response.error(status)["type"], kind, "{model}");
        if model == "error-429" {
            assert_eq!(response.headers.get("retry-after").and_then(|v| v.to_str().ok()), retry_after);
        }
    }
}

async fn malformed_body(gateway: &Gateway) {
    let response = chat(gateway, json!({"model": "malformed", "messages": user("hi")})).await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(response.error(502)["message"].as_str().unwrap_or_default().contains("invalid response"));
    let response = chat(gateway, json!({"model": "malformed", "messages": user("hi"), "stream": true})).await;
    let (chunks, done) = chunks(&response);
    assert!(!done, "a broken stream does not end with [DONE]");
    assert!(chunks.last().is_some_and(|c| c.get("error").is_some()), "{}", response.text());
}

async fn midstream_failures(gateway: &Gateway) {
    for model in ["midstream-error", "disconnect"] {
        let response =
            chat(gateway, json!({"model": model, "messages": user("a long answer please"), "stream": true}))
                .await;
        assert_eq!(response.status, 200, "{model}");
        let (chunks, done) = chunks(&response);
        assert!(!done, "{model}: a failed stream does not end with [DONE]: {}", response.text());
        let last = chunks.last().cloned().unwrap_or_default();
        assert!(
            last["error"]["message"].is_string(),
            "{model}: ends with an error event: {}",
            response.text()
        );
        assert!(chunks.len() >= 2, "{model}: what came before the failure was relayed");
    }
}

/// Every case for one dialect: `conformance!(module, dialect, async setup -> (mock, base_url))`.
macro_rules! conformance {
    ($name:ident, $dialect:expr, $start:expr, cache_read = $cache_read:expr) => {
        conformance!($name, $dialect, $start, cache_read = $cache_read, retry_after = Some("7"));
    };
    ($name:ident, $dialect:expr, $start:expr, cache_read = $cache_read:expr, retry_after = $retry_after:expr) => {
        mod $name {
            use super::*;

            async fn gateway() -> (impl Sized, Gateway) {
                let (mock, base_url) = $start.await;
                (mock, super::gateway(&$dialect, &base_url))
            }

            #[tokio::test]
            async fn plain_chat() {
                let (_mock, gateway) = gateway().await;
                super::plain_chat(&gateway).await;
            }

            #[tokio::test]
            async fn streaming() {
                let (_mock, gateway) = gateway().await;
                super::streaming(&gateway).await;
            }

            #[tokio::test]
            async fn tool_call_plain_and_streamed_in_pieces() {
                let (_mock, gateway) = gateway().await;
                super::tool_call(&gateway, $dialect.argument_pieces).await;
            }

            #[tokio::test]
            async fn parallel_tool_calls() {
                let (_mock, gateway) = gateway().await;
                super::parallel_tool_calls(&gateway).await;
            }

            #[tokio::test]
            async fn tool_result_round_trip() {
                let (_mock, gateway) = gateway().await;
                super::tool_result_round_trip(&gateway).await;
            }

            #[tokio::test]
            async fn image_input() {
                let (_mock, gateway) = gateway().await;
                super::image_input(&gateway).await;
            }

            #[tokio::test]
            async fn json_mode() {
                let (_mock, gateway) = gateway().await;
                super::json_mode(&gateway).await;
            }

            #[tokio::test]
            async fn usage_with_cached_tokens() {
                let (_mock, gateway) = gateway().await;
                super::cached_usage(&gateway, $cache_read).await;
            }

            #[tokio::test]
            async fn upstream_errors() {
                let (_mock, gateway) = gateway().await;
                super::upstream_errors(&gateway, $retry_after).await;
            }

            #[tokio::test]
            async fn malformed_upstream_body() {
                let (_mock, gateway) = gateway().await;
                super::malformed_body(&gateway).await;
            }

            #[tokio::test]
            async fn midstream_error_and_disconnect() {
                let (_mock, gateway) = gateway().await;
                super::midstream_failures(&gateway).await;
            }
        }
    };
}

const ANTHROPIC: Dialect = Dialect {
    provider: |base_url| {
        format!(
            "  - name: upstream\n    type: anthropic\n    base_url: {base_url}/v1\n    api_key: {{ value: {} }}\n    allow_private_network: true\n    timeout_ms: 5000\n",
            AnthropicOptions::default().api_key
        )
    },
    model: |behaviour| match behaviour {
        Behaviour::Text => "claude-mock".into(),
        Behaviour::Tool => "claude-mock-tool".into(),
        Behaviour::ParallelTools => "claude-mock-parallel-tools".into(),
        Behaviour::Cache => "claude-mock-cache".into(),
        Behaviour::Malformed => "claude-mock-malformed".into(),
        Behaviour::MidstreamError => "claude-mock-midstream-error".into(),
        Behaviour::Disconnect => "claude-mock-disconnect".into(),
        Behaviour::Status(status) => format!("error-{status}"),
    },
    argument_pieces: 3,
};

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_anthropic() -> (AnthropicMock, String) {
    let mock = AnthropicMock::start(([127, 0, 0, 1], 0).into(), AnthropicOptions::default()).await.unwrap();
    let base_url = mock.base_url();
    (mock, base_url)
}

conformance!(
    anthropic,
    ANTHROPIC,
    start_anthropic(),
    cache_read = switchboard_mock_providers::anthropic::CACHE_READ_TOKENS
);

const GEMINI: Dialect = Dialect {
    provider: |base_url| gemini_provider(base_url, &GeminiOptions::default().api_key),
    model: |behaviour| match behaviour {
        Behaviour::Text => "gemini-mock".into(),
        Behaviour::Tool => "gemini-mock-tool".into(),
        Behaviour::ParallelTools => "gemini-mock-parallel-tools".into(),
        Behaviour::Cache => "gemini-mock-cache".into(),
        Behaviour::Malformed => "gemini-mock-malformed".into(),
        Behaviour::MidstreamError => "gemini-mock-midstream-error".into(),
        Behaviour::Disconnect => "gemini-mock-disconnect".into(),
        // Google never sends 529: its "overloaded, retry later" is 503 `UNAVAILABLE` ("The model
        // is overloaded"), which the case's expectation (503 to the client) then covers.
        Behaviour::Status(529) => "error-503".into(),
        Behaviour::Status(status) => format!("error-{status}"),
    },
    argument_pieces: 1,
};

fn gemini_provider(base_url: &str, key: &str) -> String {
    format!(
        "  - name: upstream\n    type: gemini\n    base_url: {base_url}/v1beta\n    api_key: {{ value: {key} }}\n    allow_private_network: true\n    timeout_ms: 5000\n"
    )
}

#[expect(clippy::unwrap_used, reason = "test setup")]
async fn start_gemini() -> (GeminiMock, String) {
    let mock = GeminiMock::start(([127, 0, 0, 1], 0).into(), GeminiOptions::default()).await.unwrap();
    let base_url = mock.base_url();
    (mock, base_url)
}

// The mock caches half the prompt, rounded up: "Be brief." and "long prompt" are 4 words.
conformance!(gemini, GEMINI, start_gemini(), cache_read = 2);

/// Gemini-only: the key travels in `x-goog-api-key`, never in the URL, and a key Google refuses
/// (a 400 `API_KEY_INVALID`, not a 401) is the gateway's problem, not the client's.
#[tokio::test]
async fn gemini_key_in_a_header_and_refused_keys() {
    let (mock, base_url) = start_gemini().await;
    let gateway = gateway(&GEMINI, &base_url);
    let streamed = chat(&gateway, json!({"model": "text", "messages": user("hi"), "stream": true})).await;
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.path, "/v1beta/models/gemini-mock:streamGenerateContent");
    assert_eq!(request.query.as_deref(), Some("alt=sse"), "no key in the query");
    assert_eq!(request.header("x-goog-api-key"), Some(GeminiOptions::default().api_key.as_str()));

    let wrong = Dialect { provider: |base_url| gemini_provider(base_url, "wrong-key"), ..GEMINI };
    let gateway = self::gateway(&wrong, &base_url);
    let response = chat(&gateway, json!({"model": "text", "messages": user("hi")})).await;
    assert_eq!(response.status, 502, "{}", response.text());
    assert!(!response.text().contains("API key not valid"), "{}", response.text());
}

/// Gemini-only: `/v1/embeddings` through `batchEmbedContents`, `dimensions` as
/// `outputDimensionality`, floats or base64 as the client asked.
#[tokio::test]
async fn gemini_embeddings() {
    let (mock, base_url) = start_gemini().await;
    let gateway = gateway(&GEMINI, &base_url);
    let embed = async |body: Value| {
        send("POST", &gateway.url("/v1/embeddings"), &[bearer_header()], body.to_string()).await
    };
    let response = embed(json!({"model": "text", "input": ["one", "two words"], "dimensions": 8})).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let body = response.json();
    let data = body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 2, "{body}");
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["embedding"].as_array().map(Vec::len), Some(8), "{body}");
    let request = mock.last_request().unwrap_or_else(|| unreachable!("the mock saw the request"));
    assert_eq!(request.path, "/v1beta/models/gemini-mock:batchEmbedContents");

    let response = embed(json!({"model": "text", "input": "one", "encoding_format": "base64"})).await;
    let encoded = response.json()["data"][0]["embedding"].as_str().unwrap_or_default().to_owned();
    // The mock's default 768 dimensions, 4 bytes each, in padded base64.
    assert_eq!(encoded.len(), (768 * 4_usize).div_ceil(3) * 4, "{encoded}");
}

// The cloud-hosted dialects (Vertex AI, Claude on Microsoft Foundry), with their token endpoint.
#[path = "conformance/cloud.rs"]
mod cloud;
// Bedrock (its mock is Python: SigV4 checked by botocore).
#[path = "conformance/bedrock.rs"]
mod bedrock;
// The OpenAI passthrough, against tests/mock-upstream.
#[path = "conformance/openai.rs"]
mod openai;
// Azure OpenAI: the passthrough at Azure's deployment URLs.
#[path = "conformance/azure.rs"]
mod azure;
