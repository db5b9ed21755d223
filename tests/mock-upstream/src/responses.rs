//! `POST /v1/responses`: OpenAI's Responses API, answered deterministically so tests can prove
//! what the gateway forwarded (the body is recorded like chat's, see `last_request`).
//!
//! Shapes follow the API reference (<https://platform.openai.com/docs/api-reference/responses/create>),
//! its streaming events (<https://platform.openai.com/docs/api-reference/responses-streaming>)
//! and the official Python SDK's models `openai.types.responses.Response` and
//! `ResponseStreamEvent` (`tests/py/responses_events.py` validates this module's output with them).
//!
//! Checks, as the real API makes them (400, `invalid_request_error`): `model` is required;
//! `input` is a string or an array of items; a message item has role `user`, `assistant`,
//! `system` or `developer` and string or part content; a `function_call_output` answers a
//! `function_call` with the same `call_id` earlier in `input`. `previous_response_id` is always
//! refused as not found: this mock stores nothing, so a request carrying one proves the gateway
//! did not substitute the stored conversation. Other top-level fields are accepted and ignored
//! (the real API refuses truly unknown ones; tests send documented ones the mock does not act on).
//!
//! The reply: `mock reply to: <the last user message's text, at most 40 characters>`, then
//! ` [function_call_output <call_id>: <output>]` per `function_call_output` of `input`. With a
//! `*-tool` model, function tools and an `input` not ending in a `function_call_output`, the
//! answer is one `function_call` of the first tool instead (arguments as chat's tool answers
//! make them). `error-<status>` models fail as chat does; `slow-<ms>` waits first; the other
//! model behaviours of `behavior.rs` answer as the default here.

use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::Shared;
use crate::answers::{sample, split, sse_response};
use crate::behavior::{Behavior, bad_request, json_response, status_error};
use crate::body::MockBody;
use crate::chat::now_secs;
use crate::fault::StreamShape;
use crate::json::count_words;

/// Characters of the last user message the reply echoes, as chat's reply does.
const ECHO_CHARS: usize = 40;

/// A refusal in OpenAI's error envelope, naming the parameter; boxed, as it travels in `Err`s.
fn refuse(message: &str, param: &str, code: Option<&str>) -> Box<Response<MockBody>> {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": param,
        "code": code}});
    let mut resp = json_response(MockBody::full(body.to_string()));
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    Box::new(resp)
}

/// JSON's name for the type of `value`, as OpenAI's `invalid_type` messages use it.
fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What the answer needs from `input`.
#[derive(Default)]
struct InputSummary {
    /// The text of the last `user` message.
    last_user_text: String,
    /// `(call_id, output)` of each `function_call_output`, in order.
    outputs: Vec<(String, String)>,
    /// Words of every text of the input (messages and tool outputs).
    words: u64,
    /// Whether the last item is a `function_call_output` (the model then answers in text).
    ends_with_output: bool,
}

/// The texts of a message's `content` (a string or an array of parts), or the refusal of a part.
fn content_texts(content: &Value, at: usize) -> Result<Vec<String>, Box<Response<MockBody>>> {
    /// Part types the reference documents for input messages (the last one in assistant turns).
    const PART_TYPES: [&str; 6] =
        ["input_text", "input_image", "input_file", "input_audio", "output_text", "refusal"];
    match content {
        Value::String(text) => Ok(vec![text.clone()]),
        Value::Array(parts) => {
            let mut texts = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part["type"].as_str().unwrap_or_default();
                if !PART_TYPES.contains(&kind) {
                    let param = format!("input[{at}].content[{j}].type");
                    return Err(refuse(
                        &format!(
                            "Invalid value: '{kind}'. Supported values are: 'input_text', 'input_image', 'input_file', 'input_audio', 'output_text' and 'refusal'."
                        ),
                        &param,
                        Some("invalid_value"),
                    ));
                }
                if let Some(text) = part["text"].as_str().or_else(|| part["refusal"].as_str()) {
                    texts.push(text.to_owned());
                }
            }
            Ok(texts)
        }
        other => Err(refuse(
            &format!(
                "Invalid type for 'input[{at}].content': expected one of a string or array of input content, but got {} instead.",
                type_name(other)
            ),
            &format!("input[{at}].content"),
            Some("invalid_type"),
        )),
    }
}

