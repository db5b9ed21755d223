//! Hub request → Anthropic `POST /v1/messages` body.
//!
//! What differs from OpenAI and how it is bridged:
//! - `system` is a top-level field, not a turn;
//! - turns alternate user/assistant: tool results travel as `tool_result` blocks in a user turn,
//!   and consecutive turns of one role are merged into one;
//! - `max_tokens` is required: the client's, else the route's or provider's default;
//! - `temperature` goes from 0 to 1 (OpenAI's goes to 2): above 1 is refused, not rescaled;
//! - tool-call arguments are JSON text in OpenAI and an object in Anthropic;
//! - JSON output: there is no JSON mode, so a JSON response format becomes a tool the model is
//!   made to call ([`JSON_TOOL`]), whose input is then returned as the answer's text.

use crate::hub::{
    CacheControl, ChatRequest, ImageSource, Message, Part, ResponseFormat, Role, Text, Tool, ToolChoice,
};
use crate::openai::RequestError;
use crate::turns::{alternating, tool_input};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The tool a JSON response format is turned into (see the module docs).
pub const JSON_TOOL: &str = "json_response";

/// Media types Anthropic accepts for images.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Per-backend settings of the translation.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `max_tokens` when the client sent none.
    pub default_max_tokens: u32,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<TextBlock<'a>>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolDefinition<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

type Turn<'a> = crate::turns::Turn<Block<'a>>;

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<Cache<'a>>,
}

#[derive(Serialize)]
struct Cache<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'a str>,
}

fn cache(control: Option<&CacheControl>) -> Option<Cache<'_>> {
    control.map(|c| Cache { kind: "ephemeral", ttl: c.ttl.as_deref() })
}

fn text_block(text: &Text) -> TextBlock<'_> {
    TextBlock { kind: "text", text: &text.text, cache_control: cache(text.cache.as_ref()) }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<Cache<'a>>,
    },
    Image {
        source: ImageBlockSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Box<RawValue>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<Block<'a>>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageBlockSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct ToolDefinition<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<Cache<'a>>,
}

#[derive(Serialize)]
struct Choice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

/// The schema of a JSON object response without a schema of its own.
fn any_object() -> &'static Value {
    static ANY_OBJECT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    ANY_OBJECT.get_or_init(|| serde_json::json!({"type": "object"}))
}

/// The Messages API body for `request`.
pub fn build_request(request: &ChatRequest, options: Options) -> Result<Vec<u8>, RequestError> {
    if let Some(temperature) = request.temperature
        && !(0.0..=1.0).contains(&temperature)
    {
        return Err(RequestError::new("this backend accepts a temperature from 0 to 1", Some("temperature")));
    }
    let mut tools: Vec<ToolDefinition<'_>> = request.tools.iter().map(tool_definition).collect();
    let mut tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => Choice { kind: "auto", name: None, disable_parallel_tool_use: None },
        ToolChoice::None => Choice { kind: "none", name: None, disable_parallel_tool_use: None },
        ToolChoice::Required => Choice { kind: "any", name: None, disable_parallel_tool_use: None },
        ToolChoice::Function(name) => {
            Choice { kind: "tool", name: Some(name), disable_parallel_tool_use: None }
        }
    });
    let schema = match &request.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(any_object()),
        ResponseFormat::JsonSchema { schema, .. } => Some(schema),
    };
    if let Some(schema) = schema {
        if !request.tools.is_empty() {
            return Err(RequestError::new(
                "a JSON response format together with tools is not supported by this backend",
                Some("response_format"),
            ));
        }
        tools.push(ToolDefinition {
            name: JSON_TOOL,
            description: Some("Respond with a JSON value matching this schema."),
            input_schema: schema,
            cache_control: None,
        });
        tool_choice = Some(Choice { kind: "tool", name: Some(JSON_TOOL), disable_parallel_tool_use: None });
    }
    if request.parallel_tool_calls == Some(false) && !tools.is_empty() {
        let choice =
            tool_choice.get_or_insert(Choice { kind: "auto", name: None, disable_parallel_tool_use: None });
        if choice.kind != "none" {
            choice.disable_parallel_tool_use = Some(true);
        }
    }
    let body = Body {
        model: &request.model,
        max_tokens: request.max_tokens.unwrap_or(options.default_max_tokens),
        system: request.system.iter().map(text_block).collect(),
        messages: turns(&request.messages)?,
        tools,
        tool_choice,
        stop_sequences: &request.stop,
        temperature: request.temperature,
        top_p: request.top_p,
        stream: request.stream,
        metadata: request.user.as_deref().map(|user_id| Metadata { user_id }),
    };
    serde_json::to_vec(&body).map_err(|err| RequestError::new(err.to_string(), None))
}

