//! OpenAI-compatible answers → hub: a complete `chat.completion`, and an error body.
//!
//! References: <https://platform.openai.com/docs/api-reference/chat/object> (the completion),
//! <https://platform.openai.com/docs/guides/error-codes> (the error envelope).
//!
//! Compatible servers differ from OpenAI in small ways, read here without complaint: older
//! Ollama versions said `stop` after tool calls, some servers write `arguments` as a JSON object
//! instead of its text, and older vLLM versions sent errors as flat objects
//! (`{"object":"error",...}`) rather than in OpenAI's envelope.

use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct WireCompletion {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WireChoice>,
    /// Kept raw: a usage of an unexpected shape costs the count, not the answer.
    #[serde(default)]
    usage: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<WireContent>,
    /// Why the model declined (structured outputs); `content` is null then.
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

/// OpenAI writes a string; a few compatible servers (Mistral's reasoning models) an array of
/// parts.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
struct WirePart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: String,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: String,
    /// Custom (free-text) tools are never offered by this gateway: only `function` calls.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
}

/// A tool call's arguments as JSON text: OpenAI sends a string holding the JSON, kept as it is;
/// a server that sends the object itself gets its text. Absent arguments are empty.
pub(super) fn arguments_text(raw: Option<&RawValue>) -> String {
    match raw.map(RawValue::get) {
        None | Some("null") => String::new(),
        Some(text) if text.starts_with('"') => serde_json::from_str(text).unwrap_or_default(),
        Some(json) => json.to_owned(),
    }
}

/// `finish_reason` in the hub's terms. A call made under `stop` is reported as `tool_calls`
/// (older Ollama versions did that): clients of other dialects act on the reason (Anthropic's
/// `tool_use`). A refusal is a `content_filter`, as Anthropic's `refusal` is. Unknown reasons
/// (vLLM's `abort`) end the answer as `stop`.
pub(super) fn finish_reason(reason: Option<&str>, called_tools: bool, refused: bool) -> FinishReason {
    let finish = match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    };
    match finish {
        FinishReason::Stop if refused => FinishReason::ContentFilter,
        FinishReason::Stop if called_tools => FinishReason::ToolCalls,
        finish => finish,
    }
}

/// Parses a complete chat completion (the first choice: the gateway never asks for more).
pub fn parse_response(body: &[u8]) -> Result<ChatResponse, String> {
    let completion: WireCompletion =
        serde_json::from_slice(body).map_err(|err| format!("not an OpenAI chat completion: {err}"))?;
    let Some(choice) = completion.choices.into_iter().find(|c| c.index == 0) else {
        return Err("a chat completion without a choice".into());
    };
    let mut text = match choice.message.content {
        None => String::new(),
        Some(WireContent::Text(text)) => text,
        Some(WireContent::Parts(parts)) => {
            parts.into_iter().filter(|p| p.kind == "text").map(|p| p.text).collect()
        }
    };
    // The hub has no refusal: its text is the answer, flagged by the finish reason.
    let refusal = choice.message.refusal.filter(|r| !r.is_empty());
    let refused = refusal.is_some();
    if let Some(refusal) = refusal {
        text.push_str(&refusal);
    }
    let mut tool_calls = Vec::with_capacity(choice.message.tool_calls.len());
    for call in choice.message.tool_calls {
        match (call.kind.as_deref(), call.function) {
            (None | Some("function"), Some(function)) => tool_calls.push(ToolCall {
                id: call.id,
                name: function.name,
                arguments: arguments_text(function.arguments.as_deref()),
            }),
            (None | Some("function"), None) => return Err("a function tool call without its function".into()),
            (Some(other), _) => return Err(format!("a tool call of type '{other}', which was not offered")),
        }
    }
    let usage = completion.usage.and_then(|raw| Usage::from_openai_usage(raw.get().as_bytes()));
    Ok(ChatResponse {
        id: completion.id,
        model: completion.model,
        text,
        finish: finish_reason(choice.finish_reason.as_deref(), !tool_calls.is_empty(), refused),
        tool_calls,
        usage: usage.unwrap_or_default(),
    })
}

