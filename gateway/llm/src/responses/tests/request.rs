use super::request;
use crate::Usage;
use crate::hub::{
    ChatResponse, FinishReason, Image, ImageSource, Message, Part, ResponseFormat, Role, Text, ToolCall,
    ToolChoice,
};
use crate::responses::{parse_request, render_response};
use serde_json::{Value, json};

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        content: vec![Part::Text(Text::plain(text))],
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
}

/// <https://platform.openai.com/docs/api-reference/responses/create>, example "Text input".
#[test]
fn a_string_input_is_one_user_message() {
    let req = request(
        r#"{"model": "gpt-5.4", "input": "Tell me a three sentence bedtime story about a unicorn."}"#,
    );
    assert_eq!(req.model, "gpt-5.4");
    assert_eq!(
        req.input,
        vec![json!({"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Tell me a three sentence bedtime story about a unicorn."}
        ]})],
        "stored as OpenAI lists input items"
    );
    let hub = req.to_hub(&[], "upstream-model").unwrap();
    assert_eq!(hub.model, "upstream-model");
    assert_eq!(hub.messages, vec![user("Tell me a three sentence bedtime story about a unicorn.")]);
    assert!(hub.system.is_empty() && hub.tools.is_empty() && !hub.stream && !hub.include_usage);
    // OpenAI's defaults, as its example response shows them.
    assert!(req.store() && req.echo.parallel_tool_calls && req.previous_response_id().is_none());
    assert_eq!(req.echo.tool_choice, "auto");
    assert_eq!(req.echo.text, json!({"format": {"type": "text"}}));
    assert!(req.echo.tools.is_empty() && req.echo.metadata.is_empty());
}

/// <https://platform.openai.com/docs/api-reference/responses/create>, example "Image input",
/// and a base64 data URL as the images guide allows
/// (<https://platform.openai.com/docs/guides/images-vision?api-mode=responses>).
#[test]
fn images_are_urls_or_inline_data_never_file_ids() {
    let req = request(
        r#"{"model": "gpt-5.4", "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "what is in this image?"},
            {"type": "input_image", "image_url": "https://upload.wikimedia.org/boardwalk.jpg"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}
        ]}]}"#,
    );
    let hub = req.to_hub(&[], "m").unwrap();
    assert_eq!(
        hub.messages[0].content[1..],
        [
            Part::Image(Image {
                source: ImageSource::Url("https://upload.wikimedia.org/boardwalk.jpg".into()),
                detail: None
            }),
            Part::Image(Image {
                source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() },
                detail: Some("low".into()),
            }),
        ]
    );
    let err = parse_request(
        br#"{"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("input"));
    assert!(
        err.message.starts_with("input[0].content[0].file_id: images by file id are not supported"),
        "{}",
        err.message
    );
}

