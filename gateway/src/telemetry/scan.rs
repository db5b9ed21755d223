//! What a span records from bodies, read only when tracing is on: the sampling parameters of the
//! request, and from the answer as the client receives it (a whole body, or each stream frame)
//! the model that answered and why it stopped.
//!
//! The answer is read in the client's dialect, after translation, so one reader serves every
//! provider: OpenAI chat (`"model"`, `"finish_reason"`), Anthropic Messages (`"model"`,
//! `"stop_reason"`) and Responses (`"model"`). These are byte searches, not parses: the
//! gateway's renderers and OpenAI-compatible servers write compact JSON, and a quote inside a
//! JSON string is escaped, so `"finish_reason":"` cannot match inside content.

use memchr::memmem::Finder;
use serde::Deserialize;
use serde_json::Value;
use std::sync::LazyLock;

/// The field an answer in the client's dialect says why it stopped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopField {
    /// OpenAI chat: `"finish_reason"`, one per choice.
    FinishReason,
    /// Anthropic Messages: `"stop_reason"`.
    StopReason,
    /// Responses and embeddings answers have none.
    None,
}

/// Finish reasons in OpenAI's words (the vocabulary the GenAI conventions' examples use);
/// Anthropic's are mapped onto them. Only the dialect's own field is searched for: each search
/// reads the whole frame.
pub fn finish_reasons(frame: &[u8], field: StopField, found: &mut Vec<&'static str>) {
    // Searchers built once: building one costs more than searching a frame with it.
    static FINDERS: LazyLock<[Finder<'static>; 2]> =
        LazyLock::new(|| [Finder::new(b"\"finish_reason\":\""), Finder::new(b"\"stop_reason\":\"")]);
    let finder = match field {
        StopField::FinishReason => &FINDERS[0],
        StopField::StopReason => &FINDERS[1],
        StopField::None => return,
    };
    let pattern = finder.needle();
    for at in finder.find_iter(frame) {
        let rest = &frame[at + pattern.len()..];
        let Some(end) = memchr::memchr(b'"', rest) else { continue };
        if let Some(reason) = normalize(&rest[..end]) {
            found.push(reason);
        }
    }
}

fn normalize(reason: &[u8]) -> Option<&'static str> {
    Some(match reason {
        b"stop" | b"end_turn" | b"stop_sequence" | b"pause_turn" => "stop",
        b"length" | b"max_tokens" | b"model_context_window_exceeded" => "length",
        b"tool_calls" | b"tool_use" | b"function_call" => "tool_calls",
        b"content_filter" | b"refusal" => "content_filter",
        _ => return None,
    })
}

/// The first `"model":"..."` of an answer: the top-level model of a chat completion or chunk,
/// the `message.model` of Anthropic's `message_start`, the `response.model` of Responses.
pub fn response_model(frame: &[u8]) -> Option<&str> {
    static FINDER: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"model\":\""));
    let at = FINDER.find(frame)?;
    let rest = &frame[at + FINDER.needle().len()..];
    let end = memchr::memchr(b'"', rest)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The request's sampling parameters the conventions name (`gen_ai.request.*`).
#[derive(Deserialize, Default, Debug, PartialEq)]
pub struct RequestParams {
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// OpenAI chat's newer name for `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<u64>,
    /// The Responses API's.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
}

impl RequestParams {
    pub fn read(body: &[u8]) -> RequestParams {
        serde_json::from_slice(body).unwrap_or_default()
    }

    /// The same from a body already split into members (`member` gives one's raw JSON text),
    /// so the body is not read a second time.
    pub fn from_members<'m>(member: impl Fn(&str) -> Option<&'m str>) -> RequestParams {
        let count = |key: &str| member(key).and_then(|raw| raw.trim().parse::<u64>().ok());
        let real = |key: &str| member(key).and_then(|raw| raw.trim().parse::<f64>().ok());
        RequestParams {
            max_tokens: count("max_tokens"),
            max_completion_tokens: count("max_completion_tokens"),
            max_output_tokens: count("max_output_tokens"),
            temperature: real("temperature"),
            top_p: real("top_p"),
        }
    }

    pub fn max_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens).or(self.max_output_tokens)
    }
}

