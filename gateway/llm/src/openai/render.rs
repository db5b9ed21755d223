//! Hub answers and stream events rendered for an OpenAI client: a `chat.completion` body, or
//! `chat.completion.chunk` events.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/object> (response),
//! <https://platform.openai.com/docs/api-reference/chat-streaming> (chunks).

use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, StreamEvent, ToolCall};
use crate::stream::{ClientRenderer, StreamFailure};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

/// OpenAI's `usage` object for `usage`.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.total(),
        "prompt_tokens_details": { "cached_tokens": usage.cache_read },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning },
    })
}

fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": { "name": call.name, "arguments": call.arguments },
            })
        })
        .collect()
}

/// A `chat.completion` body for `response`; `created` in Unix seconds.
pub fn render_response(response: &ChatResponse, created: i64) -> Bytes {
    let mut message = json!({
        "role": "assistant",
        "content": if response.text.is_empty() && !response.tool_calls.is_empty() { Value::Null } else { Value::from(response.text.as_str()) },
        "refusal": null,
    });
    if !response.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls_json(&response.tool_calls);
    }
    let body = json!({
        "id": response.id,
        "object": "chat.completion",
        "created": created,
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": response.finish.as_openai(),
        }],
        "usage": usage_json(&response.usage),
    });
    Bytes::from(body.to_string())
}

/// Renders hub stream events as OpenAI `chat.completion.chunk` events.
#[derive(Debug)]
pub struct ChunkRenderer {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    usage: Usage,
    /// A `[DONE]` or an error was written: nothing more may follow.
    closed: bool,
}

impl ChunkRenderer {
    /// `model` names the answering model until the provider's first event says otherwise.
    pub fn new(model: &str, created: i64, include_usage: bool) -> Self {
        ChunkRenderer {
            id: String::new(),
            model: model.to_owned(),
            created,
            include_usage,
            usage: Usage::default(),
            closed: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<FinishReason>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish.map(FinishReason::as_openai) }],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        sse_data(&chunk.to_string())
    }
}

impl ClientRenderer for ChunkRenderer {
    fn render(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::Start { id, model } => {
                // Both are repeated in every later chunk: an upstream's overlong one would turn
                // each small frame into a large chunk (output quadratic in input), so they are cut.
                self.id = truncated(id).to_owned();
                if !model.is_empty() {
                    self.model = truncated(model).to_owned();
                }
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            StreamEvent::Text(text) => out.push(self.chunk(json!({"content": text}), None)),
            StreamEvent::ToolCallStart { index, id, name } => out.push(self.chunk(
                json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                None,
            )),
            StreamEvent::ToolCallArguments { index, fragment } => out.push(
                self.chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}), None),
            ),
            StreamEvent::Finish(reason) => out.push(self.chunk(json!({}), Some(*reason))),
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Error(error) => {
                self.closed = true;
                let message = format!("the provider reported an error: {}", error.message);
                out.push(super::stream_error_event(&message, &error.kind));
            }
        }
    }

    /// The usage chunk (when asked for) and `[DONE]`.
    fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.include_usage {
            let chunk = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_json(&self.usage),
            });
            out.push(sse_data(&chunk.to_string()));
        }
        out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }

    /// One error event.
    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.closed = true;
        out.push(super::stream_error_event(failure.message(), "upstream_stream_error"));
    }
}

/// The longest response id or model name repeated into every chunk. Real ones are under 100
/// bytes (`chatcmpl-…`, `msg_…`, `gemini-2.5-flash-preview-05-20`).
const MAX_NAME_BYTES: usize = 256;

/// `text` cut to at most [`MAX_NAME_BYTES`], on a character boundary.
fn truncated(text: &str) -> &str {
    &text[..text.floor_char_boundary(MAX_NAME_BYTES)]
}

fn sse_data(json: &str) -> Bytes {
    let mut event = BytesMut::with_capacity(json.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(json.as_bytes());
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::StreamError;

    fn rendered(out: &[Bytes]) -> Vec<Value> {
        out.iter()
            .map(|event| {
                let text = std::str::from_utf8(event).unwrap();
                let data = text.strip_prefix("data: ").unwrap().trim_end();
                if data == "[DONE]" { Value::from("[DONE]") } else { serde_json::from_str(data).unwrap() }
            })
            .collect()
    }

    #[test]
    fn stream_events_become_openai_chunks() {
        let mut renderer = ChunkRenderer::new("public", 1700000000, true);
        let mut out = Vec::new();
        for event in [
            StreamEvent::Start { id: "msg_1".into(), model: "claude-x".into() },
            StreamEvent::Text("Hel".into()),
            StreamEvent::ToolCallStart { index: 0, id: "toolu_1".into(), name: "look".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{\"at\":".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "\"cat\"}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(Usage { input: 9, output: 4, cache_read: 2, ..Usage::default() }),
        ] {
            renderer.render(&event, &mut out);
        }
        renderer.end(&mut out);
        let chunks = rendered(&out);
        assert_eq!(chunks.len(), 8);
        assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
        assert_eq!(
            (chunks[0]["id"].as_str(), chunks[0]["model"].as_str()),
            (Some("msg_1"), Some("claude-x"))
        );
        assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
        assert_eq!(chunks[1]["usage"], Value::Null, "include_usage puts usage: null on every chunk");
        assert_eq!(
            chunks[2]["choices"][0]["delta"]["tool_calls"][0],
            json!({"index": 0, "id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": ""}})
        );
        let arguments: String = chunks[3..5]
            .iter()
            .map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(arguments, r#"{"at":"cat"}"#);
        assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(chunks[6]["choices"], json!([]));
        assert_eq!(chunks[6]["usage"]["prompt_tokens"], 9);
        assert_eq!(chunks[6]["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
        assert_eq!(chunks[7], "[DONE]");
    }

    #[test]
    fn a_provider_error_ends_the_stream_with_one_error_event() {
        let mut renderer = ChunkRenderer::new("m", 0, false);
        let mut out = Vec::new();
        renderer.render(&StreamEvent::Text("a".into()), &mut out);
        renderer.render(
            &StreamEvent::Error(StreamError {
                kind: "overloaded_error".into(),
                message: "Overloaded".into(),
            }),
            &mut out,
        );
        renderer.render(&StreamEvent::Text("b".into()), &mut out);
        renderer.end(&mut out);
        let chunks = rendered(&out);
        assert_eq!(chunks.len(), 2, "nothing after the error: {chunks:?}");
        assert_eq!(chunks[1]["error"]["code"], "overloaded_error");
        assert_eq!(chunks[1]["error"]["message"], "the provider reported an error: Overloaded");
        assert!(chunks[0].get("usage").is_none(), "no usage field when not asked for");
    }

    #[test]
    fn a_complete_answer_becomes_a_chat_completion() {
        let response = ChatResponse {
            id: "msg_1".into(),
            model: "claude-x".into(),
            text: String::new(),
            tool_calls: vec![ToolCall { id: "t".into(), name: "f".into(), arguments: "{}".into() }],
            finish: FinishReason::ToolCalls,
            usage: Usage { input: 3, output: 2, ..Usage::default() },
        };
        let body: Value = serde_json::from_slice(&render_response(&response, 5)).unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "f");
        assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(body["usage"]["total_tokens"], 5);
    }
}
