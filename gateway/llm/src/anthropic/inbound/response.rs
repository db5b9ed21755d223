//! A hub answer rendered as a Messages API `message`.
//!
//! Reference: <https://docs.anthropic.com/en/api/messages> (the response), and
//! <https://docs.anthropic.com/en/api/handling-stop-reasons>.

use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;

/// Anthropic's `usage` object (the fields every client reads).
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessagesUsage {
    pub input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub output_tokens: u64,
}

/// Anthropic's `usage` for a hub usage.
///
/// The hub's `input` counts every prompt token, cached ones included (OpenAI's meaning, see
/// `usage.rs`); Anthropic's `input_tokens` counts only those neither read from nor written to
/// the cache, which it reports apart. So the cached parts are taken back out: a client adding
/// the three (as Anthropic's docs say to for the total) gets the hub's `input` again.
pub fn messages_usage(usage: &Usage) -> MessagesUsage {
    MessagesUsage {
        input_tokens: usage.input.saturating_sub(usage.cache_read).saturating_sub(usage.cache_write),
        cache_creation_input_tokens: usage.cache_write,
        cache_read_input_tokens: usage.cache_read,
        output_tokens: usage.output,
    }
}

/// `stop_reason` for a finish reason; an answer with tool calls is always `tool_use`, since
/// that is what Messages clients loop on (Gemini reports such answers as a plain stop).
///
/// The hub does not say whether a stop sequence ended the answer, so it is `end_turn` (and
/// `stop_sequence` null) for those too.
pub(super) fn stop_reason(finish: FinishReason, has_tool_calls: bool) -> &'static str {
    match finish {
        FinishReason::Stop if has_tool_calls => "tool_use",
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A message id: Anthropic's are `msg_...`; another provider's id is kept after the prefix, so
/// it can still be found in that provider's logs.
pub(super) fn message_id(id: &str) -> String {
    if id.starts_with("msg_") { id.to_owned() } else { format!("msg_{id}") }
}

/// A tool call's `input`: the arguments text itself when it is a JSON object, so the JSON the
/// model wrote reaches the client unchanged (never re-serialized: key order and numbers kept).
/// Arguments that are not a JSON object (a model cut off by the token limit mid-arguments, or
/// one that wrote something else) become `{}`: the Messages API types `input` as an object and
/// clients parse it as one, and an empty input fails the client's own schema check, which
/// tells the model to call again.
fn tool_input(arguments: &str) -> Box<RawValue> {
    serde_json::from_str::<Box<RawValue>>(arguments)
        .ok()
        .filter(|raw| raw.get().starts_with('{'))
        .unwrap_or_else(empty_object)
}

pub(super) fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

#[derive(Serialize)]
struct Message<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
    usage: MessagesUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text { text: &'a str },
    ToolUse { id: &'a str, name: &'a str, input: Box<RawValue> },
}

fn tool_use_block(call: &ToolCall) -> Block<'_> {
    Block::ToolUse { id: &call.id, name: &call.name, input: tool_input(&call.arguments) }
}

