//! Request and response properties: an OpenAI body into the hub and on to each provider's
//! request; each provider's answer and error body back. No panic, and output linear in input.

use crate::generate::{json_value, mutate, mutations, text};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use switchboard_llm::openai::{ModelRequest, embedding_inputs, messages_text, render_response};
use switchboard_llm::{Usage, anthropic, bedrock, gemini};

/// A documented chat request using every translated parameter, for the mutator to break.
/// `shape` leaves parts out, so the unmutated request is one each provider accepts often:
/// bit 0 tools (else a JSON schema response format; both together Anthropic refuses), bit 1 an
/// image URL (Gemini takes inline images only), bit 2 tool calls and their results.
fn openai_request(text: String, schema: Value, tokens: u64, shape: u8) -> Value {
    let mut user = vec![
        json!({"type": "text", "text": text}),
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}),
    ];
    if shape & 2 != 0 {
        user.push(json!({"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}));
    }
    let mut messages = vec![
        json!({"role": "system", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}),
        json!({"role": "developer", "content": "be brief"}),
        json!({"role": "user", "content": user}),
    ];
    if shape & 4 != 0 {
        messages.extend([
            json!({"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": text, "arguments": ""}}
            ]}),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"}),
            json!({"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": text}]}),
        ]);
    }
    messages.push(json!({"role": "user", "content": text}));
    let mut request = json!({
        "model": "public",
        "messages": messages,
        "parallel_tool_calls": false,
        "max_completion_tokens": tokens,
        "max_tokens": tokens,
        "temperature": 0.5,
        "top_p": 1,
        "stop": ["\n\n", text],
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": text,
        "seed": 1,
        "n": 1
    });
    if shape & 1 != 0 {
        request["tools"] = json!([
            {"type": "function", "function": {"name": "get_weather", "description": text, "parameters": schema, "strict": true}},
            {"type": "function", "function": {"name": "f"}, "cache_control": {"type": "ephemeral"}}
        ]);
        request["tool_choice"] = json!({"type": "function", "function": {"name": "get_weather"}});
    } else {
        request["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}});
    }
    request
}

/// A JSON Schema using what the Gemini conversion handles (types, lists of types, anyOf/oneOf,
/// allOf, enums, `$ref`s into `$defs`).
fn schema(text: String) -> Value {
    json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": text, "format": "date-time", "minLength": 1},
            "unit": {"enum": ["c", "f", null]},
            "days": {"type": ["integer", "null"], "minimum": 0, "maximum": 1e9},
            "when": {"anyOf": [{"$ref": "#/$defs/time"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string", "const": text}},
            "both": {"allOf": [{"$ref": "#/definitions/place"}], "description": "d"},
            "pick": {"oneOf": [{"type": "number"}, {"type": "boolean"}], "default": 3}
        },
        "required": ["city", "nope", 3],
        "additionalProperties": false,
        "$defs": {"time": {"type": "string", "format": "time"}},
        "definitions": {"place": {"type": "object", "properties": {"x": {"$ref": "#/$defs/time"}}}}
    })
}

pub fn openai_body() -> BoxedStrategy<Vec<u8>> {
    let structured =
        (text(), text(), any::<u64>(), any::<u8>(), mutations(4)).prop_map(|(t, s, tokens, shape, muts)| {
            mutate(openai_request(t, schema(s), tokens % 100_000, shape), &muts).to_string().into_bytes()
        });
    let random_object = proptest::collection::vec((proptest::sample::select(TOP_KEYS), json_value()), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
        .prop_map(|mut v| {
            v["model"] = json!("m");
            v.to_string().into_bytes()
        });
    prop_oneof![
        6 => structured,
        2 => random_object,
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

const TOP_KEYS: &[&str] = &[
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "temperature",
    "stop",
    "response_format",
    "stream",
    "stream_options",
    "user",
    "n",
    "logprobs",
    "input",
    "functions",
];

/// Output of a request conversion, against its input. A conversion copies strings (escaped no
/// more than the input escaped them) and adds fixed framing per message, part and schema node
/// (the smallest of each in the input is ~10 bytes, the framing added ~40), hence 8 × n. A
/// `$ref` is inlined where it is used: that expansion is capped separately (`gemini/schema.rs`).
fn check_size(what: &str, input: &[u8], output: &[u8]) -> Result<(), TestCaseError> {
    let n = input.len();
    let refs = input.windows(6).any(|w| w == b"\"$ref\"");
    let bound = if refs { 16 * n + 512 * 1024 } else { 8 * n + 4096 };
    prop_assert!(output.len() <= bound, "{what}: {n} bytes in, {} out", output.len());
    prop_assert!(serde_json::from_slice::<Value>(output).is_ok(), "{what}: not JSON");
    Ok(())
}

/// Every function that reads a client body: parse, upstream body, texts, the hub, and each
/// provider's request from the hub.
pub fn check_request(body: Vec<u8>) -> Result<(), TestCaseError> {
    let Ok(request) = ModelRequest::parse(&body) else { return Ok(()) };
    for ask_usage in [false, true] {
        if let Ok(out) = request.to_upstream_body("upstream-model", ask_usage) {
            check_size("to_upstream_body", &body, &out)?;
        }
    }
    let _ = messages_text(&request.body);
    if let Ok(inputs) = embedding_inputs(&request.body) {
        let total: usize = inputs.iter().map(String::len).sum();
        prop_assert!(total <= body.len());
    }
    let Ok(hub) = request.to_hub("upstream-model") else { return Ok(()) };
    let options = anthropic::Options { default_max_tokens: 1024 };
    if let Ok(out) = anthropic::build_request(&hub, options) {
        check_size("anthropic::build_request", &body, &out)?;
    }
    for default_max_tokens in [None, Some(8)] {
        if let Ok(out) = gemini::build_request(&hub, gemini::Options { default_max_tokens }) {
            check_size("gemini::build_request", &body, &out)?;
        }
        if let Ok(out) = bedrock::build_request(&hub, bedrock::Options { default_max_tokens }) {
            check_size("bedrock::build_request", &body, &out)?;
        }
    }
    Ok(())
}

/// Arbitrary JSON as a tool's parameters and a response schema: Gemini's schema conversion.
pub fn check_schema(schema: Value) -> Result<(), TestCaseError> {
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
    });
    check_request(body.to_string().into_bytes())?;
    let body = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
    });
    check_request(body.to_string().into_bytes())
}

