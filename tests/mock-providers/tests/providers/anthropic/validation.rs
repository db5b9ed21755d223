//! The rejection table: every request the real Messages API refuses, with its exact message.

use super::*;

type Edit = Box<dyn Fn(&mut Value)>;

/// An edit that sets the request's top-level `field` to `value`.
fn set(field: &'static str, value: Value) -> Edit {
    Box::new(move |b| b[field] = value.clone())
}

/// An edit that removes the request's top-level `field`.
fn remove(field: &'static str) -> Edit {
    Box::new(move |b| {
        b.as_object_mut().unwrap().remove(field);
    })
}

/// An edit that replaces the conversation with a single user turn of `content`.
fn only_user(content: Value) -> Edit {
    set("messages", json!([{"role": "user", "content": content}]))
}

/// An edit that offers the weather tool and sets `tool_choice` to `choice`.
fn with_weather_tool(choice: Value) -> Edit {
    Box::new(move |b| {
        b["tools"] = json!([weather_tool()]);
        b["tool_choice"] = choice.clone();
    })
}

/// Each case: a change to a valid request, and the exact message the API answers it with.
#[tokio::test]
async fn rejects_what_the_real_api_rejects() {
    let m = mock().await;
    let user = |content: Value| json!({"role": "user", "content": content});
    let asst = |content: Value| json!({"role": "assistant", "content": content});
    let tool_use =
        |id: &str| json!({"type": "tool_use", "id": id, "name": "get_weather", "input": {"city": "Oslo"}});
    let tool_result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "12 degrees"});
    let cc = json!({"type": "ephemeral"});
    let text_cc = json!({"type": "text", "text": "cached", "cache_control": {"type": "ephemeral"}});

    let cases: Vec<(&str, Edit, &str)> = vec![
        ("missing max_tokens", remove("max_tokens"), "max_tokens: Field required"),
        (
            "negative max_tokens",
            set("max_tokens", json!(-1)),
            "max_tokens: Input should be greater than or equal to 0",
        ),
        ("max_tokens string", set("max_tokens", json!("10")), "max_tokens: Input should be a valid integer"),
        ("missing model", remove("model"), "model: Field required"),
        ("missing messages", remove("messages"), "messages: Field required"),
        ("empty messages", set("messages", json!([])), "messages: at least one message is required"),
        ("unknown field", set("foo", json!(1)), "foo: Extra inputs are not permitted"),
        ("OpenAI's n", set("n", json!(1)), "n: Extra inputs are not permitted"),
        (
            "OpenAI's response_format",
            set("response_format", json!({"type": "json_object"})),
            "response_format: Extra inputs are not permitted",
        ),
        (
            "system role",
            set("messages", json!([{"role": "system", "content": "be nice"}, user(json!("hi"))])),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            "tool role",
            set("messages", json!([user(json!("hi")), {"role": "tool", "content": "x"}])),
            "messages.1.role: Input should be 'user' or 'assistant'",
        ),
        (
            "message extra field",
            Box::new(move |b| b["messages"][0]["name"] = json!("bob")),
            "messages.0.name: Extra inputs are not permitted",
        ),
        (
            "two user turns",
            set("messages", json!([user(json!("a")), user(json!("b"))])),
            "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row",
        ),
        (
            "two assistant turns",
            set("messages", json!([user(json!("a")), asst(json!("b")), asst(json!("c"))])),
            "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"assistant\" roles in a row",
        ),
        (
            "assistant first",
            set("messages", json!([asst(json!("a")), user(json!("b"))])),
            "messages: first message must use the \"user\" role",
        ),
        (
            "empty string content",
            only_user(json!("")),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            "empty block list",
            only_user(json!([])),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            "empty text block",
            only_user(json!([{"type": "text", "text": ""}])),
            "messages: text content blocks must be non-empty",
        ),
        (
            "blank text block",
            only_user(json!([{"type": "text", "text": " \n"}])),
            "messages: text content blocks must contain non-whitespace text",
        ),
        (
            "content object",
            only_user(json!({"type": "text", "text": "x"})),
            "messages.0.content: Input should be a valid string, got dict",
        ),
        (
            "block without type",
            only_user(json!([{"text": "x"}])),
            "messages.0.content.0: Unable to extract tag using discriminator 'type'",
        ),
        (
            "OpenAI image_url block",
            only_user(json!([{"type": "image_url", "image_url": {"url": "https://x/y.png"}}])),
            "messages.0.content.0: Input tag 'image_url' found using 'type' does not match any of the expected tags: 'text', 'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use', 'tool_result', 'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result', 'code_execution_tool_result', 'bash_code_execution_tool_result', 'text_editor_code_execution_tool_result', 'tool_search_tool_result', 'container_upload', 'mcp_tool_use', 'mcp_tool_result'",
        ),
        (
            "text block extra field",
            only_user(json!([{"type": "text", "text": "x", "foo": 1}])),
            "messages.0.content.0.text.foo: Extra inputs are not permitted",
        ),
        (
            "image bmp",
            only_user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG_B64}}]),
            ),
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        ),
        (
            "image data URL",
            only_user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": format!("data:image/png;base64,{PNG_B64}")}}]),
            ),
            "messages.0.content.0.image.source.base64.data: Invalid base64 data",
        ),
        (
            "image type mismatch",
            only_user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": JPEG_B64}}]),
            ),
            "messages.0.content.0.image.source.base64.data: The image was specified using the image/png media type, but the image appears to be a image/jpeg image",
        ),
        (
            "image not an image",
            only_user(
                json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGVsbG8="}}]),
            ),
            "messages.0.content.0.image.source.base64.data: Could not process image",
        ),
        (
            "image bad url",
            only_user(json!([{"type": "image", "source": {"type": "url", "url": "ftp://x/y.png"}}])),
            "messages.0.content.0.image.source.url.url: Input should be a valid URL",
        ),
        (
            "image missing source",
            only_user(json!([{"type": "image"}])),
            "messages.0.content.0.image.source: Field required",
        ),
        (
            "tool_use in user turn",
            only_user(json!([tool_use("toolu_1")])),
            "messages.0.content.0: `tool_use` blocks can only appear in `assistant` messages",
        ),
        (
            "tool_use bad id",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(json!([tool_use("call 1")])),
                    user(json!([tool_result("call 1")]))
                ]),
            ),
            "messages.1.content.0.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'",
        ),
        (
            "tool_use string input",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(
                        json!([{"type": "tool_use", "id": "t1", "name": "get_weather", "input": "{\"city\":\"Oslo\"}"}])
                    ),
                    user(json!([tool_result("t1")]))
                ]),
            ),
            "messages.1.content.0.tool_use.input: Input should be a valid dictionary",
        ),
        (
            "OpenAI tool_calls field",
            set(
                "messages",
                json!([user(json!("hi")), {"role": "assistant", "content": "x", "tool_calls": []}]),
            ),
            "messages.1.tool_calls: Extra inputs are not permitted",
        ),
        (
            "tool_result without tool_use",
            set(
                "messages",
                json!([user(json!("hi")), asst(json!("ok")), user(json!([tool_result("toolu_9")]))]),
            ),
            "messages.2.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            "tool_result wrong id",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([tool_result("toolu_1"), tool_result("toolu_2")]))
                ]),
            ),
            "messages.2.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_2. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            "tool_use unanswered",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1"), tool_use("toolu_2")])),
                    user(json!([tool_result("toolu_1")]))
                ]),
            ),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_2. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            "tool_use last",
            set("messages", json!([user(json!("hi")), asst(json!([tool_use("toolu_1")]))])),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            "text before tool_result",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([{"type": "text", "text": "here"}, tool_result("toolu_1")]))
                ]),
            ),
            "messages.2.content.1: `tool_result` blocks must come first in the user message content, before any other content blocks",
        ),
        (
            "tool_result in assistant",
            set("messages", json!([user(json!("hi")), asst(json!([tool_result("toolu_1")]))])),
            "messages.1.content.0: `tool_result` blocks can only appear in `user` messages",
        ),
        (
            "tool_result bad content",
            set(
                "messages",
                json!([
                    user(json!("hi")),
                    asst(json!([tool_use("toolu_1")])),
                    user(json!([{"type": "tool_result", "tool_use_id": "toolu_1", "content": {"temp": 12}}]))
                ]),
            ),
            "messages.2.content.0.tool_result.content: Input should be a valid string, got dict",
        ),
        (
            "trailing whitespace prefill",
            set("messages", json!([user(json!("hi")), asst(json!("The answer is "))])),
            "messages: final assistant content cannot end with trailing whitespace",
        ),
        ("system object", set("system", json!({"text": "x"})), "system: Input should be a valid string"),
        (
            "system image block",
            set("system", json!([{"type": "image", "text": "x"}])),
            "system.0.type: Input should be 'text'",
        ),
        (
            "tool name with space",
            set("tools", json!([{"name": "get weather", "input_schema": {"type": "object"}}])),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            "tool name too long",
            set("tools", json!([{"name": "x".repeat(65), "input_schema": {"type": "object"}}])),
            "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
        (
            "tool schema array",
            set("tools", json!([{"name": "t", "input_schema": {"type": "array"}}])),
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            "tool schema without type",
            set("tools", json!([{"name": "t", "input_schema": {"properties": {}}}])),
            "tools.0.custom.input_schema.type: Field required",
        ),
        (
            "tool schema invalid",
            set("tools", json!([{"name": "t", "input_schema": {"type": "object", "properties": {"a": 5}}}])),
            "tools.0.custom.input_schema: JSON schema is invalid - please consult https://json-schema.org or our documentation at https://docs.anthropic.com/en/docs/tool-use",
        ),
        (
            "tool without schema",
            set("tools", json!([{"name": "t"}])),
            "tools.0.custom.input_schema: Field required",
        ),
        (
            "OpenAI parameters",
            set("tools", json!([{"name": "t", "input_schema": {"type": "object"}, "parameters": {}}])),
            "tools.0.custom.parameters: Extra inputs are not permitted",
        ),
        (
            "OpenAI function tool",
            set("tools", json!([{"type": "function", "function": {"name": "t"}}])),
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected tags: 'custom', or a versioned server tool type such as 'web_search_20250305'",
        ),
        (
            "duplicate tool names",
            set("tools", json!([weather_tool(), weather_tool()])),
            "tools: Tool names must be unique.",
        ),
        (
            "tool_choice without tools",
            set("tool_choice", json!({"type": "auto"})),
            "tool_choice: tool_choice may only be specified while providing tools.",
        ),
        (
            "tool_choice required",
            with_weather_tool(json!({"type": "required"})),
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
        (
            "tool_choice string",
            with_weather_tool(json!("auto")),
            "tool_choice: Input should be a valid dictionary",
        ),
        (
            "tool_choice tool without name",
            with_weather_tool(json!({"type": "tool"})),
            "tool_choice.tool.name: Field required",
        ),
        (
            "tool_choice unknown tool",
            with_weather_tool(json!({"type": "tool", "name": "nope"})),
            "tool_choice.tool.name: Tool 'nope' not found in tools",
        ),
        (
            "tool_choice none parallel",
            with_weather_tool(json!({"type": "none", "disable_parallel_tool_use": true})),
            "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted",
        ),
        ("temperature 1.5", set("temperature", json!(1.5)), "temperature: range: 0..1"),
        ("temperature -1", set("temperature", json!(-1)), "temperature: range: 0..1"),
        ("temperature null", set("temperature", json!(null)), "temperature: Input should be a valid number"),
        ("top_p 2", set("top_p", json!(2)), "top_p: range: 0..1"),
        ("top_k -1", set("top_k", json!(-1)), "top_k: Input should be greater than or equal to 0"),
        (
            "stop_sequences string",
            set("stop_sequences", json!("END")),
            "stop_sequences: Input should be a valid list",
        ),
        (
            "stop_sequences blank",
            set("stop_sequences", json!(["END", " "])),
            "stop_sequences: each stop sequence must contain non-whitespace",
        ),
        ("stream string", set("stream", json!("yes")), "stream: Input should be a valid boolean"),
        (
            "metadata extra",
            set("metadata", json!({"session": "x"})),
            "metadata.session: Extra inputs are not permitted",
        ),
        (
            "service_tier",
            set("service_tier", json!("priority")),
            "service_tier: Input should be 'auto' or 'standard_only'",
        ),
        (
            "cache_control type",
            only_user(json!([{"type": "text", "text": "x", "cache_control": {"type": "persistent"}}])),
            "messages.0.content.0.text.cache_control.type: Input should be 'ephemeral'",
        ),
        (
            "cache_control ttl",
            set(
                "system",
                json!([{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1d"}}]),
            ),
            "system.0.cache_control.ttl: Input should be '5m' or '1h'",
        ),
        (
            "five cache breakpoints",
            Box::new(move |b| {
                b["system"] = json!([text_cc, text_cc]);
                b["messages"] = json!([user(json!([text_cc, text_cc]))]);
                b["tools"] = json!([{"name": "t", "input_schema": {"type": "object"}, "cache_control": cc}]);
            }),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            "thinking budget small",
            set("thinking", json!({"type": "enabled", "budget_tokens": 100})),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            "thinking budget over max",
            set("thinking", json!({"type": "enabled", "budget_tokens": 2048})),
            "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size",
        ),
        (
            "thinking with temperature",
            Box::new(|b| {
                b["max_tokens"] = json!(4096);
                b["temperature"] = json!(0.2);
                b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
            }),
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility",
        ),
        (
            "thinking forced tool",
            Box::new(|b| {
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!({"type": "any"});
                b["thinking"] = json!({"type": "adaptive"});
            }),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            "output_config format",
            set("output_config", json!({"format": {"type": "json_object"}})),
            "output_config.format.schema: Field required",
        ),
    ];
    for (what, edit, message) in &cases {
        let mut body = base();
        edit(&mut body);
        let resp = post(&m, &body).await;
        assert_eq!(resp.status, 400, "{what}: {}", resp.text());
        assert_eq!(resp.json()["error"]["message"], *message, "{what}");
        assert_invalid(&resp, message);
    }
}
