//! Gemini answers → hub: a complete `GenerateContentResponse`, and an error body.
//!
//! - Function calls come without ids: each gets `call_<n>`, numbered in the answer from 0
//!   (deterministic, so a retried translation gives the same ids); their `args` object becomes
//!   compact JSON text, keys in the model's order.
//! - `finishReason` is `STOP` for an answer with function calls too: it is reported as
//!   `tool_calls` when the answer has calls.
//! - Parts with `thought: true` are the model's thinking summaries, not its answer.
//! - `usageMetadata`: `promptTokenCount` includes cached tokens (`cachedContentTokenCount`);
//!   `candidatesTokenCount` excludes thinking (`thoughtsTokenCount`), which the hub's `output`
//!   includes.

use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use serde::Deserialize;
use serde_json::value::RawValue;

/// <https://ai.google.dev/api/generate-content#generatecontentresponse>
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireResponse {
    #[serde(default)]
    pub(super) candidates: Vec<Candidate>,
    #[serde(default)]
    pub(super) prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub(super) usage_metadata: Option<WireUsage>,
    #[serde(default)]
    pub(super) response_id: Option<String>,
    #[serde(default)]
    pub(super) model_version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Candidate {
    #[serde(default)]
    pub(super) content: Option<WireContent>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireContent {
    #[serde(default)]
    pub(super) parts: Vec<WirePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePart {
    #[serde(default)]
    pub(super) text: Option<String>,
    #[serde(default)]
    pub(super) thought: Option<bool>,
    #[serde(default)]
    pub(super) function_call: Option<WireFunctionCall>,
}

#[derive(Deserialize)]
pub(super) struct WireFunctionCall {
    pub(super) name: String,
    #[serde(default)]
    pub(super) args: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PromptFeedback {
    #[serde(default)]
    pub(super) block_reason: Option<String>,
}

/// <https://ai.google.dev/api/generate-content#UsageMetadata>
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    /// Prompt tokens of built-in tools' results (search, code execution): input too.
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl From<&WireUsage> for Usage {
    fn from(usage: &WireUsage) -> Self {
        Usage {
            // Saturating: the counts are the upstream's, and any u64 parses (an overflow
            // panicked in debug builds and wrapped to a tiny count in release).
            input: usage.prompt_token_count.saturating_add(usage.tool_use_prompt_token_count),
            output: usage.candidates_token_count.saturating_add(usage.thoughts_token_count),
            cache_read: usage.cached_content_token_count,
            cache_write: 0,
            reasoning: usage.thoughts_token_count,
        }
    }
}

/// The id of the `index`-th call of an answer.
pub(super) fn call_id(index: u32) -> String {
    format!("call_{index}")
}

/// `args` as compact JSON text, keys in the model's order; absent args are `{}`.
pub(super) fn arguments(args: Option<&RawValue>) -> String {
    let Some(args) = args else { return "{}".to_owned() };
    let mut out = String::with_capacity(args.get().len());
    let mut in_string = false;
    let mut escaped = false;
    for c in args.get().chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    if out == "null" { "{}".to_owned() } else { out }
}

/// `finishReason` in OpenAI's terms.
/// <https://ai.google.dev/api/generate-content#FinishReason>
pub(super) fn finish_reason(reason: &str, has_calls: bool) -> FinishReason {
    match reason {
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => FinishReason::ContentFilter,
        // STOP, and the rest (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...): an end.
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// Parses a complete `generateContent` answer.
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let response: WireResponse =
        serde_json::from_slice(body).map_err(|err| format!("not a Gemini response: {err}"))?;
    let usage = response.usage_metadata.as_ref().map(Usage::from).unwrap_or_default();
    let id = response.response_id.unwrap_or_default();
    let model = response.model_version.unwrap_or_default();
    let Some(candidate) = response.candidates.into_iter().next() else {
        // The prompt itself was blocked: no candidates, a reason in the feedback.
        if response.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            return Ok(ChatResponse {
                id,
                model,
                text: String::new(),
                tool_calls: Vec::new(),
                finish: FinishReason::ContentFilter,
                usage,
            });
        }
        return Err("a Gemini response without candidates".into());
    };
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if part.thought == Some(true) {
            continue;
        }
        if let Some(call) = part.function_call {
            let index = u32::try_from(tool_calls.len()).unwrap_or(u32::MAX);
            tool_calls.push(ToolCall {
                id: call_id(index),
                name: call.name,
                arguments: arguments(call.args.as_deref()),
            });
        } else if let Some(part_text) = &part.text {
            text.push_str(part_text);
        }
    }
    let finish = finish_reason(candidate.finish_reason.as_deref().unwrap_or("STOP"), !tool_calls.is_empty());
    Ok(ChatResponse { id, model, text, tool_calls, finish, usage })
}

#[derive(Deserialize)]
pub(super) struct WireErrorEnvelope {
    pub(super) error: WireError,
}

/// <https://ai.google.dev/gemini-api/docs/troubleshooting>: Google's `Status` object.
#[derive(Deserialize)]
pub(super) struct WireError {
    #[serde(default)]
    pub(super) message: String,
    #[serde(default)]
    pub(super) status: Option<String>,
    #[serde(default)]
    pub(super) code: Option<u16>,
}

impl WireError {
    /// The status name (`INVALID_ARGUMENT`), else the code.
    pub(super) fn kind(&self) -> String {
        match (&self.status, self.code) {
            (Some(status), _) if !status.is_empty() => status.clone(),
            (_, Some(code)) => code.to_string(),
            _ => "UNKNOWN".to_owned(),
        }
    }
}

/// The status and message of a Google error body (`{"error":{"code","message","status"}}`, also
/// as the one element of an array, as `streamGenerateContent` without SSE sends it).
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    // Checked first: serde would read a struct from an array too, as a tuple.
    let envelope = if body.trim_ascii_start().starts_with(b"[") {
        serde_json::from_slice::<Vec<WireErrorEnvelope>>(body).ok()?.into_iter().next()?
    } else {
        serde_json::from_slice::<WireErrorEnvelope>(body).ok()?
    };
    Some((envelope.error.kind(), envelope.error.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_thoughts_and_usage() {
        // The shape of the generate-content docs' answer, with a thought part and thinking usage.
        let body = br#"{
          "candidates": [{"content": {"parts": [{"text": "Thinking about it", "thought": true},
              {"text": "Hello"}, {"text": ", world"}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
          "usageMetadata": {"promptTokenCount": 12, "candidatesTokenCount": 5, "totalTokenCount": 41,
            "cachedContentTokenCount": 6, "thoughtsTokenCount": 24,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}]},
          "modelVersion": "gemini-2.5-flash", "responseId": "abc123"}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.text, "Hello, world");
        assert_eq!((response.id.as_str(), response.model.as_str()), ("abc123", "gemini-2.5-flash"));
        assert_eq!(response.finish, FinishReason::Stop);
        assert_eq!(
            response.usage,
            Usage { input: 12, output: 29, cache_read: 6, cache_write: 0, reasoning: 24 }
        );
        assert_eq!(response.usage.total(), 41);
    }

    #[test]
    fn parallel_calls_get_ids_and_compact_arguments() {
        let body = br#"{"candidates": [{"content": {"role": "model", "parts": [
              {"functionCall": {"name": "get_weather", "args": {"location": "Paris", "unit": {"c": true, "s": "a b\" }"}}},
               "thoughtSignature": "c2ln"},
              {"functionCall": {"name": "get_time"}}]},
            "finishReason": "STOP"}],
          "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 2}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            response.tool_calls,
            vec![
                ToolCall {
                    id: "call_0".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"location":"Paris","unit":{"c":true,"s":"a b\" }"}}"#.into()
                },
                ToolCall { id: "call_1".into(), name: "get_time".into(), arguments: "{}".into() },
            ]
        );
        assert_eq!(response.finish, FinishReason::ToolCalls, "STOP with calls");
        assert_eq!(response.text, "");
    }

    #[test]
    fn finish_reasons_map() {
        for (reason, calls, finish) in [
            ("STOP", false, FinishReason::Stop),
            ("STOP", true, FinishReason::ToolCalls),
            ("MAX_TOKENS", false, FinishReason::Length),
            ("MAX_TOKENS", true, FinishReason::Length),
            ("SAFETY", false, FinishReason::ContentFilter),
            ("RECITATION", false, FinishReason::ContentFilter),
            ("BLOCKLIST", false, FinishReason::ContentFilter),
            ("PROHIBITED_CONTENT", false, FinishReason::ContentFilter),
            ("SPII", false, FinishReason::ContentFilter),
            ("OTHER", false, FinishReason::Stop),
        ] {
            assert_eq!(finish_reason(reason, calls), finish, "{reason} {calls}");
        }
        let body = br#"{"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true}]}]}"#;
        let response = parse_response(body).unwrap();
        assert_eq!((response.text.as_str(), response.finish), ("", FinishReason::ContentFilter));
    }

    #[test]
    fn a_blocked_prompt_is_content_filter() {
        let body = br#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},
            "usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"r"}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.finish, FinishReason::ContentFilter);
        assert_eq!(response.text, "");
        assert_eq!(response.usage.input, 8);
        assert!(parse_response(b"{}").unwrap_err().contains("without candidates"));
    }

    #[test]
    fn errors_and_garbage() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(
            parse_error(body),
            Some(("INVALID_ARGUMENT".into(), "API key not valid. Please pass a valid API key.".into()))
        );
        let array = br#"[{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}]"#;
        assert_eq!(parse_error(array), Some(("UNAVAILABLE".into(), "overloaded".into())));
        assert_eq!(parse_error(br#"{"error":{"code":500,"message":"m"}}"#), Some(("500".into(), "m".into())));
        assert_eq!(parse_error(b"<html>"), None);
        assert!(parse_response(b"{\"candidates\":").unwrap_err().starts_with("not a Gemini response"));
    }
}