/// The request's messages in the conventions' shape (`gen_ai.input.messages`):
/// `[{"role":..,"parts":[{"type":"text","content":..}]}]`. Read only when content capture is on.
pub fn input_messages(body: &[u8]) -> Option<String> {
    let request: Value = serde_json::from_slice(body).ok()?;
    let mut messages = Vec::new();
    // Anthropic's system prompt is a field of its own.
    if let Some(system) = request.get("system") {
        messages.push(message("system", system));
    }
    if let Some(list) = request.get("messages").and_then(Value::as_array) {
        for m in list {
            let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
            messages.push(message(role, m.get("content").unwrap_or(&Value::Null)));
        }
    } else if let Some(input) = request.get("input") {
        // Responses: a string, or a list of items; embeddings: a string or a list of them.
        match input {
            Value::Array(items) if items.iter().all(|i| i.get("role").is_some()) => {
                for item in items {
                    let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                    messages.push(message(role, item.get("content").unwrap_or(&Value::Null)));
                }
            }
            other => messages.push(message("user", other)),
        }
    }
    if let Some(instructions) = request.get("instructions").filter(|v| v.is_string()) {
        messages.insert(0, message("system", instructions));
    }
    serde_json::to_string(&messages).ok()
}

fn message(role: &str, content: &Value) -> Value {
    serde_json::json!({ "role": role, "parts": parts(content) })
}

/// Content as the conventions' parts: text parts as `{"type":"text","content":..}`, anything
/// else kept as the client sent it.
fn parts(content: &Value) -> Vec<Value> {
    match content {
        Value::String(text) => vec![serde_json::json!({ "type": "text", "content": text })],
        Value::Array(items) => items
            .iter()
            .map(|item| match item.get("text").and_then(Value::as_str) {
                Some(text) => serde_json::json!({ "type": "text", "content": text }),
                None if item.is_string() => serde_json::json!({ "type": "text", "content": item }),
                None => item.clone(),
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The answer's text and tool calls as the client receives them, gathered over a whole body or
/// the frames of a stream (content capture only).
#[derive(Default, Debug)]
pub struct Output {
    text: String,
    tool_calls: Vec<Value>,
}

impl Output {
    /// Reads a whole JSON body, or a stream frame's `data:` lines.
    pub fn read(&mut self, frame: &[u8]) {
        if frame.first() == Some(&b'{') {
            if let Ok(value) = serde_json::from_slice::<Value>(frame) {
                self.read_value(&value);
            }
            return;
        }
        for line in frame.split(|&b| b == b'\n') {
            let Some(data) = line.strip_prefix(b"data:") else { continue };
            if let Ok(value) = serde_json::from_slice::<Value>(data.trim_ascii()) {
                self.read_value(&value);
            }
        }
    }

    fn read_value(&mut self, value: &Value) {
        // OpenAI chat: a completion's message, or a chunk's delta.
        if let Some(choice) = value.get("choices").and_then(|c| c.get(0)) {
            let message = choice.get("message").or_else(|| choice.get("delta"));
            if let Some(text) = message.and_then(|m| m.get("content")).and_then(Value::as_str) {
                self.text.push_str(text);
            }
            if let Some(calls) = message.and_then(|m| m.get("tool_calls")).and_then(Value::as_array) {
                self.tool_calls.extend(calls.iter().filter(|c| c.get("id").is_some()).cloned());
            }
            return;
        }
        // Anthropic: a message's content blocks, or a stream's text deltas.
        if let Some(blocks) = value.get("content").and_then(Value::as_array) {
            for block in blocks {
                match block.get("text").and_then(Value::as_str) {
                    Some(text) => self.text.push_str(text),
                    None if block.get("type").and_then(Value::as_str) == Some("tool_use") => {
                        self.tool_calls.push(block.clone());
                    }
                    None => {}
                }
            }
        } else if let Some(text) = value.get("delta").and_then(|d| d.get("text")).and_then(Value::as_str) {
            self.text.push_str(text);
        } else if value.get("type").and_then(Value::as_str) == Some("response.output_text.delta")
            && let Some(text) = value.get("delta").and_then(Value::as_str)
        {
            // Responses streams; a whole Responses body carries `output_text`.
            self.text.push_str(text);
        } else if let Some(text) = value.get("output_text").and_then(Value::as_str) {
            self.text.push_str(text);
        }
    }

    /// `gen_ai.output.messages`: one assistant message with its parts.
    pub fn messages(&self, finish_reason: Option<&str>) -> String {
        let mut parts = Vec::new();
        if !self.text.is_empty() {
            parts.push(serde_json::json!({ "type": "text", "content": self.text }));
        }
        for call in &self.tool_calls {
            let function = call.get("function");
            parts.push(serde_json::json!({
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.and_then(|f| f.get("name")).or_else(|| call.get("name")),
                "arguments": function.and_then(|f| f.get("arguments")).or_else(|| call.get("input")),
            }));
        }
        let message = serde_json::json!([{
            "role": "assistant", "parts": parts, "finish_reason": finish_reason.unwrap_or("stop"),
        }]);
        message.to_string()
    }
}