/// The function-calling flow of <https://platform.openai.com/docs/guides/function-calling?api-mode=responses>:
/// the model's `function_call` item and the caller's `function_call_output` sent back in `input`.
#[test]
fn a_function_call_and_its_output_round_trip() {
    let req = request(
        r#"{"model": "gpt-5.4",
            "input": [
                {"role": "user", "content": "What is the weather like in Paris today?"},
                {"type": "function_call", "id": "fc_12345xyz", "call_id": "call_12345xyz", "name": "get_weather",
                 "arguments": "{\"latitude\":48.8566,\"longitude\":2.3522}", "status": "completed"},
                {"type": "function_call_output", "call_id": "call_12345xyz", "output": "14.7"}
            ],
            "tools": [{"type": "function", "name": "get_weather", "description": "Get current temperature for provided coordinates in celsius.",
                "parameters": {"type": "object", "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}},
                    "required": ["latitude", "longitude"], "additionalProperties": false},
                "strict": true}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": false}"#,
    );
    let hub = req.to_hub(&[], "m").unwrap();
    assert_eq!(hub.messages.len(), 3);
    assert_eq!(hub.messages[0], user("What is the weather like in Paris today?"));
    assert_eq!(
        hub.messages[1],
        Message {
            role: Role::Assistant,
            content: Vec::new(),
            tool_calls: vec![call(
                "call_12345xyz",
                "get_weather",
                r#"{"latitude":48.8566,"longitude":2.3522}"#
            )],
            tool_call_id: None,
        }
    );
    assert_eq!(hub.messages[2].role, Role::Tool);
    assert_eq!(hub.messages[2].tool_call_id.as_deref(), Some("call_12345xyz"));
    assert_eq!(hub.messages[2].text(), "14.7");
    assert_eq!((hub.tools[0].name.as_str(), hub.tools[0].strict), ("get_weather", Some(true)));
    assert_eq!(hub.tools[0].parameters["required"], json!(["latitude", "longitude"]));
    assert_eq!(hub.tool_choice, Some(ToolChoice::Function("get_weather".into())));
    assert_eq!(hub.parallel_tool_calls, Some(false));
    assert_eq!(req.echo.tool_choice, json!({"type": "function", "name": "get_weather"}));
    assert_eq!(req.echo.tools[0]["strict"], true);
    assert!(!req.echo.parallel_tool_calls);
}

/// Parallel calls (<https://platform.openai.com/docs/guides/function-calling?api-mode=responses#parallel-function-calling>):
/// the calls of one turn, after the text the model said first, are one assistant turn; a tool
/// output may also be a list of parts.
#[test]
fn consecutive_function_calls_are_one_assistant_turn() {
    let req = request(
        r#"{"model": "m", "input": [
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{\"city\":\"Oslo\"}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_text", "text": "15"}]},
            {"type": "function_call_output", "call_id": "c2", "output": "4"},
            {"type": "function_call", "call_id": "c3", "name": "w", "arguments": "{}"}
        ]}"#,
    );
    let hub = req.to_hub(&[], "m").unwrap();
    let roles: Vec<Role> = hub.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Tool, Role::Assistant]);
    assert_eq!(hub.messages[1].text(), "Checking.");
    assert_eq!(
        hub.messages[1].tool_calls,
        vec![call("c1", "w", r#"{"city":"Paris"}"#), call("c2", "w", r#"{"city":"Oslo"}"#)]
    );
    assert_eq!((hub.messages[2].text(), hub.messages[3].text()), ("15".into(), "4".into()));
    assert_eq!(
        hub.messages[4].tool_calls,
        vec![call("c3", "w", "{}")],
        "a call after tool outputs is a new turn"
    );
}

/// <https://platform.openai.com/docs/guides/structured-outputs?api-mode=responses>, the
/// "calendar_event" example.
#[test]
fn a_json_schema_format_reaches_the_hub_and_is_echoed() {
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "date": {"type": "string"},
        "participants": {"type": "array", "items": {"type": "string"}}},
        "required": ["name", "date", "participants"], "additionalProperties": false});
    let body = json!({"model": "gpt-4o-2024-08-06",
        "input": [{"role": "system", "content": "Extract the event information."},
                  {"role": "user", "content": "Alice and Bob are going to a science fair on Friday."}],
        "text": {"format": {"type": "json_schema", "name": "calendar_event", "schema": schema, "strict": true}}});
    let req = request(&body.to_string());
    let hub = req.to_hub(&[], "m").unwrap();
    assert_eq!(hub.system, vec![Text::plain("Extract the event information.")]);
    assert_eq!(hub.messages, vec![user("Alice and Bob are going to a science fair on Friday.")]);
    assert_eq!(
        hub.response_format,
        ResponseFormat::JsonSchema {
            name: "calendar_event".into(),
            schema: schema.clone(),
            strict: Some(true)
        }
    );
    assert_eq!(
        req.echo.text,
        json!({"format": {"type": "json_schema", "name": "calendar_event", "schema": schema, "strict": true}})
    );
    let json_mode = request(
        r#"{"model": "m", "input": "x", "text": {"format": {"type": "json_object"}, "verbosity": "low"}}"#,
    );
    assert_eq!(json_mode.to_hub(&[], "m").unwrap().response_format, ResponseFormat::JsonObject);
}

