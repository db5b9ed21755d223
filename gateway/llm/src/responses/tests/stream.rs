use super::context;
use crate::Usage;
use crate::hub::{ChatResponse, FinishReason, StreamError, StreamEvent, ToolCall};
use crate::responses::spec_check::check_event;
use crate::responses::{ResponseContext, ResponseStatus, ResponsesRenderer, render_response};
use crate::stream::{ClientRenderer, StreamFailure};
use bytes::Bytes;
use serde_json::{Value, json};

/// The events written, parsed, each checked for its SSE framing and against the spec.
fn parsed(out: &[Bytes]) -> Vec<Value> {
    out.iter()
        .map(|frame| {
            let text = std::str::from_utf8(frame).unwrap();
            let (head, data) = text.strip_suffix("\n\n").unwrap().split_once('\n').unwrap();
            let event: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(
                head.strip_prefix("event: "),
                event["type"].as_str(),
                "the SSE event name is the type"
            );
            check_event(&event);
            event
        })
        .collect()
}

fn run(ctx: &ResponseContext, events: &[StreamEvent]) -> (Vec<Value>, ResponsesRenderer) {
    let mut renderer = ResponsesRenderer::new(ctx.clone());
    let mut out = Vec::new();
    for event in events {
        renderer.render(event, &mut out);
    }
    renderer.end(&mut out);
    let events = parsed(&out);
    let numbers: Vec<u64> = events.iter().map(|e| e["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>(), "sequence numbers count from 0");
    (events, renderer)
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn ctx() -> ResponseContext {
    context(r#"{"model": "gpt-5.4", "input": "Weather in Paris?", "stream": true}"#)
}

/// Text, then a tool call, in the order of <https://platform.openai.com/docs/api-reference/responses-streaming>;
/// the final object equals the whole-answer rendering of the same answer.
#[test]
fn text_then_a_tool_call_in_the_documented_order() {
    let usage = Usage { input: 25, output: 64, cache_read: 5, ..Usage::default() };
    let (events, renderer) = run(
        &ctx(),
        &[
            StreamEvent::Start { id: "msg_up".into(), model: "claude-x".into() },
            StreamEvent::Text("Check".into()),
            StreamEvent::Text("ing".into()),
            StreamEvent::ToolCallStart { index: 0, id: "toolu_A".into(), name: "get_weather".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{\"city\":".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "\"Paris\"}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(usage),
        ],
    );
    assert_eq!(
        types(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(events[0]["response"]["model"], "gpt-5.4", "the client's model name, not the provider's");
    assert_eq!(
        events[2]["item"],
        json!({"id": "msg_abc_0", "type": "message", "status": "in_progress", "role": "assistant", "content": []})
    );
    assert_eq!(
        events[4],
        json!({"type": "response.output_text.delta", "item_id": "msg_abc_0", "output_index": 0, "content_index": 0,
               "delta": "Check", "logprobs": [], "sequence_number": 4})
    );
    assert_eq!(events[6]["text"], "Checking");
    assert_eq!(events[8]["item"]["status"], "completed");
    assert_eq!(
        events[9]["item"],
        json!({"id": "fc_abc_1", "type": "function_call", "status": "in_progress", "call_id": "toolu_A",
               "name": "get_weather", "arguments": ""})
    );
    assert_eq!(
        (events[10]["item_id"].as_str(), events[10]["output_index"].as_u64()),
        (Some("fc_abc_1"), Some(1))
    );
    assert_eq!(events[12]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(events[12]["name"], "get_weather");

    let final_object = &events[14]["response"];
    let whole = render_response(
        &ChatResponse {
            id: "msg_up".into(),
            model: "claude-x".into(),
            text: "Checking".into(),
            tool_calls: vec![ToolCall {
                id: "toolu_A".into(),
                name: "get_weather".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            }],
            finish: FinishReason::ToolCalls,
            usage,
        },
        &ctx(),
    );
    assert_eq!(final_object, &whole.response, "streamed and whole renderings agree");
    assert_eq!(renderer.finished(), Some(&whole), "kept for the conversation store");
    assert_eq!(
        final_object["usage"]["input_tokens_details"]["cached_tokens"], 5,
        "usage that came after the finish"
    );
}

/// Two calls, one after the other, as providers stream parallel calls.
#[test]
fn parallel_calls_are_items_one_after_the_other() {
    let (events, renderer) = run(
        &ctx(),
        &[
            StreamEvent::ToolCallStart { index: 0, id: "c1".into(), name: "w".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{}".into() },
            StreamEvent::ToolCallStart { index: 1, id: "c2".into(), name: "w".into() },
            StreamEvent::ToolCallArguments { index: 1, fragment: "".into() },
            StreamEvent::ToolCallArguments { index: 1, fragment: "{\"a\":1}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ],
    );
    let done: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] == "response.output_item.done")
        .map(|e| (e["item"]["id"].as_str().unwrap(), e["item"]["arguments"].as_str().unwrap()))
        .collect();
    assert_eq!(done, [("fc_abc_0", "{}"), ("fc_abc_1", "{\"a\":1}")]);
    assert_eq!(
        events.iter().filter(|e| e["type"] == "response.function_call_arguments.delta").count(),
        2,
        "no empty deltas"
    );
    let calls = vec![
        ToolCall { id: "c1".into(), name: "w".into(), arguments: "{}".into() },
        ToolCall { id: "c2".into(), name: "w".into(), arguments: "{\"a\":1}".into() },
    ];
    let whole = ChatResponse {
        id: String::new(),
        model: String::new(),
        text: String::new(),
        tool_calls: calls,
        finish: FinishReason::ToolCalls,
        usage: Usage::default(),
    };
    assert_eq!(renderer.finished(), Some(&render_response(&whole, &ctx())));
}

/// The token limit: `response.incomplete` (<https://platform.openai.com/docs/api-reference/responses-streaming/response/incomplete>).
#[test]
fn the_token_limit_ends_with_response_incomplete() {
    let (events, mut renderer) = run(
        &ctx(),
        &[
            StreamEvent::Text("Once upon".into()),
            StreamEvent::Finish(FinishReason::Length),
            StreamEvent::Usage(Usage { input: 3, output: 16, ..Usage::default() }),
        ],
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.incomplete");
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(last["response"]["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!(last["response"]["usage"]["output_tokens"], 16);
    let item_done = events.iter().find(|e| e["type"] == "response.output_item.done").unwrap();
    assert_eq!(item_done["item"]["status"], "incomplete");
    let whole = ChatResponse {
        id: String::new(),
        model: String::new(),
        text: "Once upon".into(),
        tool_calls: Vec::new(),
        finish: FinishReason::Length,
        usage: Usage { input: 3, output: 16, ..Usage::default() },
    };
    let stored = renderer.take_finished().unwrap();
    assert_eq!(stored, render_response(&whole, &ctx()));
    assert_eq!(stored.status, ResponseStatus::Incomplete);
}

#[test]
fn an_empty_answer_is_one_empty_message_both_ways() {
    let (events, renderer) = run(&ctx(), &[StreamEvent::Finish(FinishReason::Stop)]);
    assert_eq!(events.len(), 8, "{:?}", types(&events));
    let whole = ChatResponse {
        id: String::new(),
        model: String::new(),
        text: String::new(),
        tool_calls: Vec::new(),
        finish: FinishReason::Stop,
        usage: Usage::default(),
    };
    assert_eq!(renderer.finished(), Some(&render_response(&whole, &ctx())));
}

/// A provider's error inside the stream: `error`, then `response.failed` with the error set
/// (<https://platform.openai.com/docs/api-reference/responses-streaming/response/failed>); nothing after.
#[test]
fn a_provider_error_fails_the_response_and_ends_the_stream() {
    let mut renderer = ResponsesRenderer::new(ctx());
    let mut out = Vec::new();
    renderer.render(&StreamEvent::Text("Partial".into()), &mut out);
    renderer.render(&StreamEvent::Usage(Usage { input: 4, output: 1, ..Usage::default() }), &mut out);
    renderer.render(
        &StreamEvent::Error(StreamError { kind: "overloaded_error".into(), message: "Overloaded".into() }),
        &mut out,
    );
    let before = out.len();
    renderer.render(&StreamEvent::Text("more".into()), &mut out);
    renderer.end(&mut out);
    renderer.fail(StreamFailure::BrokenOff, &mut out);
    assert_eq!(out.len(), before, "nothing after response.failed");
    let events = parsed(&out);
    let n = events.len();
    assert_eq!(types(&events)[n - 2..], ["error", "response.failed"]);
    assert_eq!(
        events[n - 2],
        json!({"type": "error", "code": "overloaded_error", "message": "the provider reported an error: Overloaded",
               "param": null, "sequence_number": n - 2})
    );
    let failed = &events[n - 1]["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        json!({"code": "server_error", "message": "the provider reported an error: Overloaded"})
    );
    assert_eq!(failed["output"][0]["status"], "incomplete", "the message it cut off");
    assert_eq!(failed["output"][0]["content"][0]["text"], "Partial");
    assert_eq!(failed["usage"]["input_tokens"], 4);
    let stored = renderer.finished().unwrap();
    assert_eq!((stored.status, &stored.response), (ResponseStatus::Failed, failed));

    let mut limited = ResponsesRenderer::new(ctx());
    let mut out = Vec::new();
    limited.render(
        &StreamEvent::Error(StreamError { kind: "rate_limit_error".into(), message: "slow down".into() }),
        &mut out,
    );
    assert_eq!(parsed(&out)[3]["response"]["error"]["code"], "rate_limit_exceeded");
}

#[test]
fn a_broken_stream_before_any_event_still_opens_then_fails() {
    let mut renderer = ResponsesRenderer::new(ctx());
    let mut out = Vec::new();
    renderer.fail(StreamFailure::Stalled, &mut out);
    renderer.fail(StreamFailure::Stalled, &mut out);
    let events = parsed(&out);
    assert_eq!(types(&events), ["response.created", "response.in_progress", "error", "response.failed"]);
    assert_eq!(events[2]["code"], "upstream_stream_error");
    assert_eq!(events[3]["response"]["error"]["message"], "the upstream stream stalled");
}

#[test]
fn arguments_of_a_call_already_finished_fail_the_stream() {
    let mut renderer = ResponsesRenderer::new(ctx());
    let mut out = Vec::new();
    for event in [
        StreamEvent::ToolCallStart { index: 0, id: "c1".into(), name: "w".into() },
        StreamEvent::ToolCallStart { index: 1, id: "c2".into(), name: "w".into() },
        StreamEvent::ToolCallArguments { index: 0, fragment: "{}".into() },
    ] {
        renderer.render(&event, &mut out);
    }
    let events = parsed(&out);
    let n = events.len();
    assert_eq!(types(&events)[n - 2..], ["error", "response.failed"]);
    assert_eq!(events[n - 2]["message"], "the provider interleaved the arguments of two tool calls");
}
