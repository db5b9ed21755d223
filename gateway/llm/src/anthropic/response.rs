//! Anthropic answers → hub: a complete message, and an error body.

use super::JSON_TOOL;
use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct WireMessage {
    id: String,
    model: String,
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    usage: WireUsage,
}

/// A content block, flat: serde cannot keep raw JSON (`input`) inside a tagged enum.
#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

/// Anthropic's `usage` (messages and `message_start`/`message_delta` events).
#[derive(Deserialize, Default)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub(super) input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) output_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(super) cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Folds this report into the running total: fields present replace, absent ones stay.
    /// Anthropic's `input_tokens` excludes cached tokens; the hub's `input` includes them.
    pub(super) fn update(&self, usage: &mut Usage, uncached_input: &mut u64) {
        if let Some(input) = self.input_tokens {
            *uncached_input = input;
        }
        if let Some(read) = self.cache_read_input_tokens {
            usage.cache_read = read;
        }
        if let Some(write) = self.cache_creation_input_tokens {
            usage.cache_write = write;
        }
        if let Some(output) = self.output_tokens {
            usage.output = output;
        }
        // Saturating: the counts are the upstream's, and any u64 parses (an overflow panicked in
        // debug builds and wrapped to a tiny count in release).
        usage.input = uncached_input.saturating_add(usage.cache_read).saturating_add(usage.cache_write);
    }
}

/// `stop_reason` in OpenAI's terms. <https://docs.anthropic.com/en/api/handling-stop-reasons>
pub(super) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn
        _ => FinishReason::Stop,
    }
}

/// Parses a complete Messages API answer.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let message: WireMessage =
        serde_json::from_slice(body).map_err(|err| format!("not an Anthropic message: {err}"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in message.content {
        match (block.kind.as_str(), block.name, block.input) {
            ("text", _, _) => text.push_str(block.text.as_deref().unwrap_or_default()),
            // The tool a JSON response format was turned into: its input is the answer.
            ("tool_use", Some(name), Some(input)) if name == JSON_TOOL => {
                text.push_str(input.get());
                json_answer = true;
            }
            ("tool_use", Some(name), Some(input)) => tool_calls.push(ToolCall {
                id: block.id.unwrap_or_default(),
                name,
                arguments: input.get().to_owned(),
            }),
            ("tool_use", _, _) => return Err("a tool_use block without name or input".into()),
            // Thinking, redacted thinking, server tools: not part of an OpenAI answer.
            _ => {}
        }
    }
    let mut finish = finish_reason(message.stop_reason.as_deref());
    if json_answer && finish == FinishReason::ToolCalls {
        finish = FinishReason::Stop;
    }
    let mut usage = Usage::default();
    message.usage.update(&mut usage, &mut 0);
    Ok(ChatResponse { id: message.id, model: message.model, text, tool_calls, finish, usage })
}

#[derive(Deserialize)]
struct WireErrorEnvelope {
    error: WireError,
}

#[derive(Deserialize)]
pub(super) struct WireError {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) message: String,
}

/// The error type and message of an Anthropic error body
/// (`{"type":"error","error":{"type","message"}}`), if it is one.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let envelope: WireErrorEnvelope = serde_json::from_slice(body).ok()?;
    Some((envelope.error.kind, envelope.error.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_text_and_tool_calls() {
        let body = br#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
            "content":[{"type":"thinking","thinking":"hmm","signature":"x"},{"type":"text","text":"Let me look."},
              {"type":"tool_use","id":"toolu_01","name":"look","input":{"at":"cat"}},
              {"type":"tool_use","id":"toolu_02","name":"look","input":{}}],
            "stop_reason":"tool_use","stop_sequence":null,
            "usage":{"input_tokens":10,"cache_creation_input_tokens":200,"cache_read_input_tokens":1000,"output_tokens":30}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.text, "Let me look.");
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[0].arguments, r#"{"at":"cat"}"#);
        assert_eq!(response.tool_calls[1].arguments, "{}");
        assert_eq!(response.finish, FinishReason::ToolCalls);
        assert_eq!(
            response.usage,
            Usage { input: 1210, output: 30, cache_read: 1000, cache_write: 200, reasoning: 0 }
        );
    }

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("refusal", FinishReason::ContentFilter),
            ("pause_turn", FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(Some(stop)), finish, "{stop}");
        }
    }

    #[test]
    fn the_json_tool_becomes_the_answer_text() {
        let body = br#"{"id":"m","model":"c","content":[{"type":"tool_use","id":"t","name":"json_response","input":{"a":1}}],
            "stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!((response.text.as_str(), response.finish), (r#"{"a":1}"#, FinishReason::Stop));
        assert!(response.tool_calls.is_empty());
    }

    #[test]
    fn errors_and_garbage() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        assert_eq!(parse_error(body), Some(("overloaded_error".into(), "Overloaded".into())));
        assert_eq!(parse_error(b"<html>"), None);
        assert!(parse_response(b"{\"id\":").unwrap_err().starts_with("not an Anthropic message"));
    }
}
