//! Test support: what OpenAI's OpenAPI spec requires of a response object and of each streaming
//! event this module sends, so rendered output is checked against the spec without its 3 MB.
//!
//! Copied from `components.schemas` of the spec (openai/openai-openapi, the `required` lists of
//! `Response` (with `ModelResponseProperties` and `ResponseProperties`), `ResponseUsage`,
//! `ResponseError`, `OutputMessage`, `OutputTextContent`, `FunctionToolCall`, `FunctionTool` and
//! the `ResponseStreamEvent` variants named in [`EVENTS`]) and the enums of `Response.status`,
//! `incomplete_details.reason` and `ResponseErrorCode`. The full check, by the official SDK's
//! models, is `tests/py/responses_events.py`.

use serde_json::Value;

const RESPONSE: &[&str] = &[
    "id",
    "object",
    "created_at",
    "error",
    "incomplete_details",
    "instructions",
    "model",
    "tools",
    "output",
    "parallel_tool_calls",
    "metadata",
    "tool_choice",
    "temperature",
    "top_p",
];
const STATUSES: &[&str] = &["completed", "failed", "in_progress", "cancelled", "queued", "incomplete"];
const INCOMPLETE_REASONS: &[&str] = &["max_output_tokens", "content_filter"];
/// `ResponseErrorCode`, the codes a provider's failure can map to (the others are OpenAI's own
/// image and policy checks).
const ERROR_CODES: &[&str] = &["server_error", "rate_limit_exceeded"];
const USAGE: &[&str] =
    &["input_tokens", "input_tokens_details", "output_tokens", "output_tokens_details", "total_tokens"];
const OUTPUT_MESSAGE: &[&str] = &["id", "type", "role", "content", "status"];
const OUTPUT_TEXT: &[&str] = &["type", "text", "annotations", "logprobs"];
const FUNCTION_CALL: &[&str] = &["type", "call_id", "name", "arguments"];
const FUNCTION_TOOL: &[&str] = &["type", "name", "strict", "parameters"];

/// The `ResponseStreamEvent` variants this module sends, by `type`, with their required properties.
const EVENTS: &[(&str, &[&str])] = &[
    ("response.created", &["type", "response", "sequence_number"]),
    ("response.in_progress", &["type", "response", "sequence_number"]),
    ("response.completed", &["type", "response", "sequence_number"]),
    ("response.incomplete", &["type", "response", "sequence_number"]),
    ("response.failed", &["type", "response", "sequence_number"]),
    ("response.output_item.added", &["type", "output_index", "item", "sequence_number"]),
    ("response.output_item.done", &["type", "output_index", "item", "sequence_number"]),
    (
        "response.content_part.added",
        &["type", "item_id", "output_index", "content_index", "part", "sequence_number"],
    ),
    (
        "response.content_part.done",
        &["type", "item_id", "output_index", "content_index", "part", "sequence_number"],
    ),
    (
        "response.output_text.delta",
        &["type", "item_id", "output_index", "content_index", "delta", "sequence_number", "logprobs"],
    ),
    (
        "response.output_text.done",
        &["type", "item_id", "output_index", "content_index", "text", "sequence_number", "logprobs"],
    ),
    (
        "response.function_call_arguments.delta",
        &["type", "item_id", "output_index", "delta", "sequence_number"],
    ),
    (
        "response.function_call_arguments.done",
        &["type", "item_id", "name", "output_index", "arguments", "sequence_number"],
    ),
    ("error", &["type", "code", "message", "param", "sequence_number"]),
];

fn require(what: &str, value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "{what} lacks the required '{key}': {value}");
    }
}

/// A response object as the spec's `Response` schema requires it.
pub(super) fn check_response(response: &Value) {
    require("response", response, RESPONSE);
    assert_eq!(response["object"], "response");
    let status = response["status"].as_str().unwrap_or_default();
    assert!(STATUSES.contains(&status), "status '{status}'");
    match &response["incomplete_details"] {
        Value::Null => assert_ne!(status, "incomplete", "an incomplete response says why"),
        details => {
            let reason = details["reason"].as_str().unwrap_or_default();
            assert!(INCOMPLETE_REASONS.contains(&reason), "incomplete reason '{reason}'");
        }
    }
    match &response["error"] {
        Value::Null => assert_ne!(status, "failed", "a failed response has its error"),
        error => {
            let code = error["code"].as_str().unwrap_or_default();
            assert!(ERROR_CODES.contains(&code), "error code '{code}' is not a ResponseErrorCode");
            assert!(error["message"].is_string(), "{error}");
        }
    }
    if let Some(usage) = response.get("usage") {
        require("usage", usage, USAGE);
        require(
            "usage.input_tokens_details",
            &usage["input_tokens_details"],
            &["cached_tokens", "cache_write_tokens"],
        );
        require("usage.output_tokens_details", &usage["output_tokens_details"], &["reasoning_tokens"]);
    }
    for tool in response["tools"].as_array().into_iter().flatten() {
        require("tool", tool, FUNCTION_TOOL);
    }
    assert!(response["metadata"].is_object(), "metadata is a map");
    for item in response["output"].as_array().unwrap_or_else(|| panic!("output is a list")) {
        check_item(item);
    }
}

/// An output item (a message or a function call).
pub(super) fn check_item(item: &Value) {
    match item["type"].as_str() {
        Some("message") => {
            require("message item", item, OUTPUT_MESSAGE);
            assert_eq!(item["role"], "assistant");
            for part in item["content"].as_array().unwrap_or_else(|| panic!("content is a list")) {
                require("output_text part", part, OUTPUT_TEXT);
            }
        }
        Some("function_call") => require("function_call item", item, FUNCTION_CALL),
        other => panic!("an output item of type {other:?}"),
    }
    let status = item["status"].as_str().unwrap_or_default();
    assert!(["in_progress", "completed", "incomplete"].contains(&status), "item status '{status}'");
}

/// One streaming event, and what it nests.
pub(super) fn check_event(event: &Value) {
    let kind = event["type"].as_str().unwrap_or_default();
    let Some((_, required)) = EVENTS.iter().find(|(name, _)| *name == kind) else {
        panic!("'{kind}' is not a ResponseStreamEvent this module may send: {event}");
    };
    require(kind, event, required);
    if let Some(response) = event.get("response") {
        check_response(response);
    }
    if let Some(item) = event.get("item") {
        check_item(item);
    }
    if let Some(part) = event.get("part") {
        require("part", part, OUTPUT_TEXT);
    }
}
