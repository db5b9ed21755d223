//! Messages requests into the hub: whole requests as clients send them, and what is refused.

use super::*;
use crate::hub::{
    CacheControl, ChatResponse, FinishReason, Image, ImageSource, Message, Part, ResponseFormat, Role, Text,
    Tool, ToolCall, ToolChoice,
};
use serde_json::{Value, json};

fn parse(body: &str) -> Result<InboundRequest, InboundError> {
    parse_request(body.as_bytes(), "gpt-4.1")
}

fn error(body: &str) -> String {
    parse(body).unwrap_err().message
}

fn ephemeral() -> Option<CacheControl> {
    Some(CacheControl { ttl: None })
}

fn text(text: &str) -> Part {
    Part::Text(Text::plain(text))
}

fn cached(text: &str) -> Part {
    Part::Text(Text { text: text.into(), cache: ephemeral() })
}

/// The shape Claude Code sends: system blocks with cache breakpoints, `metadata.user_id`,
/// extended thinking, a long list of custom tools with draft-07 schemas, `stream: true`, and
/// conversation turns carrying thinking, tool use and tool results followed by reminders
/// (`tests/fixtures/`, shared with the SDK test through the gateway). Built from the documented
/// fields (texts shortened), not captured from the CLI:
/// <https://docs.anthropic.com/en/api/messages>,
/// <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>,
/// <https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking>,
/// <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>.
const CLAUDE_CODE: &str = include_str!("../../../../../tests/fixtures/claude-code-request.json");

#[test]
fn claude_codes_request_becomes_the_hub_request() {
    let request = parse(CLAUDE_CODE).unwrap();
    assert_eq!(
        (request.model.as_str(), request.stream, request.max_tokens),
        ("claude-sonnet-4-5-20250929", true, 32000)
    );
    let chat = request.chat;
    assert_eq!(chat.model, "gpt-4.1");
    assert_eq!((chat.max_tokens, chat.stream, chat.include_usage), (Some(32000), true, true));
    assert_eq!(chat.temperature, Some(1.0));
    assert_eq!(chat.user.as_deref(), Some("user_2f8a0c_account_4e1d_session_6b1c"));
    assert_eq!(
        chat.system,
        vec![
            Text {
                text: "You are Claude Code, Anthropic's official CLI for Claude.".into(),
                cache: ephemeral()
            },
            Text {
                text: "You are an interactive CLI tool that helps users with software engineering tasks."
                    .into(),
                cache: ephemeral()
            },
        ]
    );
    let expected = vec![
        Message {
            role: Role::User,
            content: vec![
                text("<system-reminder>\nThis is a reminder.\n</system-reminder>"),
                cached("what does main.rs do?"),
            ],
            tool_calls: Vec::new(),
            tool_call_id: None,
        },
        // Thinking is gone; tool inputs are the client's JSON text, byte for byte.
        Message {
            role: Role::Assistant,
            content: vec![text("I'll read the file.")],
            tool_calls: vec![
                ToolCall {
                    id: "toolu_01A09q90qw90lq917835lq9".into(),
                    name: "Read".into(),
                    arguments: r#"{"file_path": "/repo/src/main.rs", "limit": 2000}"#.into(),
                },
                ToolCall {
                    id: "toolu_01B".into(),
                    name: "Bash".into(),
                    arguments: r#"{"command": "ls /nope"}"#.into(),
                },
            ],
            tool_call_id: None,
        },
        // One tool message per result, in order, then the rest of the user turn.
        Message {
            role: Role::Tool,
            content: vec![text("     1\tfn main() {}\n")],
            tool_calls: Vec::new(),
            tool_call_id: Some("toolu_01A09q90qw90lq917835lq9".into()),
        },
        Message {
            role: Role::Tool,
            content: vec![Part::Text(Text {
                text: "<tool_use_error>ls: /nope: No such file</tool_use_error>".into(),
                cache: Some(CacheControl { ttl: Some("1h".into()) }),
            })],
            tool_calls: Vec::new(),
            tool_call_id: Some("toolu_01B".into()),
        },
        Message {
            role: Role::User,
            content: vec![cached("<system-reminder>Todo list is empty.</system-reminder>")],
            tool_calls: Vec::new(),
            tool_call_id: None,
        },
    ];
    assert_eq!(chat.messages, expected);
    assert_eq!(chat.tools.len(), 2);
    assert_eq!(chat.tools[0].name, "Read");
    assert_eq!(chat.tools[0].parameters["required"], json!(["file_path"]));
    assert_eq!((chat.tools[0].cache.clone(), chat.tools[1].cache.clone()), (None, ephemeral()));
    assert_eq!((chat.tool_choice, chat.parallel_tool_calls), (None, None));
}