/// A first turn (input and rendered output) stored as history, continued with
/// `previous_response_id` (<https://platform.openai.com/docs/guides/conversation-state?api-mode=responses>):
/// earlier items first, then the new input; only the new request's instructions apply.
#[test]
fn history_comes_before_the_new_input_and_instructions_are_not_carried_over() {
    let first_body = r#"{"model": "m", "instructions": "Talk like a pirate.", "input": "Tell me a joke.",
        "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}]}"#;
    let first = request(first_body);
    assert_eq!(first.to_hub(&[], "m").unwrap().system, vec![Text::plain("Talk like a pirate.")]);
    let answer = ChatResponse {
        id: "up-1".into(),
        model: "m".into(),
        text: "Why did the parrot sit on the plank?".into(),
        tool_calls: vec![call("call_1", "w", "{}")],
        finish: FinishReason::ToolCalls,
        usage: Usage::default(),
    };
    let rendered = render_response(&answer, &first.context("resp_1", 0));
    let history: Vec<Value> = first.input.iter().chain(&rendered.output).cloned().collect();

    let second = request(
        r#"{"model": "m", "previous_response_id": "resp_1", "input": [
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"role": "user", "content": "Explain why this is funny."}]}"#,
    );
    assert_eq!(second.previous_response_id(), Some("resp_1"));
    let hub = second.to_hub(&history, "m").unwrap();
    assert!(hub.system.is_empty(), "the first turn's instructions stay with it: {:?}", hub.system);
    assert!(hub.tools.is_empty(), "tools are per request too");
    assert_eq!(hub.messages.len(), 4);
    assert_eq!(hub.messages[0], user("Tell me a joke."));
    assert_eq!(hub.messages[1].role, Role::Assistant);
    assert_eq!(hub.messages[1].text(), "Why did the parrot sit on the plank?");
    assert_eq!(hub.messages[1].tool_calls, vec![call("call_1", "w", "{}")]);
    assert_eq!(hub.messages[2].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(hub.messages[3], user("Explain why this is funny."));

    let with_own = request(
        r#"{"model": "m", "previous_response_id": "resp_1", "instructions": "Be plain.", "input": "Again."}"#,
    );
    assert_eq!(with_own.to_hub(&history, "m").unwrap().system, vec![Text::plain("Be plain.")]);
}

/// Reasoning items (<https://platform.openai.com/docs/guides/reasoning#keeping-reasoning-items-in-context>)
/// are kept in the stored input but never reach another provider.
#[test]
fn reasoning_items_are_dropped_on_the_way_to_the_hub() {
    let req = request(
        r#"{"model": "m", "input": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
            {"role": "developer", "content": "Answer briefly."},
            {"role": "user", "content": "Hi"}]}"#,
    );
    assert_eq!(req.input.len(), 3);
    let hub = req.to_hub(&[], "m").unwrap();
    assert_eq!(hub.system, vec![Text::plain("Answer briefly.")]);
    assert_eq!(hub.messages, vec![user("Hi")]);
}

#[test]
fn settings_reach_the_hub_and_the_echo() {
    let req = request(
        r#"{"model": "m", "input": "x", "stream": true, "store": false, "max_output_tokens": 300, "temperature": 0.2,
            "top_p": 0.9, "metadata": {"ticket": "42"}, "safety_identifier": "u-hash", "reasoning": {"effort": "low"},
            "include": ["reasoning.encrypted_content"], "truncation": "disabled", "background": false, "top_logprobs": 0}"#,
    );
    let hub = req.to_hub(&[], "m").unwrap();
    assert!(hub.stream && hub.include_usage, "a Responses stream always ends with its usage");
    assert_eq!((hub.max_tokens, hub.temperature, hub.top_p), (Some(300), Some(0.2), Some(0.9)));
    assert_eq!(hub.user.as_deref(), Some("u-hash"), "safety_identifier stands in for user");
    assert!(!req.store());
    assert_eq!(req.echo.metadata.get("ticket"), Some(&json!("42")));
    assert_eq!(req.echo.user, None, "only a given user is echoed");
}