/// The Messages API body for `response`; `model` is the name the client asked for (the
/// provider's own model name when empty).
pub fn render_response(response: &ChatResponse, model: &str) -> Bytes {
    let mut content = Vec::with_capacity(1 + response.tool_calls.len());
    if !response.text.is_empty() {
        content.push(Block::Text { text: &response.text });
    }
    content.extend(response.tool_calls.iter().map(tool_use_block));
    let message = Message {
        id: message_id(&response.id),
        kind: "message",
        role: "assistant",
        model: if model.is_empty() { &response.model } else { model },
        content,
        stop_reason: stop_reason(response.finish, !response.tool_calls.is_empty()),
        stop_sequence: None,
        usage: messages_usage(&response.usage),
    };
    // Strings, numbers and raw JSON checked above: serialization cannot fail.
    Bytes::from(serde_json::to_vec(&message).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn answer(text: &str, tool_calls: Vec<ToolCall>, finish: FinishReason) -> ChatResponse {
        ChatResponse {
            id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG".into(),
            model: "gpt-4o-2024-08-06".into(),
            text: text.into(),
            tool_calls,
            finish,
            usage: Usage { input: 2006, output: 300, cache_read: 1920, cache_write: 0, reasoning: 256 },
        }
    }

    fn render(response: &ChatResponse) -> Value {
        serde_json::from_slice(&render_response(response, "claude-public")).unwrap()
    }

    #[test]
    fn a_text_answer_is_a_message() {
        // The response example of https://docs.anthropic.com/en/api/messages, from OpenAI
        // usage with cached tokens (https://platform.openai.com/docs/guides/prompt-caching).
        let body = render(&answer("Hi! My name is Claude.", Vec::new(), FinishReason::Stop));
        assert_eq!(
            body,
            json!({
                "id": "msg_chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
                "type": "message",
                "role": "assistant",
                "model": "claude-public",
                "content": [{"type": "text", "text": "Hi! My name is Claude."}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {
                    "input_tokens": 86,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 1920,
                    "output_tokens": 300,
                },
            })
        );
    }

    #[test]
    fn usage_takes_the_cached_parts_out_of_input_tokens() {
        // Read and written tokens are both parts of the hub's input.
        let usage = Usage { input: 1210, output: 30, cache_read: 1000, cache_write: 200, reasoning: 0 };
        assert_eq!(
            serde_json::to_value(messages_usage(&usage)).unwrap(),
            json!({"input_tokens": 10, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 1000, "output_tokens": 30})
        );
        // A provider reporting more cached than input tokens does not wrap around.
        let odd = Usage { input: 5, cache_read: 9, ..Usage::default() };
        assert_eq!(messages_usage(&odd).input_tokens, 0);
    }

    #[test]
    fn tool_calls_become_tool_use_blocks_with_object_input() {
        let calls = vec![
            ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"location":"SF","n":1.50}"#.into(),
            },
            ToolCall { id: "call_2".into(), name: "noop".into(), arguments: String::new() },
            ToolCall { id: "call_3".into(), name: "cut".into(), arguments: r#"{"location":"S"#.into() },
            ToolCall { id: "call_4".into(), name: "list".into(), arguments: "[1]".into() },
        ];
        let body = render(&answer("Let me check.", calls, FinishReason::ToolCalls));
        assert_eq!(body["stop_reason"], "tool_use");
        assert_eq!(body["content"][0], json!({"type": "text", "text": "Let me check."}));
        assert_eq!(
            body["content"][1],
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "SF", "n": 1.5}})
        );
        let text = String::from_utf8(
            render_response(
                &answer(
                    "",
                    vec![ToolCall {
                        id: "c".into(),
                        name: "f".into(),
                        arguments: r#"{"z":1.50,"a":[]}"#.into(),
                    }],
                    FinishReason::ToolCalls,
                ),
                "m",
            )
            .to_vec(),
        )
        .unwrap();
        assert!(text.contains(r#""input":{"z":1.50,"a":[]}"#), "the model's JSON, byte for byte: {text}");
        for index in 2..=4 {
            assert_eq!(
                body["content"][index]["input"],
                json!({}),
                "not an object: {}",
                body["content"][index]
            );
        }
    }

    #[test]
    fn finish_reasons_become_stop_reasons() {
        for (finish, tools, expected) in [
            (FinishReason::Stop, false, "end_turn"),
            (FinishReason::Length, false, "max_tokens"),
            (FinishReason::ToolCalls, true, "tool_use"),
            (FinishReason::ContentFilter, false, "refusal"),
            (FinishReason::Stop, true, "tool_use"),
        ] {
            assert_eq!(stop_reason(finish, tools), expected, "{finish:?}");
        }
        let call = ToolCall { id: "t".into(), name: "f".into(), arguments: "{}".into() };
        let body = render(&answer("", vec![call], FinishReason::Stop));
        assert_eq!(
            (body["stop_reason"].as_str(), body["content"].as_array().map(Vec::len)),
            (Some("tool_use"), Some(1))
        );
    }

    #[test]
    fn ids_and_model_names() {
        assert_eq!(message_id("msg_01XFDUDYJgAACzvnptvVoYEL"), "msg_01XFDUDYJgAACzvnptvVoYEL");
        assert_eq!(message_id(""), "msg_");
        let body: Value =
            serde_json::from_slice(&render_response(&answer("x", Vec::new(), FinishReason::Stop), ""))
                .unwrap();
        assert_eq!(body["model"], "gpt-4o-2024-08-06");
    }
}
