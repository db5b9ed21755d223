//! The less common chat answers, built with `serde_json` off the benchmark's path: tool calls
//! (`*-tool`, `*-parallel-tools`) and broken answers (`*-malformed`, `*-disconnect`).
//!
//! Shapes follow OpenAI's chat completions reference and its streaming chunk object
//! (<https://platform.openai.com/docs/api-reference/chat/create>,
//! <https://platform.openai.com/docs/api-reference/chat-streaming>): a tool call's first delta
//! carries its `index`, `id`, `type` and `function.name` with empty `arguments`, the following
//! deltas carry only `index` and a piece of `function.arguments`; the last content chunk has
//! `finish_reason: "tool_calls"`; with `stream_options.include_usage` every chunk has
//! `"usage": null` and a last chunk with `"choices": []` carries the usage.

use std::collections::VecDeque;

use bytes::Bytes;
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::behavior::json_response;
use crate::body::MockBody;
use crate::json::count_words;

/// What every answer needs to know of the request.
pub(crate) struct Answer<'a> {
    pub(crate) id: u64,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
    /// The text reply (empty for tool calls).
    pub(crate) reply: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) include_usage: bool,
    pub(crate) streaming: bool,
}

/// Characters of `arguments` per streamed delta: `{"city":"mock city"}` arrives in 4 pieces.
const ARGUMENT_PIECE: usize = 6;

impl Answer<'_> {
    fn usage(&self, completion_tokens: u64) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens})
    }

    fn completion(&self, message: Value, finish_reason: &str, completion_tokens: u64) -> Value {
        json!({"id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion", "created": self.created,
            "model": self.model, "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": finish_reason}], "usage": self.usage(completion_tokens),
            "system_fingerprint": "fp_mock"})
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Value {
        let mut chunk = json!({"id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion.chunk",
            "created": self.created, "model": self.model, "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}]});
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    fn usage_chunk(&self, completion_tokens: u64) -> Value {
        json!({"id": format!("chatcmpl-mock-{}", self.id), "object": "chat.completion.chunk",
            "created": self.created, "model": self.model, "system_fingerprint": "fp_mock", "choices": [],
            "usage": self.usage(completion_tokens)})
    }

    /// The role chunk and one chunk per word of the reply.
    fn text_chunks(&self) -> Vec<Value> {
        let mut chunks = vec![self.chunk(json!({"role": "assistant", "content": "", "refusal": null}), None)];
        let mut rest = self.reply.as_str();
        while !rest.is_empty() {
            let word = rest.trim_start();
            let end = word.find(char::is_whitespace).map_or(rest.len(), |i| rest.len() - word.len() + i);
            chunks.push(self.chunk(json!({"content": &rest[..end]}), None));
            rest = &rest[end..];
        }
        chunks
    }

    fn text_completion(&self) -> Value {
        let message = json!({"role": "assistant", "content": self.reply, "refusal": null});
        self.completion(message, "stop", count_words(&self.reply))
    }
}

/// `data: <chunk>\n\n` per chunk.
fn frames(chunks: &[Value]) -> VecDeque<Bytes> {
    chunks.iter().map(|c| Bytes::from(format!("data: {c}\n\n"))).collect()
}

pub(crate) fn event_stream(frames: VecDeque<Bytes>, cut: bool) -> Response<MockBody> {
    sse_response(MockBody::frames(frames, cut))
}

/// A 200 `text/event-stream` response with this body.
pub(crate) fn sse_response(body: MockBody) -> Response<MockBody> {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Calls of the request's first tool (`parallel`: of its first two, or the first twice), with
/// arguments of the shape of each tool's `parameters`; `None` when the request has no function
/// tool (the model then answers in text).
pub(crate) fn tool_calls(
    answer: &Answer<'_>,
    tools: &RawValue,
    parallel: bool,
) -> Option<Response<MockBody>> {
    let tools: Vec<Value> = serde_json::from_str(tools.get()).ok()?;
    let functions: Vec<&Value> =
        tools.iter().filter(|t| t["type"] == "function").map(|t| &t["function"]).collect();
    let first = *functions.first()?;
    let chosen = if parallel { vec![first, functions.get(1).copied().unwrap_or(first)] } else { vec![first] };
    let calls: Vec<(String, &str, String)> = chosen
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let arguments = sample(&f["parameters"], "value").to_string();
            (format!("call_mock_{}_{i}", answer.id), f["name"].as_str().unwrap_or_default(), arguments)
        })
        .collect();
    let pieces: Vec<Vec<String>> = calls.iter().map(|(_, _, arguments)| split(arguments)).collect();
    // One token per streamed piece of arguments, so both forms report the same usage.
    let completion_tokens = pieces.iter().map(Vec::len).sum::<usize>() as u64;
    if !answer.streaming {
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        let message =
            json!({"role": "assistant", "content": null, "tool_calls": tool_calls, "refusal": null});
        let body = answer.completion(message, "tool_calls", completion_tokens);
        return Some(json_response(MockBody::full(body.to_string())));
    }
    let mut chunks = Vec::new();
    for (index, ((id, name, _), pieces)) in calls.iter().zip(&pieces).enumerate() {
        let start = json!([{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]);
        chunks.push(answer.chunk(
            if index == 0 {
                json!({"role": "assistant", "content": null, "tool_calls": start, "refusal": null})
            } else {
                json!({"tool_calls": start})
            },
            None,
        ));
        for piece in pieces {
            chunks.push(
                answer
                    .chunk(json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}), None),
            );
        }
    }
    chunks.push(answer.chunk(json!({}), Some("tool_calls")));
    if answer.include_usage {
        chunks.push(answer.usage_chunk(completion_tokens));
    }
    let mut frames = frames(&chunks);
    frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    Some(event_stream(frames, false))
}