/// Every error shape OpenAI-compatible servers send.
#[derive(Deserialize)]
struct WireErrorBody {
    /// OpenAI, Azure, current vLLM, Ollama's `/v1`: `{"error":{...}}`; Ollama's own API and
    /// some proxies: `{"error":"text"}`.
    #[serde(default)]
    error: Option<ErrorField>,
    /// Older vLLM: the error object itself, marked `"object":"error"`.
    #[serde(default)]
    object: Option<String>,
    #[serde(flatten)]
    flat: WireError,
    /// FastAPI's own errors (vLLM's unknown routes): `{"detail":"Not Found"}`.
    #[serde(default)]
    detail: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Object(WireError),
    Text(String),
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    /// A string (`rate_limit_exceeded`; Azure's `"429"`) or a number (vLLM's `400`).
    #[serde(default)]
    code: Option<Value>,
}

/// The error kind when a body names none.
const UNNAMED: &str = "api_error";

impl WireError {
    /// `type` names the category as Anthropic's error types do; Azure and some servers give
    /// only a `code`.
    fn into_pair(self) -> (String, String) {
        let kind = match (self.kind, self.code) {
            (Some(kind), _) if !kind.is_empty() => kind,
            (_, Some(Value::String(code))) if !code.is_empty() => code,
            (_, Some(Value::Number(code))) => code.to_string(),
            _ => UNNAMED.to_owned(),
        };
        (kind, self.message.unwrap_or_default())
    }
}

