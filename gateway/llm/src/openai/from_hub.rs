//! Hub request → OpenAI chat completions body, for OpenAI-compatible upstreams (OpenAI, Azure
//! OpenAI, vLLM, Ollama, the built-in mock) serving clients of another dialect.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/create>.
//!
//! The hub follows OpenAI's chat model, so this is mostly a rename. What is chosen here:
//! - system instructions become one `system` message at the start (`developer` is OpenAI-only;
//!   every compatible server accepts `system`);
//! - content with one text part is written as a plain string, anything else as an array of parts:
//!   many compatible servers' chat templates read only string content;
//! - the token limit goes to `max_completion_tokens` or `max_tokens`, per backend
//!   ([`MaxTokensField`]);
//! - streams always ask for usage (`stream_options.include_usage`) unless the backend refuses
//!   the option: the gateway counts tokens from it;
//! - `tool_choice` and `parallel_tool_calls` are written only with tools: OpenAI refuses them
//!   without, and they mean nothing then;
//! - prompt-cache hints have no OpenAI field (OpenAI caches prefixes by itself) and are dropped;
//! - tool-call arguments are the model's JSON text, written as it came, never re-serialized.

use super::RequestError;
use crate::hub::{
    ChatRequest, Image, ImageSource, Message, Part, ResponseFormat, Role, Text, Tool, ToolCall, ToolChoice,
};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;

/// Which field carries the token limit: the two are synonyms, but not every server knows both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: OpenAI and Azure OpenAI (their reasoning models refuse
    /// `max_tokens`), and recent vLLM.
    #[default]
    MaxCompletionTokens,
    /// `max_tokens`, deprecated by OpenAI but the only one older vLLM, Ollama and most other
    /// compatible servers read.
    MaxTokens,
}

/// Per-backend settings of the translation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub max_tokens_field: MaxTokensField,
    /// Ask streams for usage (`stream_options.include_usage`). Off only for a server that
    /// rejects the option; its streams then report no tokens.
    pub stream_usage: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { max_tokens_field: MaxTokensField::default(), stream_usage: true }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat<'a> {
    JsonObject,
    JsonSchema { json_schema: JsonSchema<'a> },
}

#[derive(Serialize)]
struct JsonSchema<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// The chat completions body for `request`.
pub fn build_request(request: &ChatRequest, options: Options) -> Result<Vec<u8>, RequestError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(WireMessage {
            role: "system",
            content: Some(texts(&request.system)),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    for (index, message) in request.messages.iter().enumerate() {
        messages.push(wire_message(message, index)?);
    }
    let has_tools = !request.tools.is_empty();
    let (max_completion_tokens, max_tokens) = match options.max_tokens_field {
        MaxTokensField::MaxCompletionTokens => (request.max_tokens, None),
        MaxTokensField::MaxTokens => (None, request.max_tokens),
    };
    let body = Body {
        model: &request.model,
        messages,
        tools: request.tools.iter().map(wire_tool).collect(),
        tool_choice: request.tool_choice.as_ref().filter(|_| has_tools).map(wire_tool_choice),
        parallel_tool_calls: request.parallel_tool_calls.filter(|_| has_tools),
        max_completion_tokens,
        max_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: &request.stop,
        response_format: match &request.response_format {
            ResponseFormat::Text => None,
            ResponseFormat::JsonObject => Some(WireResponseFormat::JsonObject),
            ResponseFormat::JsonSchema { name, schema, strict } => Some(WireResponseFormat::JsonSchema {
                json_schema: JsonSchema { name, schema, strict: *strict },
            }),
        },
        stream: request.stream,
        stream_options: (request.stream && options.stream_usage)
            .then_some(StreamOptions { include_usage: true }),
        user: request.user.as_deref(),
    };
    serde_json::to_vec(&body).map_err(|err| RequestError::new(err.to_string(), None))
}

fn wire_message(message: &Message, index: usize) -> Result<WireMessage<'_>, RequestError> {
    let (role, tool_call_id) = match message.role {
        Role::User => ("user", None),
        Role::Assistant => ("assistant", None),
        Role::Tool => {
            let Some(id) = message.tool_call_id.as_deref() else {
                return Err(RequestError::new(
                    format!("messages[{index}]: a tool result must name the tool call it answers"),
                    Some("messages"),
                ));
            };
            ("tool", Some(id))
        }
    };
    // An assistant turn that only calls tools has no content (OpenAI: "required unless
    // tool_calls is specified"); any other turn has some, if only "".
    let content = if message.content.is_empty() && !message.tool_calls.is_empty() {
        None
    } else {
        Some(content(&message.content))
    };
    Ok(WireMessage {
        role,
        content,
        tool_calls: message.tool_calls.iter().map(wire_tool_call).collect(),
        tool_call_id,
    })
}