#[test]
fn strings_images_choices_and_sampling() {
    // Content shapes of https://docs.anthropic.com/en/api/messages and
    // https://docs.anthropic.com/en/docs/build-with-claude/vision.
    let request = parse(
        r#"{"model":"claude-opus-4-1","max_tokens":1024,"system":"Be brief.","messages":[
        {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
          {"type":"image","source":{"type":"url","url":"https://upload.wikimedia.org/a.jpg"},"cache_control":{"type":"ephemeral"}},
          {"type":"text","text":"Compare these."}]},
        {"role":"assistant","content":"The first"}],
        "tools":[{"type":"custom","name":"get_weather","input_schema":{"type":"object"},"strict":true}],
        "tool_choice":{"type":"tool","name":"get_weather","disable_parallel_tool_use":true},
        "stop_sequences":["\n\nHuman:"],"top_p":0.9,"top_k":40,"stream":false}"#,
    )
    .unwrap();
    let chat = request.chat;
    assert_eq!(chat.system, vec![Text::plain("Be brief.")]);
    assert_eq!(
        chat.messages[0].content,
        vec![
            Part::Image(Image {
                source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() },
                detail: None
            }),
            Part::Image(Image {
                source: ImageSource::Url("https://upload.wikimedia.org/a.jpg".into()),
                detail: None
            }),
            text("Compare these."),
        ]
    );
    assert_eq!((chat.messages[1].role, chat.messages[1].text()), (Role::Assistant, "The first".to_owned()));
    assert_eq!(
        chat.tools,
        vec![Tool {
            name: "get_weather".into(),
            description: None,
            parameters: json!({"type": "object"}),
            strict: Some(true),
            cache: None
        }]
    );
    assert_eq!(chat.tool_choice, Some(ToolChoice::Function("get_weather".into())));
    assert_eq!(chat.parallel_tool_calls, Some(false));
    assert_eq!(chat.stop, vec!["\n\nHuman:".to_owned()]);
    assert_eq!((chat.top_p, chat.temperature, chat.stream, chat.user), (Some(0.9), None, false, None));
    for (choice, expected) in [
        (r#"{"type":"auto"}"#, ToolChoice::Auto),
        (r#"{"type":"any"}"#, ToolChoice::Required),
        (r#"{"type":"none"}"#, ToolChoice::None),
    ] {
        let body = format!(
            r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":"hi"}}],"tool_choice":{choice}}}"#
        );
        let chat = parse(&body).unwrap().chat;
        assert_eq!((chat.tool_choice, chat.parallel_tool_calls), (Some(expected), None), "{choice}");
    }
}

#[test]
fn structured_output_becomes_the_json_schema_format() {
    // https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]});
    for field in ["output_config", "output_format"] {
        let format = json!({"type": "json_schema", "schema": schema});
        let wrapped =
            if field == "output_config" { json!({"format": format, "effort": "low"}) } else { format };
        let body = json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], field: wrapped});
        let chat = parse(&body.to_string()).unwrap().chat;
        assert_eq!(
            chat.response_format,
            ResponseFormat::JsonSchema { name: "response".into(), schema: schema.clone(), strict: None },
            "{field}"
        );
    }
    let body = r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"output_config":{"effort":"high"}}"#;
    assert_eq!(parse(body).unwrap().chat.response_format, ResponseFormat::Text);
}

