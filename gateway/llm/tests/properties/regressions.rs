//! Inputs the property tests (or reading the code they drive) found to panic or blow up, kept
//! as plain tests.

use crate::streams::{Ending, drive};
use bytes::Bytes;
use serde_json::json;
use switchboard_llm::Usage;
use switchboard_llm::anthropic::{self, AnthropicStream};
use switchboard_llm::gemini::{self, GeminiStream};
use switchboard_llm::openai::{ChunkRenderer, ModelRequest};
use switchboard_llm::stream::{HubTranslator, StreamTranslator};

fn frame(data: &serde_json::Value) -> Vec<u8> {
    format!("data: {data}\n\n").into_bytes()
}

/// Token counts near `u64::MAX` overflowed `uncached + cache_read + cache_write` (a panic in
/// debug builds, a wrapped, tiny count in release): sums saturate now.
#[test]
fn huge_anthropic_token_counts_saturate() {
    let start = json!({"type":"message_start","message":{"id":"m","model":"c","usage":
        {"input_tokens":u64::MAX,"output_tokens":u64::MAX,"cache_read_input_tokens":1,"cache_creation_input_tokens":u64::MAX}}});
    let mut translator = HubTranslator::new(AnthropicStream::new(), ChunkRenderer::new("m", 0, true));
    let run = drive(&mut translator, &[frame(&start)], Ending::End);
    assert_eq!(run.usage.input, u64::MAX);
    assert_eq!(run.usage.total(), u64::MAX);
    let body = json!({"id":"m","model":"c","content":[],"usage":{"input_tokens":u64::MAX,"cache_read_input_tokens":7}});
    let response = anthropic::parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(response.usage.input, u64::MAX);
}

/// The same for Gemini's `prompt + toolUsePrompt` and `candidates + thoughts`.
#[test]
fn huge_gemini_token_counts_saturate() {
    let usage = json!({"promptTokenCount":u64::MAX,"toolUsePromptTokenCount":2,"candidatesTokenCount":u64::MAX,"thoughtsTokenCount":3});
    let chunk = json!({"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"STOP"}],"usageMetadata":usage});
    let mut translator = HubTranslator::new(GeminiStream::new(), ChunkRenderer::new("m", 0, true));
    let run = drive(&mut translator, &[frame(&chunk)], Ending::End);
    assert_eq!((run.usage.input, run.usage.output), (u64::MAX, u64::MAX));
    let response = gemini::parse_response(chunk.to_string().as_bytes()).unwrap();
    assert_eq!(response.usage.output, u64::MAX);
}

/// `Usage::total` is `input + output`: it saturates too.
#[test]
fn usage_total_saturates() {
    let usage = Usage { input: u64::MAX, output: 1, ..Usage::default() };
    assert_eq!(usage.total(), u64::MAX);
}

/// The renderer repeated the upstream's response id and model name in every chunk, so one
/// long name (up to an event's 4 MiB) multiplied every later small frame into megabytes:
/// output quadratic in input. Both are capped now.
#[test]
fn a_long_model_name_is_not_repeated_into_every_chunk() {
    let long = "m".repeat(100_000);
    let first =
        json!({"candidates":[{"content":{"parts":[{"text":"a"}]}}],"modelVersion":long,"responseId":long});
    let mut pieces = vec![frame(&first)];
    pieces.extend((0..100).map(|_| frame(&json!({"candidates":[{"content":{"parts":[{"text":"b"}]}}]}))));
    let input: usize = pieces.iter().map(Vec::len).sum();
    let mut translator = HubTranslator::new(GeminiStream::new(), ChunkRenderer::new("m", 0, true));
    let run = drive(&mut translator, &pieces, Ending::End);
    let output: usize = run.all().map(Bytes::len).sum();
    assert!(output < 2 * input, "{input} bytes in, {output} out");
}

/// A tool result names its function by the call it answers, so a long function name was
/// copied once per tool message: 16 MiB of body could make gigabytes. Names longer than the
/// 64 characters Gemini and OpenAI allow are refused now.
#[test]
fn a_long_function_name_is_not_copied_into_every_tool_result() {
    let name = "f".repeat(65);
    let mut messages = vec![
        json!({"role":"user","content":"hi"}),
        json!({"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":name,"arguments":"{}"}}]}),
    ];
    messages.extend((0..10).map(|_| json!({"role":"tool","tool_call_id":"a"})));
    let body = json!({"model":"m","messages":messages}).to_string();
    let request = ModelRequest::parse(body.as_bytes()).unwrap();
    let hub = request.to_hub("g").unwrap();
    let err = gemini::build_request(&hub, gemini::Options::default()).unwrap_err();
    assert!(err.message.contains("64"), "{}", err.message);
    // 64 is fine.
    let body = body.replace(&name, &"f".repeat(64));
    let hub = ModelRequest::parse(body.as_bytes()).unwrap().to_hub("g").unwrap();
    gemini::build_request(&hub, gemini::Options::default()).unwrap();
}

