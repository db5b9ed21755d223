//! The built-in mock calls tools for OpenAI chat clients: a call built from the tool's schema,
//! plain and streamed the way OpenAI streams one, and a text answer showing the tool result
//! arrived. Wire shapes follow OpenAI's function calling guide
//! (https://platform.openai.com/docs/guides/function-calling, its streaming section) and the chat
//! streaming reference (https://platform.openai.com/docs/api-reference/chat-streaming).

pub mod support;

use serde_json::{Value, json};
use support::*;

const DEV_KEY: &str = "sk-switchboard-dev";
const QUESTION: &str = "What is the weather in Paris?";

fn tools() -> Value {
    json!([
        {"type": "function", "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["F", "C"]},
                    "days": {"type": "integer"}},
                "required": ["city", "unit"],
            },
        }},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
    ])
}

fn question(extra: Value) -> Value {
    let mut body =
        json!({"model": "mock", "messages": [{"role": "user", "content": QUESTION}], "tools": tools()});
    for (key, value) in extra.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    body
}

async fn chat(gateway: &Gateway, body: &Value) -> TestResponse {
    let (name, value) = bearer(DEV_KEY);
    send("POST", &gateway.url("/v1/chat/completions"), &[(name, value.as_str())], body.to_string()).await
}

/// The chunks of a streamed answer, after checking it ends with `[DONE]`.
#[expect(clippy::unwrap_used, reason = "test helper: a chunk that is not JSON fails the test")]
fn chunks(response: &TestResponse) -> Vec<Value> {
    assert_eq!(response.status, 200, "{}", response.text());
    let mut events = sse_data(&response.text());
    assert_eq!(events.pop().as_deref(), Some("[DONE]"), "{}", response.text());
    events.iter().map(|event| serde_json::from_str(event).unwrap()).collect()
}

#[tokio::test]
async fn a_tool_call_plain_and_streamed_carries_the_same_arguments() {
    let gateway = Gateway::start(None, &[]);
    let plain = chat(&gateway, &question(json!({}))).await;
    assert_eq!(plain.status, 200, "{}", plain.text());
    let plain = plain.json();
    let choice = &plain["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{plain}");
    assert_eq!(choice["message"]["content"], Value::Null);
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "one call even with two tools offered: {plain}");
    assert_eq!(
        (&calls[0]["type"], &calls[0]["function"]["name"]),
        (&json!("function"), &json!("get_weather"))
    );
    let id = calls[0]["id"].as_str().unwrap();
    let number = plain["id"].as_str().unwrap().strip_prefix("chatcmpl-mock-").unwrap();
    assert_eq!(id, format!("call_mock_{number}"));
    let arguments = calls[0]["function"]["arguments"].as_str().unwrap();
    // Required properties only, valued by type ("mock"; an enum's first value).
    assert_eq!(serde_json::from_str::<Value>(arguments).unwrap(), json!({"city": "mock", "unit": "F"}));
    assert_eq!(plain["usage"]["prompt_tokens"], 6);
    let output = plain["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(output > 0, "{plain}");

    let streamed =
        chat(&gateway, &question(json!({"stream": true, "stream_options": {"include_usage": true}}))).await;
    let chunks = chunks(&streamed);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let at =
        chunks.iter().position(|chunk| chunk["choices"][0]["delta"].get("tool_calls").is_some()).unwrap();
    let start = &chunks[at]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(start["index"], 0);
    assert!(
        start["id"].as_str().is_some_and(|id| id.starts_with("call_mock_") && id != calls[0]["id"]),
        "{start}"
    );
    assert_eq!((&start["type"], &start["function"]["name"]), (&json!("function"), &json!("get_weather")));
    assert_eq!(start["function"]["arguments"], "");
    let pieces: Vec<&str> = chunks[at + 1..]
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert!(pieces.len() >= 2, "arguments in pieces: {pieces:?}");
    assert_eq!(pieces.concat(), arguments);
    let finishes: Vec<&str> =
        chunks.iter().filter_map(|chunk| chunk["choices"][0]["finish_reason"].as_str()).collect();
    assert_eq!(finishes, ["tool_calls"]);
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], output, "the same count streamed or not");
    assert_eq!(usage["usage"]["prompt_tokens"], 6);
}

#[tokio::test]
async fn the_tool_result_is_answered_in_text() {
    let gateway = Gateway::start(None, &[]);
    let call = chat(&gateway, &question(json!({}))).await.json();
    let message = call["choices"][0]["message"].clone();
    let id = message["tool_calls"][0]["id"].clone();
    let history = json!([
        {"role": "user", "content": QUESTION},
        message,
        {"role": "tool", "tool_call_id": id, "content": "22 degrees and sunny"},
    ]);
    let answer = chat(&gateway, &question(json!({"messages": history}))).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(answer["choices"][0]["finish_reason"], "stop", "{answer}");
    assert_eq!(answer["choices"][0]["message"]["content"], "Mock response to: 22 degrees and sunny");
    assert!(answer["choices"][0]["message"].get("tool_calls").is_none(), "{answer}");

    let streamed = chat(&gateway, &question(json!({"messages": history, "stream": true}))).await;
    let chunks = chunks(&streamed);
    let text: String =
        chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Mock response to: 22 degrees and sunny");
    assert!(!streamed.text().contains("\"usage\""), "usage was not asked for");
}

#[tokio::test]
async fn tool_choice_picks_the_tool_or_turns_calls_off() {
    let gateway = Gateway::start(None, &[]);
    let forced = json!({"tool_choice": {"type": "function", "function": {"name": "get_time"}}});
    let answer = chat(&gateway, &question(forced)).await.json();
    let call = &answer["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!((&call["name"], &call["arguments"]), (&json!("get_time"), &json!("{}")), "{answer}");

    let answer = chat(&gateway, &question(json!({"tool_choice": "none"}))).await.json();
    assert_eq!(answer["choices"][0]["message"]["content"], format!("Mock response to: {QUESTION}"));
    assert_eq!(answer["choices"][0]["finish_reason"], "stop");

    let unknown = json!({"tool_choice": {"type": "function", "function": {"name": "no_such_tool"}}});
    let error = chat(&gateway, &question(unknown)).await.error(400);
    assert_eq!(error["param"], "tool_choice", "{error}");

    // `tools: null` offers nothing: a text answer.
    let answer = chat(&gateway, &question(json!({"tools": null}))).await.json();
    assert_eq!(answer["choices"][0]["message"]["content"], format!("Mock response to: {QUESTION}"));
}