/// One text part as a string, anything else as parts.
fn content(parts: &[Part]) -> Content<'_> {
    match parts {
        [] => Content::Text(""),
        [Part::Text(text)] => Content::Text(&text.text),
        parts => Content::Parts(parts.iter().map(content_part).collect()),
    }
}

fn texts(texts: &[Text]) -> Content<'_> {
    match texts {
        [text] => Content::Text(&text.text),
        texts => Content::Parts(texts.iter().map(|text| ContentPart::Text { text: &text.text }).collect()),
    }
}

fn content_part(part: &Part) -> ContentPart<'_> {
    match part {
        Part::Text(text) => ContentPart::Text { text: &text.text },
        Part::Image(Image { source, detail }) => ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: match source {
                    ImageSource::Url(url) => Cow::Borrowed(url.as_str()),
                    ImageSource::Base64 { media_type, data } => {
                        Cow::Owned(format!("data:{media_type};base64,{data}"))
                    }
                },
                detail: detail.as_deref(),
            },
        },
    }
}

fn wire_tool_call(call: &ToolCall) -> WireToolCall<'_> {
    WireToolCall {
        id: &call.id,
        kind: "function",
        function: FunctionCall { name: &call.name, arguments: &call.arguments },
    }
}

fn wire_tool(tool: &Tool) -> WireTool<'_> {
    WireTool {
        kind: "function",
        function: Function {
            name: &tool.name,
            description: tool.description.as_deref(),
            parameters: &tool.parameters,
            strict: tool.strict,
        },
    }
}