/// Checks `input` as the real API does and collects what the answer echoes.
fn read_input(input: Option<&Value>) -> Result<InputSummary, Box<Response<MockBody>>> {
    let mut summary = InputSummary::default();
    let items = match input {
        None | Some(Value::Null) => return Ok(summary),
        Some(Value::String(text)) => {
            summary.words = count_words(text);
            summary.last_user_text.clone_from(text);
            return Ok(summary);
        }
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(refuse(
                &format!(
                    "Invalid type for 'input': expected one of a string or array of input items, but got {} instead.",
                    type_name(other)
                ),
                "input",
                Some("invalid_type"),
            ));
        }
    };
    let mut calls: Vec<&str> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        // An item without `type` but with `role` is the reference's "easy input message".
        let kind = item["type"].as_str().or_else(|| item.get("role").map(|_| "message"));
        summary.ends_with_output = kind == Some("function_call_output");
        match kind {
            Some("message") => {
                let role = item["role"].as_str().unwrap_or_default();
                if !["user", "assistant", "system", "developer"].contains(&role) {
                    return Err(refuse(
                        &format!(
                            "Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', and 'user'."
                        ),
                        &format!("input[{i}].role"),
                        Some("invalid_value"),
                    ));
                }
                let texts = content_texts(&item["content"], i)?;
                summary.words += texts.iter().map(|t| count_words(t)).sum::<u64>();
                if role == "user" {
                    summary.last_user_text = texts.concat();
                }
            }
            Some("function_call") => {
                let Some(call_id) = item["call_id"].as_str() else {
                    return Err(refuse(
                        &format!("Missing required parameter: 'input[{i}].call_id'."),
                        &format!("input[{i}].call_id"),
                        Some("missing_required_parameter"),
                    ));
                };
                calls.push(call_id);
            }
            Some("function_call_output") => {
                let call_id = item["call_id"].as_str().unwrap_or_default();
                if !calls.contains(&call_id) {
                    return Err(refuse(
                        &format!("No tool call found for function call output with call_id {call_id}."),
                        "input",
                        None,
                    ));
                }
                let output = match &item["output"] {
                    Value::String(text) => text.clone(),
                    parts @ Value::Array(_) => content_texts(parts, i)?.concat(),
                    _ => String::new(),
                };
                summary.words += count_words(&output);
                summary.outputs.push((call_id.to_owned(), output));
            }
            // Other documented items (reasoning, item references, built-in tool calls) are kept
            // for the model; the mock does not act on them.
            Some(_) => {}
            None => {
                return Err(refuse(
                    &format!("Missing required parameter: 'input[{i}].type'."),
                    &format!("input[{i}].type"),
                    Some("missing_required_parameter"),
                ));
            }
        }
    }
    Ok(summary)
}

/// `mock reply to: ` and what the model was given (see the module docs).
fn echo(summary: &InputSummary) -> String {
    let text = &summary.last_user_text;
    let take = text.char_indices().nth(ECHO_CHARS).map_or(text.len(), |(i, _)| i);
    let mut reply = format!("mock reply to: {}", &text[..take]);
    for (call_id, output) in &summary.outputs {
        // Writing to a String cannot fail.
        let _ = write!(reply, " [function_call_output {call_id}: {output}]");
    }
    reply
}

/// The first function tool of `tools` (Responses tools are flat: `{"type": "function", "name",
/// "parameters"}`).
fn first_function(tools: Option<&Value>) -> Option<&Value> {
    tools?.as_array()?.iter().find(|t| t["type"] == "function")
}

/// One output item, with the pieces its stream delivers it in.
enum Item {
    Message { id: String, text: String },
    Call { id: String, call_id: String, name: String, arguments: String },
}

impl Item {
    /// The item as `output` holds it; `done: false` is its `response.output_item.added` form.
    fn to_json(&self, done: bool) -> Value {
        let status = if done { "completed" } else { "in_progress" };
        match self {
            Item::Message { id, text } => {
                let content = if done { json!([output_text(text)]) } else { json!([]) };
                json!({"id": id, "type": "message", "status": status, "role": "assistant", "content": content})
            }
            Item::Call { id, call_id, name, arguments } => {
                let arguments = if done { arguments.as_str() } else { "" };
                json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
                    "name": name, "arguments": arguments})
            }
        }
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// `text` in pieces of one word each, with the whitespace before it, as chat streams words.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let word = rest.trim_start();
        let end = word.find(char::is_whitespace).map_or(rest.len(), |i| rest.len() - word.len() + i);
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    pieces
}