fn tool_definition(tool: &Tool) -> ToolDefinition<'_> {
    ToolDefinition {
        name: &tool.name,
        description: tool.description.as_deref(),
        input_schema: &tool.parameters,
        cache_control: cache(tool.cache.as_ref()),
    }
}

/// The conversation as alternating user/assistant turns.
fn turns(messages: &[Message]) -> Result<Vec<Turn<'_>>, RequestError> {
    alternating(messages, |index, message| {
        Ok(match message.role {
            Role::User => ("user", content_blocks(&message.content, index)?),
            Role::Assistant => {
                let mut blocks = content_blocks(&message.content, index)?;
                for (call_index, call) in message.tool_calls.iter().enumerate() {
                    let input = tool_input(&call.arguments, index, call_index)?;
                    blocks.push(Block::ToolUse { id: &call.id, name: &call.name, input });
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let id = message.tool_call_id.as_deref().unwrap_or_default();
                let content = content_blocks(&message.content, index)?;
                ("user", vec![Block::ToolResult { tool_use_id: id, content }])
            }
        })
    })
}

/// A message's parts as blocks; empty text is left out (Anthropic refuses empty text blocks).
fn content_blocks(parts: &[Part], index: usize) -> Result<Vec<Block<'_>>, RequestError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (part_index, part) in parts.iter().enumerate() {
        match part {
            Part::Text(text) if text.text.is_empty() => {}
            Part::Text(text) => {
                blocks.push(Block::Text { text: &text.text, cache_control: cache(text.cache.as_ref()) });
            }
            Part::Image(image) => {
                let source = match &image.source {
                    ImageSource::Url(url) => ImageBlockSource::Url { url },
                    ImageSource::Base64 { media_type, data } => {
                        if !IMAGE_TYPES.contains(&media_type.as_str()) {
                            return Err(RequestError::new(
                                format!(
                                    "messages[{index}].content[{part_index}]: image type {media_type} is not supported by this backend (jpeg, png, gif, webp)"
                                ),
                                Some("messages"),
                            ));
                        }
                        ImageBlockSource::Base64 { media_type, data }
                    }
                };
                blocks.push(Block::Image { source });
            }
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ModelRequest;

    fn build(body: &str) -> Result<serde_json::Value, RequestError> {
        let request = ModelRequest::parse(body.as_bytes()).unwrap().to_hub("claude").unwrap();
        build_request(&request, Options { default_max_tokens: 1024 })
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn what_anthropic_would_refuse_is_refused_here_with_the_reason() {
        let user = r#"{"role":"user","content":"hi"}"#;
        for (body, param, words) in [
            (format!(r#"{{"model":"m","messages":[{user}],"temperature":1.5}}"#), "temperature", "from 0 to 1"),
            (r#"{"model":"m","messages":[{"role":"assistant","content":"hi"}]}"#.to_owned(), "messages", "start with a user message"),
            (r#"{"model":"m","messages":[{"role":"system","content":"only"}]}"#.to_owned(), "messages", "at least one user message"),
            (
                format!(r#"{{"model":"m","messages":[{user},{{"role":"assistant","tool_calls":[{{"id":"c","type":"function","function":{{"name":"f","arguments":"[1]"}}}}]}}]}}"#),
                "messages",
                "messages[1].tool_calls[0].function.arguments: not a JSON object",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#.to_owned(),
                "messages",
                "image/tiff is not supported",
            ),
            (
                format!(r#"{{"model":"m","messages":[{user}],"tools":[{{"type":"function","function":{{"name":"f"}}}}],"response_format":{{"type":"json_object"}}}}"#),
                "response_format",
                "together with tools",
            ),
        ] {
            let err = build(&body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
            assert!(err.message.contains(words), "{body}: {}", err.message);
        }
    }

    #[test]
    fn defaults_and_small_conversions() {
        let body = build(r#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":""},
            {"role":"user","content":"again"}],"tool_choice":"none","tools":[{"type":"function","function":{"name":"f"}}],
            "parallel_tool_calls":false}"#)
        .unwrap();
        assert_eq!(body["max_tokens"], 1024, "the default when the client sent none");
        assert_eq!(
            body["messages"].as_array().unwrap().len(),
            1,
            "an empty assistant turn is dropped and the user turns merged"
        );
        assert_eq!(body["tool_choice"], serde_json::json!({"type": "none"}), "no parallel flag on 'none'");
        assert_eq!(body["tools"][0]["input_schema"], serde_json::json!({"type": "object", "properties": {}}));
        let body = build(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"required",
            "tools":[{"type":"function","function":{"name":"f"}}]}"#,
        )
        .unwrap();
        assert_eq!(body["tool_choice"], serde_json::json!({"type": "any"}));
        assert!(
            body.get("stream").is_none() && body.get("system").is_none() && body.get("metadata").is_none()
        );
    }
}