fn wire_tool_choice(choice: &ToolChoice) -> WireToolChoice<'_> {
    match choice {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Function(name) => WireToolChoice::Named { kind: "function", function: Named { name } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::CacheControl;
    use crate::openai::ModelRequest;
    use proptest::prelude::*;
    use proptest::test_runner::RngSeed;
    use serde_json::json;

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: vec![Part::Text(Text::plain(text))],
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    fn tool(name: &str) -> Tool {
        Tool {
            name: name.into(),
            description: Some(format!("Looks up {name}.")),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
            strict: Some(true),
            cache: None,
        }
    }

    /// Requests covering every hub field, as the client dialects produce them.
    fn representative() -> Vec<ChatRequest> {
        let plain =
            ChatRequest { model: "gpt-4.1".into(), messages: vec![user("Hello!")], ..ChatRequest::default() };
        let tools = ChatRequest {
            model: "gpt-4.1".into(),
            system: vec![Text::plain("You are terse."), Text::plain("Use tools.")],
            messages: vec![
                Message {
                    role: Role::User,
                    content: vec![
                        Part::Text(Text::plain("Weather here, and what is in these?")),
                        Part::Image(Image {
                            source: ImageSource::Url("https://example.com/a.jpg".into()),
                            detail: Some("high".into()),
                        }),
                        Part::Image(Image {
                            source: ImageSource::Base64 {
                                media_type: "image/png".into(),
                                data: "iVBORw0KGgo=".into(),
                            },
                            detail: None,
                        }),
                    ],
                    tool_calls: Vec::new(),
                    tool_call_id: None,
                },
                Message {
                    role: Role::Assistant,
                    content: Vec::new(),
                    tool_calls: vec![
                        // Arguments as the model wrote them: spacing and key order kept.
                        ToolCall {
                            id: "call_a".into(),
                            name: "weather".into(),
                            arguments: r#"{ "city" : "Paris" }"#.into(),
                        },
                        ToolCall {
                            id: "call_b".into(),
                            name: "time".into(),
                            arguments: r#"{"city":"Paris","tz":1.0}"#.into(),
                        },
                    ],
                    tool_call_id: None,
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::Text(Text::plain("18C"))],
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_a".into()),
                },
                Message {
                    role: Role::Tool,
                    content: vec![Part::Text(Text::plain("12:00")), Part::Text(Text::plain(" CET"))],
                    tool_calls: Vec::new(),
                    tool_call_id: Some("call_b".into()),
                },
                Message {
                    role: Role::Assistant,
                    content: vec![Part::Text(Text::plain("Checking."))],
                    tool_calls: vec![ToolCall {
                        id: "call_c".into(),
                        name: "weather".into(),
                        arguments: "{}".into(),
                    }],
                    tool_call_id: None,
                },
            ],
            tools: vec![tool("weather"), Tool { description: None, strict: None, ..tool("time") }],
            tool_choice: Some(ToolChoice::Function("weather".into())),
            parallel_tool_calls: Some(false),
            max_tokens: Some(300),
            temperature: Some(0.7),
            top_p: Some(0.95),
            stop: vec!["END".into(), "\n\n".into()],
            stream: true,
            include_usage: true,
            user: Some("user-1".into()),
            ..ChatRequest::default()
        };
        let json_schema = ChatRequest {
            model: "gpt-4o-mini".into(),
            system: vec![Text::plain("Answer in JSON.")],
            messages: vec![user("Name a colour.")],
            response_format: ResponseFormat::JsonSchema {
                name: "colour".into(),
                schema: json!({"type": "object", "properties": {"name": {"type": "string"}}}),
                strict: Some(true),
            },
            tools: vec![tool("weather")],
            tool_choice: Some(ToolChoice::Required),
            ..ChatRequest::default()
        };
        let json_object = ChatRequest {
            model: "llama3.1".into(),
            messages: vec![user("{}")],
            response_format: ResponseFormat::JsonObject,
            tools: vec![tool("weather")],
            tool_choice: Some(ToolChoice::None),
            stream: true,
            ..ChatRequest::default()
        };
        let auto = ChatRequest {
            tool_choice: Some(ToolChoice::Auto),
            parallel_tool_calls: Some(true),
            ..json_object.clone()
        };
        vec![plain, tools, json_schema, json_object, auto]
    }

    fn round_trip(request: &ChatRequest, options: Options) -> ChatRequest {
        let body = build_request(request, options).unwrap();
        let parsed = ModelRequest::parse(&body).unwrap();
        parsed.to_hub(&request.model).unwrap()
    }

    /// What survives the trip: everything, except that a stream always asks for usage.
    fn expected(request: &ChatRequest, options: Options) -> ChatRequest {
        ChatRequest { include_usage: request.stream && options.stream_usage, ..request.clone() }
    }

    #[test]
    fn every_hub_field_survives_the_trip_through_the_openai_parser() {
        for max_tokens_field in [MaxTokensField::MaxCompletionTokens, MaxTokensField::MaxTokens] {
            for stream_usage in [true, false] {
                let options = Options { max_tokens_field, stream_usage };
                for request in representative() {
                    assert_eq!(round_trip(&request, options), expected(&request, options), "{options:?}");
                }
            }
        }
    }

    proptest! {
        // A fixed sample, as in `tests/properties.rs`: CI runs the same cases every time.
        #![proptest_config(ProptestConfig {
            cases: 128,
            rng_seed: RngSeed::Fixed(20261202),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any text, names and argument text arrive byte for byte (escaping, unicode, JSON that
        /// is not valid: arguments are the model's text, never parsed here).
        #[test]
        fn any_text_survives_the_trip(text in any::<String>(), arguments in any::<String>(), id in "[a-zA-Z0-9_-]{1,40}") {
            let mut request = representative().swap_remove(1);
            request.system[0].text.clone_from(&text);
            request.messages[0].content[0] = Part::Text(Text::plain(text.clone()));
            request.messages[1].tool_calls[0].arguments.clone_from(&arguments);
            request.messages[1].tool_calls[0].id.clone_from(&id);
            request.messages[2].tool_call_id = Some(id);
            request.stop = vec![text];
            let options = Options::default();
            prop_assert_eq!(round_trip(&request, options), expected(&request, options));
        }
    }

    fn body(request: &ChatRequest, options: Options) -> Value {
        serde_json::from_slice(&build_request(request, options).unwrap()).unwrap()
    }

    #[test]
    fn the_wire_shape() {
        let requests = representative();
        let options = Options { max_tokens_field: MaxTokensField::MaxTokens, stream_usage: true };
        let tools = body(&requests[1], options);
        assert_eq!(
            tools["messages"][0],
            json!({"role": "system", "content": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use tools."}]})
        );
        assert_eq!(
            tools["messages"][1]["content"][2]["image_url"],
            json!({"url": "data:image/png;base64,iVBORw0KGgo="})
        );
        assert_eq!(tools["messages"][2].get("content"), None, "a tool-calls-only turn has no content");
        assert_eq!(tools["messages"][2]["tool_calls"][0]["function"]["arguments"], r#"{ "city" : "Paris" }"#);
        assert_eq!(tools["messages"][3], json!({"role": "tool", "content": "18C", "tool_call_id": "call_a"}));
        assert_eq!(tools["tool_choice"], json!({"type": "function", "function": {"name": "weather"}}));
        assert_eq!(
            tools["tools"][1],
            json!({"type": "function", "function": {"name": "time", "parameters": tools["tools"][0]["function"]["parameters"]}})
        );
        assert_eq!((tools.get("max_completion_tokens"), &tools["max_tokens"]), (None, &json!(300)));
        assert_eq!(tools["stream_options"], json!({"include_usage": true}));
        let plain = body(&requests[0], Options::default());
        assert_eq!(
            plain,
            json!({"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hello!"}]}),
            "nothing the request did not set"
        );
        let schema = body(&requests[2], Options::default());
        assert_eq!(schema["response_format"]["type"], "json_schema");
        assert_eq!(schema["response_format"]["json_schema"]["name"], "colour");
        assert_eq!(body(&requests[3], Options::default())["response_format"], json!({"type": "json_object"}));
    }

    #[test]
    fn what_openai_has_no_field_for_or_would_refuse_is_left_out() {
        let cached = Some(CacheControl { ttl: Some("1h".into()) });
        let request = ChatRequest {
            model: "m".into(),
            system: vec![Text { text: "Long prefix.".into(), cache: cached.clone() }],
            messages: vec![Message {
                role: Role::User,
                content: vec![Part::Text(Text { text: "hi".into(), cache: cached.clone() })],
                tool_calls: Vec::new(),
                tool_call_id: None,
            }],
            tool_choice: Some(ToolChoice::Auto),
            parallel_tool_calls: Some(false),
            stream: true,
            ..ChatRequest::default()
        };
        let options = Options { stream_usage: false, ..Options::default() };
        assert_eq!(
            body(&request, options),
            json!({"model": "m", "messages": [{"role": "system", "content": "Long prefix."}, {"role": "user", "content": "hi"}], "stream": true}),
            "no cache hints; no tool settings without tools; no stream_options when the backend refuses them"
        );
        let orphan = ChatRequest {
            messages: vec![Message {
                role: Role::Tool,
                content: Vec::new(),
                tool_calls: Vec::new(),
                tool_call_id: None,
            }],
            ..ChatRequest::default()
        };
        let err = build_request(&orphan, Options::default()).unwrap_err();
        assert_eq!(err.message, "messages[0]: a tool result must name the tool call it answers");
        assert_eq!(err.param.as_deref(), Some("messages"));
    }
}