/// Everything of the request the response object echoes, and the answer.
struct Answer {
    id: u64,
    created_at: u64,
    /// The request's fields the response object echoes, with the reference's defaults.
    echoed: Map<String, Value>,
    item: Item,
    input_tokens: u64,
    output_tokens: u64,
}

impl Answer {
    /// The `response` object; `done: false` is its `in_progress` form (no output, no usage) for
    /// `response.created` and `response.in_progress`.
    fn object(&self, done: bool) -> Value {
        let mut object = json!({"id": format!("resp_mock_{}", self.id), "object": "response",
            "created_at": self.created_at, "status": if done { "completed" } else { "in_progress" },
            "error": null, "incomplete_details": null, "previous_response_id": null,
            "output": if done { json!([self.item.to_json(true)]) } else { json!([]) },
            "usage": null});
        if done {
            object["usage"] = json!({"input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": self.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.input_tokens + self.output_tokens});
        }
        if let Value::Object(fields) = &mut object {
            fields.extend(self.echoed.clone());
        }
        object
    }

    /// The event sequence of a streamed answer, `sequence_number` from 0.
    fn events(&self) -> Vec<Value> {
        let mut events = vec![
            json!({"type": "response.created", "response": self.object(false)}),
            json!({"type": "response.in_progress", "response": self.object(false)}),
            json!({"type": "response.output_item.added", "output_index": 0, "item": self.item.to_json(false)}),
        ];
        match &self.item {
            Item::Message { id, text } => {
                let at = json!({"item_id": id, "output_index": 0, "content_index": 0});
                let with = |mut fields: Value, more: Value| {
                    if let (Value::Object(fields), Value::Object(more)) = (&mut fields, more) {
                        fields.extend(more);
                    }
                    fields
                };
                events.push(with(
                    at.clone(),
                    json!({"type": "response.content_part.added", "part": output_text("")}),
                ));
                for piece in word_pieces(text) {
                    events.push(with(
                        at.clone(),
                        json!({"type": "response.output_text.delta", "delta": piece, "logprobs": []}),
                    ));
                }
                events.push(with(
                    at.clone(),
                    json!({"type": "response.output_text.done", "text": text, "logprobs": []}),
                ));
                events
                    .push(with(at, json!({"type": "response.content_part.done", "part": output_text(text)})));
            }
            Item::Call { id, arguments, .. } => {
                for piece in split(arguments) {
                    events.push(json!({"type": "response.function_call_arguments.delta", "item_id": id,
                        "output_index": 0, "delta": piece}));
                }
                events.push(json!({"type": "response.function_call_arguments.done", "item_id": id,
                    "output_index": 0, "arguments": arguments}));
            }
        }
        events.push(
            json!({"type": "response.output_item.done", "output_index": 0, "item": self.item.to_json(true)}),
        );
        events.push(json!({"type": "response.completed", "response": self.object(true)}));
        for (n, event) in events.iter_mut().enumerate() {
            event["sequence_number"] = json!(n);
        }
        events
    }
}

/// The request's fields the response echoes, each with the value the API reports when the
/// request leaves it out.
fn echoed_fields(request: &Map<String, Value>, model: &str) -> Map<String, Value> {
    let defaults = [
        ("instructions", Value::Null),
        ("metadata", json!({})),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("temperature", json!(1.0)),
        ("top_p", json!(1.0)),
        ("text", json!({"format": {"type": "text"}})),
        ("truncation", json!("disabled")),
        ("max_output_tokens", Value::Null),
        ("store", json!(true)),
        ("user", Value::Null),
    ];
    let mut echoed: Map<String, Value> = defaults
        .into_iter()
        .map(|(name, default)| {
            let value = request.get(name).filter(|v| !v.is_null()).cloned().unwrap_or(default);
            (name.to_owned(), value)
        })
        .collect();
    echoed.insert("model".to_owned(), json!(model));
    echoed
}