/// The error type (else its code) and message of an OpenAI-compatible error body, if it is one.
pub fn parse_error(body: &[u8]) -> Option<(String, String)> {
    let body: WireErrorBody = serde_json::from_slice(body).ok()?;
    match (body.error, body.object.as_deref(), body.detail) {
        (Some(ErrorField::Object(error)), _, _) => Some(error.into_pair()),
        (Some(ErrorField::Text(message)), _, _) => Some((UNNAMED.to_owned(), message)),
        (None, Some("error"), _) => Some(body.flat.into_pair()),
        (None, _, Some(Value::String(detail))) => Some((UNNAMED.to_owned(), detail)),
        (None, _, Some(detail @ (Value::Array(_) | Value::Object(_)))) => {
            Some((UNNAMED.to_owned(), detail.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_chat_completion_object() {
        // The example of <https://platform.openai.com/docs/api-reference/chat/object> (its
        // content cut short).
        let body = br#"{
          "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
          "object": "chat.completion",
          "created": 1741570283,
          "model": "gpt-4o-2024-08-06",
          "choices": [
            {
              "index": 0,
              "message": {
                "role": "assistant",
                "content": "The image shows a wooden boardwalk path running through a lush green field or meadow.",
                "refusal": null,
                "annotations": []
              },
              "logprobs": null,
              "finish_reason": "stop"
            }
          ],
          "usage": {
            "prompt_tokens": 1117,
            "completion_tokens": 46,
            "total_tokens": 1163,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
          },
          "service_tier": "default",
          "system_fingerprint": "fp_fc9f1d7035"
        }"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            response,
            ChatResponse {
                id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".into(),
                model: "gpt-4o-2024-08-06".into(),
                text: "The image shows a wooden boardwalk path running through a lush green field or meadow."
                    .into(),
                tool_calls: Vec::new(),
                finish: FinishReason::Stop,
                usage: Usage { input: 1117, output: 46, ..Usage::default() },
            }
        );
    }

    #[test]
    fn parallel_tool_calls_keep_their_argument_text() {
        // The function-calling example of <https://platform.openai.com/docs/api-reference/chat/create>
        // (tools), with a second, parallel call.
        let body = br#"{"id":"chatcmpl-abc123","object":"chat.completion","created":1699896916,"model":"gpt-4o-mini",
          "choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[
            {"id":"call_abc123","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}},
            {"id":"call_def456","type":"function","function":{"name":"get_current_weather","arguments":"{\"location\":\"Paris\"}"}}]},
            "logprobs":null,"finish_reason":"tool_calls"}],
          "usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99,"completion_tokens_details":{"reasoning_tokens":0}}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.text, "");
        assert_eq!(response.finish, FinishReason::ToolCalls);
        assert_eq!(
            response.tool_calls,
            vec![
                ToolCall {
                    id: "call_abc123".into(),
                    name: "get_current_weather".into(),
                    arguments: "{\n\"location\": \"Boston, MA\"\n}".into()
                },
                ToolCall {
                    id: "call_def456".into(),
                    name: "get_current_weather".into(),
                    arguments: r#"{"location":"Paris"}"#.into()
                },
            ]
        );
        assert_eq!(response.usage, Usage { input: 82, output: 17, ..Usage::default() });
    }

    #[test]
    fn compatible_servers_quirks() {
        // Older Ollama: tool calls under `stop`; arguments as an object; no usage.
        let body = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"llama3.1","choices":[{"index":0,
            "message":{"role":"assistant","content":"","tool_calls":[{"id":"call_x","type":"function","function":{"name":"f","arguments":{"a":[1,2]}}}]},
            "finish_reason":"stop"}]}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.finish, FinishReason::ToolCalls);
        assert_eq!(response.tool_calls[0].arguments, r#"{"a":[1,2]}"#);
        assert_eq!(response.usage, Usage::default());
        // Content as parts; a usage of another shape is not fatal.
        let body = br#"{"id":"c","model":"magistral","choices":[{"index":0,"message":{"role":"assistant",
            "content":[{"type":"thinking","thinking":[]},{"type":"text","text":"4"}]},"finish_reason":"length"}],"usage":{"prompt_tokens":"many"}}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(
            (response.text.as_str(), response.finish, response.usage),
            ("4", FinishReason::Length, Usage::default())
        );
    }

    #[test]
    fn a_refusal_is_the_text_of_a_filtered_answer() {
        // Structured outputs' refusal, <https://platform.openai.com/docs/guides/structured-outputs#refusals>.
        let body = br#"{"id":"c","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,
            "refusal":"I'm sorry, I cannot assist with that request."},"finish_reason":"stop"}]}"#;
        let response = parse_response(body).unwrap();
        assert_eq!(response.text, "I'm sorry, I cannot assist with that request.");
        assert_eq!(response.finish, FinishReason::ContentFilter);
    }

    #[test]
    fn what_is_not_an_answer() {
        assert!(parse_response(b"{\"id\":").unwrap_err().starts_with("not an OpenAI chat completion"));
        assert_eq!(
            parse_response(br#"{"id":"c","choices":[]}"#).unwrap_err(),
            "a chat completion without a choice"
        );
        let custom = br#"{"choices":[{"index":0,"message":{"tool_calls":[{"id":"c","type":"custom","custom":{"name":"x","input":"y"}}]}}]}"#;
        assert_eq!(
            parse_response(custom).unwrap_err(),
            "a tool call of type 'custom', which was not offered"
        );
    }

    #[test]
    fn every_error_shape() {
        let pair = |kind: &str, message: &str| Some((kind.to_owned(), message.to_owned()));
        // <https://platform.openai.com/docs/guides/error-codes>: OpenAI's envelope.
        let openai = br#"{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
        assert_eq!(parse_error(openai), pair("requests", "Rate limit reached for gpt-4o"));
        // Azure OpenAI: a code, no type.
        let azure = br#"{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation have exceeded call rate limit."}}"#;
        assert_eq!(
            parse_error(azure),
            pair("429", "Requests to the ChatCompletions_Create Operation have exceeded call rate limit.")
        );
        // Older vLLM, flat; and FastAPI's own.
        let vllm = br#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#;
        assert_eq!(parse_error(vllm), pair("NotFoundError", "The model `x` does not exist."));
        let vllm = br#"{"object":"error","message":"too long","type":"","code":400}"#;
        assert_eq!(parse_error(vllm), pair("400", "too long"));
        assert_eq!(parse_error(br#"{"detail":"Not Found"}"#), pair("api_error", "Not Found"));
        // Ollama's own API.
        assert_eq!(
            parse_error(br#"{"error":"model \"llama9\" not found"}"#),
            pair("api_error", "model \"llama9\" not found")
        );
        // Not errors.
        assert_eq!(parse_error(b"<html>"), None);
        assert_eq!(parse_error(br#"{"id":"c","object":"chat.completion","choices":[]}"#), None);
        assert_eq!(parse_error(br#"{"error":null}"#), None);
    }
}