/// `arguments` in pieces of [`ARGUMENT_PIECE`] characters.
pub(crate) fn split(arguments: &str) -> Vec<String> {
    let chars: Vec<char> = arguments.chars().collect();
    chars.chunks(ARGUMENT_PIECE).map(|c| c.iter().collect()).collect()
}

/// A value of the shape of a JSON schema (properties filled in, strings `mock <name>`).
pub(crate) fn sample(schema: &Value, name: &str) -> Value {
    match schema["type"].as_str() {
        Some("string") => match schema["enum"].get(0) {
            Some(first) => first.clone(),
            None => Value::String(format!("mock {name}")),
        },
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([sample(&schema["items"], name)]),
        Some("null") => Value::Null,
        _ => {
            let properties = schema["properties"].as_object();
            let object = properties.into_iter().flatten().map(|(k, v)| (k.clone(), sample(v, k))).collect();
            Value::Object(object)
        }
    }
}

/// `*-malformed`: the answer cut off mid-JSON, as a broken proxy might pass it on. A stream
/// sends the role chunk, one content chunk, a chunk cut in half, then `[DONE]`.
pub(crate) fn malformed(answer: &Answer<'_>) -> Response<MockBody> {
    if !answer.streaming {
        let mut body = answer.text_completion().to_string().into_bytes();
        body.truncate(body.len() / 2);
        return json_response(MockBody::full(body));
    }
    let chunks = answer.text_chunks();
    let mut frames = frames(&chunks[..chunks.len().min(2)]);
    let cut = format!("data: {}", answer.chunk(json!({"content": "cut off"}), None));
    frames.push_back(Bytes::from(format!("{}\n\n", &cut[..cut.len() / 2])));
    frames.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    event_stream(frames, false)
}

/// `*-disconnect`: the connection drops mid-answer (a stream: after the role chunk and two
/// content chunks; a complete answer: after half its body).
pub(crate) fn disconnect(answer: &Answer<'_>) -> Response<MockBody> {
    if !answer.streaming {
        let body = Bytes::from(answer.text_completion().to_string());
        return json_response(MockBody::frames([body.slice(..body.len() / 2)].into(), true));
    }
    let chunks = answer.text_chunks();
    event_stream(frames(&chunks[..chunks.len().min(3)]), true)
}
