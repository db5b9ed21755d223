//! Converse answers → hub: a complete answer, the stop reasons and the usage.

use super::{JSON_TOOL, RESPONSE_ID};
use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    output: WireOutput,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireOutput {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    content: Vec<WireBlock>,
}

/// A content block: one member set (others, such as `reasoningContent`, are skipped).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireBlock {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<WireToolUse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolUse {
    tool_use_id: String,
    name: String,
    input: Box<RawValue>,
}

/// Bedrock's `TokenUsage` (the Converse answer and the stream's `metadata` event).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_read_input_tokens: u64,
    #[serde(default)]
    cache_write_input_tokens: u64,
}

impl WireUsage {
    /// `inputTokens` excludes the cached part (`totalTokens` is their sum with the output), while
    /// the hub's `input` includes it. Saturating: the counts are the upstream's.
    pub(super) fn to_usage(&self) -> Usage {
        Usage {
            input: self
                .input_tokens
                .saturating_add(self.cache_read_input_tokens)
                .saturating_add(self.cache_write_input_tokens),
            output: self.output_tokens,
            cache_read: self.cache_read_input_tokens,
            cache_write: self.cache_write_input_tokens,
            reasoning: 0,
        }
    }
}

/// `stopReason` in OpenAI's terms.
/// <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html#API_runtime_Converse_ResponseSyntax>
pub(super) fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("guardrail_intervened" | "content_filtered") => FinishReason::ContentFilter,
        // end_turn, stop_sequence
        _ => FinishReason::Stop,
    }
}

/// Parses a complete Converse answer.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let response: WireResponse =
        serde_json::from_slice(body).map_err(|err| format!("not a Bedrock Converse answer: {err}"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut json_answer = false;
    for block in response.output.message.content {
        if let Some(piece) = block.text {
            text.push_str(&piece);
        } else if let Some(call) = block.tool_use {
            if call.name == JSON_TOOL {
                // The tool a JSON response format was turned into: its input is the answer.
                text.push_str(call.input.get());
                json_answer = true;
            } else {
                tool_calls.push(ToolCall {
                    id: call.tool_use_id,
                    name: call.name,
                    arguments: call.input.get().to_owned(),
                });
            }
        }
    }
    let mut finish = finish_reason(response.stop_reason.as_deref());
    if json_answer && finish == FinishReason::ToolCalls {
        finish = FinishReason::Stop;
    }
    let usage = response.usage.unwrap_or_default().to_usage();
    Ok(ChatResponse { id: RESPONSE_ID.to_owned(), model: String::new(), text, tool_calls, finish, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_map_to_finish_reasons() {
        for (stop, finish) in [
            ("end_turn", FinishReason::Stop),
            ("stop_sequence", FinishReason::Stop),
            ("max_tokens", FinishReason::Length),
            ("tool_use", FinishReason::ToolCalls),
            ("guardrail_intervened", FinishReason::ContentFilter),
            ("content_filtered", FinishReason::ContentFilter),
        ] {
            assert_eq!(finish_reason(Some(stop)), finish, "{stop}");
        }
    }

    #[test]
    fn cached_tokens_are_part_of_input() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hi"},
            {"toolUse":{"toolUseId":"t1","name":"look","input":{"at":"cat"}}}]}},"stopReason":"tool_use",
            "usage":{"inputTokens":10,"outputTokens":3,"totalTokens":2189,"cacheReadInputTokens":2048,"cacheWriteInputTokens":128},
            "metrics":{"latencyMs":42}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.text, "Hi");
        assert_eq!(response.tool_calls[0].arguments, r#"{"at":"cat"}"#);
        assert_eq!(response.finish, FinishReason::ToolCalls);
        assert_eq!(
            response.usage,
            Usage { input: 2186, output: 3, cache_read: 2048, cache_write: 128, reasoning: 0 }
        );
        assert!(parse_response(b"{\"output\":").unwrap_err().starts_with("not a Bedrock"));
    }
}