#[test]
fn a_tool_use_round_trip_keeps_the_call() {
    // A backend's tool call rendered as a Messages answer, then sent back by the client with
    // its result (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use).
    let call = ToolCall {
        id: "call_Zx9".into(),
        name: "get_weather".into(),
        arguments: r#"{"location":"San Francisco, CA","unit":"celsius"}"#.into(),
    };
    let answer = ChatResponse {
        id: "chatcmpl-1".into(),
        model: "gpt-4.1".into(),
        text: "Checking.".into(),
        tool_calls: vec![call.clone()],
        finish: FinishReason::ToolCalls,
        usage: crate::Usage::default(),
    };
    let message: Value = serde_json::from_slice(&render_response(&answer, "claude-x")).unwrap();
    assert_eq!(message["stop_reason"], "tool_use");
    let next = json!({
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [
            {"role": "user", "content": "Weather in SF?"},
            {"role": message["role"], "content": message["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "15 degrees"}]},
        ],
    });
    let chat = parse(&next.to_string()).unwrap().chat;
    assert_eq!(chat.messages[1].tool_calls, vec![call.clone()]);
    assert_eq!(chat.messages[1].text(), "Checking.");
    assert_eq!(
        (chat.messages[2].role, chat.messages[2].tool_call_id.as_deref()),
        (Role::Tool, Some("call_Zx9"))
    );
    assert_eq!(chat.messages.len(), 3, "no empty user message after the result");
}

#[test]
fn what_the_real_api_refuses_is_refused_in_its_words() {
    let user = r#"[{"role":"user","content":"hi"}]"#;
    for (body, expected) in [
        (format!(r#"{{"model":"m","messages":{user}}}"#), "max_tokens: Field required"),
        (r#"{"model":"m","max_tokens":9}"#.to_owned(), "messages: Field required"),
        (format!(r#"{{"max_tokens":9,"messages":{user}}}"#), "model: Field required"),
        (format!(r#"{{"model":"m","max_tokens":"9","messages":{user}}}"#), "max_tokens: Input should be a valid integer"),
        (r#"{"model":"m","max_tokens":9,"messages":[]}"#.to_owned(), "messages: at least one message is required"),
        (
            r#"{"model":"m","max_tokens":9,"messages":[{"role":"system","content":"x"}]}"#.to_owned(),
            "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
        ),
        (r#"{"model":"m","max_tokens":9,"messages":[{"role":"tool","content":"x"}]}"#.to_owned(), "messages.0.role: Input should be 'user' or 'assistant'"),
        (r#"{"model":"m","max_tokens":9,"messages":[{"role":"user"}]}"#.to_owned(), "messages.0.content: Field required"),
        (
            r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[]}]}"#.to_owned(),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"video","url":"x"}]}]}"#.to_owned(),
            "messages.0.content.0.type: Input tag 'video' found using 'type' does not match any of the expected tags: 'text', 'image', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'",
        ),
        (format!(r#"{{"model":"m","max_tokens":9,"messages":{user},"frobnicate":true}}"#), "frobnicate: Extra inputs are not permitted"),
        (format!(r#"{{"model":"m","max_tokens":9,"messages":{user},"temperature":1.5}}"#), "temperature: Input should be less than or equal to 1"),
        (
            format!(r#"{{"model":"m","max_tokens":9,"messages":{user},"tool_choice":{{"type":"tool"}}}}"#),
            "tool_choice.name: Field required",
        ),
        (
            format!(r#"{{"model":"m","max_tokens":9,"messages":{user},"system":[{{"type":"image","text":"x"}}]}}"#),
            "system.0.type: Input should be 'text'",
        ),
    ] {
        assert_eq!(error(&body), expected, "{body}");
    }
    // The final assistant message may be empty (a prefill of nothing).
    let body = r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[]}]}"#;
    assert_eq!(parse(body).unwrap().chat.messages.len(), 1);
}

#[test]
fn what_only_anthropic_can_run_is_refused_by_name() {
    let user = r#"[{"role":"user","content":"hi"}]"#;
    // Server tools of https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool
    // and the bash tool.
    let body = format!(
        r#"{{"model":"m","max_tokens":9,"messages":{user},"tools":[{{"name":"f","input_schema":{{"type":"object"}}}},{{"type":"web_search_20250305","name":"web_search","max_uses":5}}]}}"#
    );
    let message = error(&body);
    assert!(
        message.starts_with("tools.1.type: 'web_search_20250305' ('web_search') is an Anthropic server tool"),
        "{message}"
    );
    for (extra, expected) in [
        (
            r#""mcp_servers":[{"type":"url","url":"https://x","name":"x"}]"#,
            "mcp_servers: not supported by this backend",
        ),
        (r#""container":"container_1""#, "container: not supported by this backend"),
    ] {
        let message = error(&format!(r#"{{"model":"m","max_tokens":9,"messages":{user},{extra}}}"#));
        assert!(message.starts_with(expected), "{message}");
    }
    for (block, expected) in [
        (
            r#"{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}"#,
            "messages.0.content.0.type: 'document' blocks are not supported by this backend",
        ),
        (
            r#"{"type":"image","source":{"type":"file","file_id":"file_01"}}"#,
            "messages.0.content.0.source.type: 'file' images",
        ),
        (
            r#"{"type":"image","source":{"type":"base64","media_type":"image/tiff","data":"AA"}}"#,
            "messages.0.content.0.source.media_type: Input should be 'image/jpeg'",
        ),
        (
            r#"{"type":"tool_use","id":"t","name":"f","input":{}}"#,
            "messages.0.content.0: tool_use blocks belong in assistant messages",
        ),
        (
            r#"{"type":"tool_result","tool_use_id":"t","content":[{"type":"search_result","source":"x","title":"t","content":[]}]}"#,
            "messages.0.content.0.content.0.type: 'search_result' blocks are not supported",
        ),
    ] {
        let message = error(&format!(
            r#"{{"model":"m","max_tokens":9,"messages":[{{"role":"user","content":[{block}]}}]}}"#
        ));
        assert!(message.starts_with(expected), "{block}: {message}");
    }
    let body = r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}"#;
    assert!(error(body).starts_with("messages.1.content.0.type: 'server_tool_use' blocks are not supported"));
    // Anthropic's cache pre-warming asks for no tokens, which no other provider takes.
    assert!(
        error(&format!(r#"{{"model":"m","max_tokens":0,"messages":{user}}}"#)).starts_with("max_tokens: 0")
    );
}

#[test]
fn dropped_parameters_and_error_results_without_content() {
    let body = r#"{"model":"m","max_tokens":9,"top_k":5,"thinking":{"type":"adaptive"},"service_tier":"auto",
        "context_management":{"edits":[]},"cache_control":{"type":"ephemeral"},"inference_geo":null,
        "messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":true}]}]}"#;
    let chat = parse(body).unwrap().chat;
    // The error flag has no hub field; an error result that says nothing says so in text.
    assert_eq!(chat.messages[2].content, vec![text("Error")]);
    let body = body.replace(r#","is_error":true"#, "");
    assert!(parse(&body).unwrap().chat.messages[2].content.is_empty());
}

#[test]
fn the_passthrough_head_rewrites_only_the_model() {
    let body = br#"{"model":"claude-public","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello, \u00e9"}],"thinking":{"type":"enabled","budget_tokens":2048},"x_future":[1.50,{"k":null}]}"#;
    let head = MessagesHead::parse(body).unwrap();
    assert_eq!((head.model.as_str(), head.stream, head.max_tokens), ("claude-public", true, 1024));
    let upstream = head.to_upstream_body("claude-opus-4-1-20250805");
    let expected =
        String::from_utf8(body.to_vec()).unwrap().replace("claude-public", "claude-opus-4-1-20250805");
    assert_eq!(String::from_utf8(upstream).unwrap(), expected);
    let head = MessagesHead::parse(br#"{"model":"m","max_tokens":0,"messages":[]}"#).unwrap();
    assert!(!head.stream && head.max_tokens == 0, "Anthropic itself validates the rest");
    for (body, expected) in [
        (&br#"{"model":"m"}"#[..], "max_tokens: Field required"),
        (br#"{"model":"","max_tokens":1}"#, "model: String should have at least 1 character"),
        (br#"{"model":"m","max_tokens":1,"stream":"yes"}"#, "stream: Input should be a valid boolean"),
        (br#"{"model":"m","max_tokens":-1}"#, "max_tokens: Input should be a valid integer"),
    ] {
        assert_eq!(MessagesHead::parse(body).unwrap_err().message, expected);
    }
    let err = MessagesHead::parse(b"{\"model\":").unwrap_err();
    assert!(err.message.starts_with("the request body is not valid JSON"), "{err}");
    assert_eq!(err.body(), error_body(400, &err.message), "refusals are invalid_request_error bodies");
}