pub fn any_schema() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => (text(), mutations(4)).prop_map(|(t, muts)| mutate(schema(t), &muts)),
        1 => json_value(),
    ]
    .boxed()
}

// === Answers ===

fn anthropic_message(text: String, tokens: u64) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hm", "signature": "s"},
            {"type": "text", "text": text},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": text}},
            {"type": "tool_use", "id": "toolu_2", "name": "json_response", "input": {"a": [1, 2]}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": tokens, "output_tokens": tokens, "cache_read_input_tokens": tokens,
            "cache_creation_input_tokens": tokens}
    })
}

fn gemini_response(text: String, tokens: u64) -> Value {
    json!({
        "candidates": [{"content": {"parts": [
            {"text": "thinking", "thought": true},
            {"text": text},
            {"functionCall": {"name": "get_weather", "args": {"city": text, "n": [1, 2.5]}}},
            {"functionCall": {"name": "f"}}
        ], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "promptFeedback": {"blockReason": "OTHER"},
        "usageMetadata": {"promptTokenCount": tokens, "candidatesTokenCount": tokens, "thoughtsTokenCount": tokens,
            "cachedContentTokenCount": tokens, "toolUsePromptTokenCount": tokens, "totalTokenCount": tokens},
        "modelVersion": "gemini-2.5-flash", "responseId": "r1"
    })
}

/// Anthropic's and Google's error bodies in one (each parser reads its own fields).
fn error_body(text: String) -> Value {
    json!({"type": "error", "error": {"type": "overloaded_error", "code": 503, "status": "UNAVAILABLE", "message": text,
    "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7.5s"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "18446744073709551615.000001s"},
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}
    ]}})
}

pub fn answer_body() -> BoxedStrategy<Vec<u8>> {
    let big = prop_oneof![0u64..1000, Just(u64::MAX), Just(u64::MAX / 2 + 1)];
    let structured = (0usize..4, text(), big, mutations(3)).prop_map(|(kind, t, tokens, muts)| {
        let value = match kind {
            0 => anthropic_message(t, tokens),
            1 => gemini_response(t, tokens),
            2 => error_body(t),
            _ => json!([error_body(t)]),
        };
        mutate(value, &muts).to_string().into_bytes()
    });
    prop_oneof![
        6 => structured,
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

/// Every answer and error parser, and the OpenAI rendering of what they parse.
pub fn check_answer(body: Vec<u8>) -> Result<(), TestCaseError> {
    let n = body.len();
    for (anthropic, parsed) in
        [(true, anthropic::parse_response(&body)), (false, gemini::parse_response(&body))]
    {
        let Ok(response) = parsed else { continue };
        let Usage { input, output, cache_read, cache_write, reasoning } = response.usage;
        // Parts the mapping adds into their whole are never more than it (usage.rs): Anthropic's
        // cache counts into `input`, Gemini's thinking into `output`.
        if anthropic {
            prop_assert!(input >= cache_read.max(cache_write), "{:?}", response.usage);
        }
        prop_assert!(output >= reasoning, "{:?}", response.usage);
        let rendered = render_response(&response, i64::MAX);
        // Strings copied once each (re-escaped at most 2×), numbers, and ~400 bytes of envelope.
        prop_assert!(rendered.len() <= 2 * n + 1024, "{n} bytes in, {} out", rendered.len());
    }
    for (kind, message) in [anthropic::parse_error(&body), gemini::parse_error(&body)].into_iter().flatten() {
        // Both strings come from the body (or are a status code's digits).
        prop_assert!(kind.len() + message.len() <= n + 8);
    }
    let _ = gemini::error_details(&body);
    crate::bedrock::check_answer(&body)?;
    if let Some(usage) = Usage::from_openai_response(&body) {
        let _ = usage.total();
    }
    if let Some((usage, _)) = Usage::from_openai_chunk(&body) {
        let _ = usage.total();
    }
    Ok(())
}