/// `shape`: how an injected fault bends a stream (`*.delta` events are its content chunks).
pub(crate) async fn handle(shared: &Arc<Shared>, body: &[u8], shape: StreamShape) -> Response<MockBody> {
    match answer(shared, body, shape).await {
        Ok(response) | Err(response) => response,
    }
}

async fn answer(
    shared: &Arc<Shared>,
    body: &[u8],
    shape: StreamShape,
) -> Result<Response<MockBody>, Response<MockBody>> {
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(request)) => request,
        Ok(_) => return Err(bad_request("The request body must be a JSON object.")),
        Err(e) => return Err(bad_request(&format!("We could not parse the JSON body of your request: {e}"))),
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return Err(*refuse(
            "Missing required parameter: 'model'.",
            "model",
            Some("missing_required_parameter"),
        ));
    };
    let behavior = Behavior::from_model(model);
    if let Behavior::Error(status) = behavior {
        return Err(status_error(status));
    }
    if let Some(previous) = request.get("previous_response_id").and_then(Value::as_str) {
        return Err(*refuse(
            &format!("Previous response with id '{previous}' not found."),
            "previous_response_id",
            Some("previous_response_not_found"),
        ));
    }
    let summary = read_input(request.get("input")).map_err(|refusal| *refusal)?;
    let input_tokens =
        (summary.words + request.get("instructions").and_then(Value::as_str).map_or(0, count_words)).max(1);
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let tool = first_function(request.get("tools"))
        .filter(|_| behavior == Behavior::Tool && !summary.ends_with_output);
    let (item, output_tokens) = match tool {
        Some(tool) => {
            let arguments = sample(&tool["parameters"], "value").to_string();
            // One token per streamed piece of arguments, as chat's tool answers count them.
            let pieces = split(&arguments).len() as u64;
            let name = tool["name"].as_str().unwrap_or_default().to_owned();
            (
                Item::Call { id: format!("fc_mock_{n}"), call_id: format!("call_mock_{n}"), name, arguments },
                pieces,
            )
        }
        None => {
            let text = echo(&summary);
            let words = count_words(&text);
            (Item::Message { id: format!("msg_mock_{n}"), text }, words)
        }
    };
    let answer = Answer {
        id: n,
        created_at: now_secs(),
        echoed: echoed_fields(&request, model),
        item,
        input_tokens,
        output_tokens,
    };
    if let Behavior::Slow(delay) = behavior {
        tokio::time::sleep(delay).await;
    }
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let mut events = answer.events();
        if let Some(n) = shape.cut_after {
            // Up to (not including) the (n+1)-th delta, so exactly n content chunks get out; with
            // fewer deltas, all but the last event (`response.completed`): a cut stream never
            // ends properly.
            let mut deltas = 0;
            let keep = events
                .iter()
                .position(|e| {
                    deltas += u32::from(is_delta(e));
                    deltas > n
                })
                .unwrap_or(events.len().saturating_sub(1));
            events.truncate(keep);
        }
        let frames: VecDeque<Bytes> = events
            .iter()
            .map(|e| Bytes::from(format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or_default())))
            .collect();
        let cut = shape.cut_after.is_some();
        return Ok(sse_response(MockBody::held_frames(frames, cut, shape.first_delay)));
    }
    Ok(json_response(MockBody::full(answer.object(true).to_string())))
}

/// A content chunk of a Responses stream: `response.output_text.delta`,
/// `response.function_call_arguments.delta`.
fn is_delta(event: &Value) -> bool {
    event["type"].as_str().is_some_and(|t| t.ends_with(".delta"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_whitespace() {
        assert_eq!(word_pieces("mock reply  to: a"), ["mock", " reply", "  to:", " a"]);
        assert_eq!(word_pieces(""), Vec::<&str>::new());
    }

    #[test]
    fn echo_cuts_the_user_text_and_lists_tool_outputs() {
        let summary = InputSummary {
            last_user_text: "x".repeat(50),
            outputs: vec![("call_1".to_owned(), "sunny".to_owned())],
            words: 0,
            ends_with_output: true,
        };
        assert_eq!(
            echo(&summary),
            format!("mock reply to: {} [function_call_output call_1: sunny]", "x".repeat(40))
        );
    }
}