/// `$ref`s are inlined where used and only recursion was refused, so a chain of definitions
/// each using the next twice expanded 2^n times: 22 links (under the depth limit) are 2 kB of
/// schema and 4 million nodes converted. The expansion is capped now.
#[test]
fn a_schema_whose_refs_expand_exponentially_is_refused() {
    let mut defs = serde_json::Map::new();
    for i in 0..22 {
        let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
        defs.insert(format!("d{i}"), json!({"type":"object","properties":{"a":next,"b":next}}));
    }
    defs.insert("d22".into(), json!({"type":"string"}));
    let schema = json!({"type":"object","properties":{"x":{"$ref":"#/$defs/d0"}},"$defs":defs});
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":schema}}]});
    let hub = ModelRequest::parse(body.to_string().as_bytes()).unwrap().to_hub("g").unwrap();
    let err = gemini::build_request(&hub, gemini::Options::default()).unwrap_err();
    assert!(err.message.contains("$ref"), "{}", err.message);
}

/// Deep nesting everywhere: refused or handled, never a stack overflow.
#[test]
fn deeply_nested_input_is_refused_or_handled() {
    let deep_array = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut schema = json!({"type":"string"});
    for _ in 0..120 {
        schema = json!({"type":"object","properties":{"a":schema}});
    }
    let body = json!({"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[{"type":"function","function":{"name":"f","parameters":schema}}]})
    .to_string();
    for bytes in [deep_array.as_bytes(), body.as_bytes()] {
        if let Ok(request) = ModelRequest::parse(bytes)
            && let Ok(hub) = request.to_hub("g")
        {
            let _ = anthropic::build_request(&hub, anthropic::Options { default_max_tokens: 1 });
            assert!(gemini::build_request(&hub, gemini::Options::default()).is_err());
        }
        let _ = anthropic::parse_response(bytes);
        let _ = gemini::parse_response(bytes);
        let _ = anthropic::parse_error(bytes);
        let _ = gemini::parse_error(bytes);
        let event = [b"data: ".as_slice(), bytes, b"\n\n"].concat();
        let mut out = Vec::new();
        HubTranslator::new(AnthropicStream::new(), ChunkRenderer::new("m", 0, true))
            .event(Bytes::from(event.clone()), &mut out);
        HubTranslator::new(GeminiStream::new(), ChunkRenderer::new("m", 0, true))
            .event(Bytes::from(event), &mut out);
    }
}

/// A `retryDelay` of `u64::MAX` seconds plus a fraction overflowed the rounding up.
#[test]
fn a_huge_retry_delay_saturates() {
    let body = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[
        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"18446744073709551615.5s"}]}}"#;
    assert_eq!(gemini::error_details(body).retry_after_secs, Some(u64::MAX));
}
