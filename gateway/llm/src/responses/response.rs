//! Hub answers rendered as a Responses API response object.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses/object>. The object is
//! built by one function for both ways an answer arrives, whole ([`render_response`]) or
//! streamed (`stream.rs`), so a stored response reads the same either way.

use super::request::{Echo, ResponsesRequest};
use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use bytes::Bytes;
use serde_json::{Value, json};

/// What the gateway decides about a response: its id, its time, the model name the client
/// used, and the request settings it repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseContext {
    /// `resp_` and a suffix unique to this response, chosen by the caller; item ids are derived
    /// from it (`msg_<suffix>_<n>`, `fc_<suffix>_<n>`), so this crate needs no randomness.
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The public model name.
    pub model: String,
    pub echo: Echo,
}

impl ResponsesRequest {
    /// The context of the response to this request.
    pub fn context(&self, id: impl Into<String>, created_at: i64) -> ResponseContext {
        ResponseContext { id: id.into(), created_at, model: self.model.clone(), echo: self.echo.clone() }
    }
}

impl ResponseContext {
    /// The id of output item `index`: `msg_…` for a message, `fc_…` for a function call.
    pub(crate) fn item_id(&self, prefix: &str, index: usize) -> String {
        let suffix = self.id.strip_prefix("resp_").unwrap_or(&self.id);
        format!("{prefix}_{suffix}_{index}")
    }
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    Completed,
    /// Cut short by the token limit or a content filter (`incomplete_details.reason`).
    Incomplete,
    /// The provider's stream broke or reported an error (`error`).
    Failed,
}

impl ResponseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Completed => "completed",
            ResponseStatus::Incomplete => "incomplete",
            ResponseStatus::Failed => "failed",
        }
    }
}

/// A finished response: the object the client receives, and its output items for the
/// conversation store (appended to the history a later `previous_response_id` continues).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub status: ResponseStatus,
    /// The response object (`object: "response"`).
    pub response: Value,
    /// `response.output`.
    pub output: Vec<Value>,
}

impl Rendered {
    /// The response object as a body.
    pub fn body(&self) -> Bytes {
        Bytes::from(self.response.to_string())
    }
}

/// A complete answer as a response object.
pub fn render_response(response: &ChatResponse, ctx: &ResponseContext) -> Rendered {
    let item_status = if incomplete_reason(response.finish).is_some() { "incomplete" } else { "completed" };
    let mut output = Vec::with_capacity(response.tool_calls.len() + 1);
    if !response.text.is_empty() || response.tool_calls.is_empty() {
        output.push(message_item(&ctx.item_id("msg", 0), &response.text, "completed"));
    }
    for call in &response.tool_calls {
        output.push(function_call_item(&ctx.item_id("fc", output.len()), call, "completed"));
    }
    // The item the limit or filter cut off is the last one.
    if let Some(last) = output.last_mut() {
        last["status"] = Value::from(item_status);
    }
    finished(ctx, output, Some(response.finish), &response.usage)
}

/// The final object of a response that ended with `finish` (or no reason: a natural end).
pub(crate) fn finished(
    ctx: &ResponseContext,
    output: Vec<Value>,
    finish: Option<FinishReason>,
    usage: &Usage,
) -> Rendered {
    let reason = finish.and_then(incomplete_reason);
    let status = if reason.is_some() { ResponseStatus::Incomplete } else { ResponseStatus::Completed };
    let mut response = response_object(ctx, status.as_str(), &output);
    response["usage"] = usage_json(usage);
    if let Some(reason) = reason {
        response["incomplete_details"] = json!({"reason": reason});
    }
    Rendered { status, response, output }
}

/// The object of a response that failed with `error` (`{code, message}`).
pub(crate) fn failed(ctx: &ResponseContext, output: Vec<Value>, usage: &Usage, error: Value) -> Rendered {
    let mut response = response_object(ctx, ResponseStatus::Failed.as_str(), &output);
    response["usage"] = usage_json(usage);
    response["error"] = error;
    Rendered { status: ResponseStatus::Failed, response, output }
}

/// `incomplete_details.reason` for a finish that cut the answer short.
fn incomplete_reason(finish: FinishReason) -> Option<&'static str> {
    match finish {
        FinishReason::Length => Some("max_output_tokens"),
        FinishReason::ContentFilter => Some("content_filter"),
        FinishReason::Stop | FinishReason::ToolCalls => None,
    }
}

/// The response object with `status` and `output`, without usage (a response in progress has
/// none yet). Every property the object schema requires is present, `null` where unset.
pub(crate) fn response_object(ctx: &ResponseContext, status: &str, output: &[Value]) -> Value {
    let echo = &ctx.echo;
    let mut object = json!({
        "id": ctx.id,
        "object": "response",
        "created_at": ctx.created_at,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": echo.instructions,
        "max_output_tokens": echo.max_output_tokens,
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": echo.parallel_tool_calls,
        "previous_response_id": echo.previous_response_id,
        "store": echo.store,
        "temperature": echo.temperature,
        "text": echo.text,
        "tool_choice": echo.tool_choice,
        "tools": echo.tools,
        "top_p": echo.top_p,
        "truncation": "disabled",
        "metadata": echo.metadata,
    });
    // `user` is a string in the schema, not nullable: present only when given.
    if let Some(user) = &echo.user {
        object["user"] = Value::from(user.as_str());
    }
    object
}

/// A `message` output item with one `output_text` part.
pub(crate) fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({
        "id": id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [output_text(text)],
    })
}

/// An `output_text` content part (no annotations or log probabilities: no backend here gives any).
pub(crate) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `function_call` output item; `call.id` is the provider's call id, which the client echoes
/// back in its `function_call_output`.
pub(crate) fn function_call_item(id: &str, call: &ToolCall, status: &str) -> Value {
    json!({
        "id": id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    })
}

/// The `usage` object (<https://platform.openai.com/docs/api-reference/responses/object#responses/object-usage>):
/// the hub counts cached and reasoning tokens as parts of input and output, as this API does.
pub fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input,
        "input_tokens_details": { "cached_tokens": usage.cache_read, "cache_write_tokens": usage.cache_write },
        "output_tokens": usage.output,
        "output_tokens_details": { "reasoning_tokens": usage.reasoning },
        "total_tokens": usage.total(),
    })
}
