use super::context;
use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, ToolCall};
use crate::responses::spec_check::check_response;
use crate::responses::{ResponseStatus, render_response, usage_json};
use serde_json::json;

fn answer(text: &str, tool_calls: Vec<ToolCall>, finish: FinishReason, usage: Usage) -> ChatResponse {
    ChatResponse {
        id: "up".into(),
        model: "upstream-model".into(),
        text: text.into(),
        tool_calls,
        finish,
        usage,
    }
}

/// <https://platform.openai.com/docs/api-reference/responses/create>, example "Text input": the
/// response object as OpenAI shows it, with the gateway's ids.
#[test]
fn a_text_answer_is_the_documented_response_object() {
    let ctx = context(
        r#"{"model": "gpt-5.4", "input": "Tell me a three sentence bedtime story about a unicorn."}"#,
    );
    let text = "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.";
    let usage = Usage { input: 36, output: 87, ..Usage::default() };
    let rendered = render_response(&answer(text, Vec::new(), FinishReason::Stop, usage), &ctx);
    check_response(&rendered.response);
    assert_eq!(rendered.status, ResponseStatus::Completed);
    assert_eq!(
        rendered.response,
        json!({
            "id": "resp_abc",
            "object": "response",
            "created_at": 1_741_476_542,
            "status": "completed",
            "error": null,
            "incomplete_details": null,
            "instructions": null,
            "max_output_tokens": null,
            "model": "gpt-5.4",
            "output": [{
                "type": "message",
                "id": "msg_abc_0",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
            }],
            "parallel_tool_calls": true,
            "previous_response_id": null,
            "store": true,
            "temperature": null,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": null,
            "truncation": "disabled",
            "usage": {
                "input_tokens": 36,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 87,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 123
            },
            "metadata": {}
        })
    );
    assert_eq!(rendered.output, rendered.response["output"].as_array().unwrap().clone());
    assert!(rendered.response.get("output_text").is_none(), "an SDK convenience, not on the wire");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&rendered.body()).unwrap(), rendered.response);
}

/// <https://platform.openai.com/docs/api-reference/responses/create>, example "Functions": each
/// call is a `function_call` item whose `call_id` is the provider's.
#[test]
fn tool_calls_are_function_call_items_after_the_message() {
    let ctx = context(
        r#"{"model": "gpt-5.4", "input": "What is the weather like in Boston today?", "instructions": "Be brief.",
            "tools": [{"type": "function", "name": "get_current_weather", "parameters": {"type": "object"}}],
            "metadata": {"k": "v"}, "user": "u-1", "temperature": 1.0}"#,
    );
    let calls = vec![
        ToolCall {
            id: "call_unLAR8MvFNptuiZK6K6HCy5k".into(),
            name: "get_current_weather".into(),
            arguments: r#"{"location":"Boston, MA","unit":"celsius"}"#.into(),
        },
        ToolCall { id: "call_2".into(), name: "get_current_weather".into(), arguments: "{}".into() },
    ];
    let rendered =
        render_response(&answer("Checking.", calls, FinishReason::ToolCalls, Usage::default()), &ctx);
    check_response(&rendered.response);
    let output = &rendered.response["output"];
    assert_eq!(output[0]["id"], "msg_abc_0");
    assert_eq!(
        output[1],
        json!({"type": "function_call", "id": "fc_abc_1", "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
               "name": "get_current_weather", "arguments": "{\"location\":\"Boston, MA\",\"unit\":\"celsius\"}",
               "status": "completed"})
    );
    assert_eq!(output[2]["id"], "fc_abc_2");
    assert_eq!(rendered.response["instructions"], "Be brief.");
    assert_eq!(
        rendered.response["tools"],
        json!([{"type": "function", "name": "get_current_weather", "description": null, "parameters": {"type": "object"}, "strict": null}])
    );
    assert_eq!(
        (&rendered.response["metadata"], &rendered.response["user"]),
        (&json!({"k": "v"}), &json!("u-1"))
    );
    assert_eq!(rendered.response["temperature"], 1.0);

    let only_calls = render_response(
        &answer(
            "",
            vec![ToolCall { id: "c".into(), name: "f".into(), arguments: "{}".into() }],
            FinishReason::ToolCalls,
            Usage::default(),
        ),
        &ctx,
    );
    assert_eq!(only_calls.output.len(), 1, "no empty message before the calls");
    assert_eq!(only_calls.output[0]["id"], "fc_abc_0");
}

/// `status: "incomplete"` with `incomplete_details.reason`
/// (<https://platform.openai.com/docs/guides/reasoning#allocating-space-for-reasoning>).
#[test]
fn a_cut_off_answer_is_incomplete_and_says_why() {
    let ctx = context(r#"{"model": "m", "input": "x", "max_output_tokens": 16}"#);
    let rendered =
        render_response(&answer("Once upon a", Vec::new(), FinishReason::Length, Usage::default()), &ctx);
    check_response(&rendered.response);
    assert_eq!(rendered.status, ResponseStatus::Incomplete);
    assert_eq!(rendered.response["status"], "incomplete");
    assert_eq!(rendered.response["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(rendered.response["max_output_tokens"], 16);
    assert_eq!(rendered.output[0]["status"], "incomplete", "the item the limit cut off");

    let filtered =
        render_response(&answer("", Vec::new(), FinishReason::ContentFilter, Usage::default()), &ctx);
    assert_eq!(filtered.response["incomplete_details"], json!({"reason": "content_filter"}));
    assert_eq!(filtered.output[0]["content"][0]["text"], "", "an empty answer is still one message");
}

/// <https://platform.openai.com/docs/api-reference/responses/object#responses/object-usage>:
/// cached tokens are part of the input and reasoning tokens part of the output, as in the hub.
#[test]
fn usage_is_exact() {
    let usage = Usage { input: 2006, output: 300, cache_read: 1920, cache_write: 64, reasoning: 256 };
    assert_eq!(
        usage_json(&usage),
        json!({
            "input_tokens": 2006,
            "input_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 64},
            "output_tokens": 300,
            "output_tokens_details": {"reasoning_tokens": 256},
            "total_tokens": 2306
        })
    );
    let rendered = render_response(
        &answer("a", Vec::new(), FinishReason::Stop, usage),
        &context(r#"{"model": "m", "input": "x"}"#),
    );
    assert_eq!(rendered.response["usage"], usage_json(&usage));
}