#[test]
fn what_cannot_be_honoured_is_refused_naming_the_parameter() {
    for (body, param, words) in [
        (r#"{"input": "x"}"#, "model", "provide a model"),
        (r#"{"model": "m"}"#, "input", "provide an input"),
        (r#"{"model": "m", "input": []}"#, "input", "must not be empty"),
        (r#"{"model": "m", "input": 7}"#, "input", "a string or a list of items"),
        (r#"{"model": "m", "input": [7]}"#, "input", "input[0]: an item must be an object"),
        (
            r#"{"model": "m", "input": "x", "tools": [{"type": "web_search"}]}"#,
            "tools",
            "built-in tool 'web_search'",
        ),
        (
            r#"{"model": "m", "input": "x", "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}"#,
            "tools",
            "only function tools",
        ),
        (
            r#"{"model": "m", "input": "x", "tool_choice": {"type": "web_search_preview"}}"#,
            "tool_choice",
            "web_search_preview",
        ),
        (r#"{"model": "m", "input": "x", "tool_choice": "sometimes"}"#, "tool_choice", "'sometimes'"),
        (
            r#"{"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}"#,
            "input",
            "item references",
        ),
        (
            r#"{"model": "m", "input": [{"type": "web_search_call", "id": "ws_1"}]}"#,
            "input",
            "'web_search_call' items",
        ),
        (r#"{"model": "m", "input": [{"role": "tool", "content": "x"}]}"#, "input", "unknown role 'tool'"),
        (
            r#"{"model": "m", "input": [{"type": "function_call_output", "output": "x"}]}"#,
            "input",
            "missing field `call_id`",
        ),
        (
            r#"{"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}"#,
            "input",
            "file inputs",
        ),
        (
            r#"{"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x/y.png"}]}]}"#,
            "input",
            "only user messages",
        ),
        (
            r#"{"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}"#,
            "text",
            "a name and a schema",
        ),
        (r#"{"model": "m", "input": "x", "background": true}"#, "background", "background mode"),
        (r#"{"model": "m", "input": "x", "conversation": "conv_1"}"#, "conversation", "previous_response_id"),
        (r#"{"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}}"#, "prompt", "prompt templates"),
        (
            r#"{"model": "m", "input": "x", "include": ["message.output_text.logprobs"]}"#,
            "include",
            "log probabilities",
        ),
        (r#"{"model": "m", "input": "x", "metadata": {"n": 1}}"#, "metadata", "must be strings"),
        (
            r#"{"model": "m", "input": "x", "max_output_tokens": -1}"#,
            "max_output_tokens",
            "max_output_tokens",
        ),
        (r#"{"model": "m", "input": "x", "frobnicate": 1}"#, "frobnicate", "unknown parameter"),
    ] {
        let err = parse_request(body.as_bytes()).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert!(err.message.contains(words), "{body}: {}", err.message);
    }
    let many: serde_json::Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let err = parse_request(json!({"model": "m", "input": "x", "metadata": many}).to_string().as_bytes())
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("metadata"));
}

#[test]
fn an_unreadable_stored_item_names_previous_response_id() {
    let req = request(r#"{"model": "m", "previous_response_id": "resp_1", "input": "x"}"#);
    let err = req.to_hub(&[json!({"type": "mystery"})], "m").unwrap_err();
    assert_eq!(err.param.as_deref(), Some("previous_response_id"));
    assert_eq!(
        err.message,
        "previous_response_id: stored item 0.type: 'mystery' items are not supported by this gateway"
    );
}
