//! Hub request → Converse body (`POST /model/{modelId}/converse[-stream]`; the model id is in the
//! path, so the body has no `model` and no `stream`).
//!
//! What differs from OpenAI and how it is bridged:
//! - `system` is a top-level list of blocks, not a turn;
//! - turns alternate user/assistant and start with a user turn: tool results travel as
//!   `toolResult` blocks in a user turn, consecutive turns of one role are merged;
//! - images are raw bytes (base64 in JSON) with a format name: `data:` URLs only, no remote URLs;
//! - `temperature` and `topP` go from 0 to 1: above 1 is refused, not rescaled;
//! - tool-call arguments are JSON text in OpenAI and an object (`input`) in Bedrock;
//! - there is no JSON mode: a JSON response format becomes a tool the model is made to call
//!   ([`JSON_TOOL`]), as for Anthropic, whose input is then returned as the answer's text;
//! - `toolChoice` has `auto`, `any` and `tool` but no `none` (see [`tool_config`]);
//! - the service refuses unknown members, so only documented ones are written.

use crate::hub::{ChatRequest, ImageSource, Message, Part, ResponseFormat, Role, Tool, ToolChoice};
use crate::openai::RequestError;
use crate::turns::{alternating, tool_input};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// The tool a JSON response format is turned into (see the module docs).
pub const JSON_TOOL: &str = "json_response";

/// Per-backend settings of the translation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `maxTokens` when the client sent none; `None` leaves the model's own limit.
    pub default_max_tokens: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<SystemBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<InferenceConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
}

#[derive(Serialize)]
struct SystemBlock<'a> {
    text: &'a str,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
}

type Turn<'a> = crate::turns::Turn<Block<'a>>;

/// A content block: a union with exactly one member set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Block<'a> {
    Text(&'a str),
    Image { format: &'static str, source: ImageBytes<'a> },
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
}

#[derive(Serialize)]
struct ImageBytes<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    tool_use_id: &'a str,
    content: Vec<ResultBlock<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum ResultBlock<'a> {
    Text(&'a str),
    Image { format: &'static str, source: ImageBytes<'a> },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<ToolEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolEntry<'a> {
    tool_spec: ToolSpec<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: InputSchema<'a>,
}

#[derive(Serialize)]
struct InputSchema<'a> {
    json: &'a Value,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Choice<'a> {
    Auto {},
    Any {},
    Tool { name: &'a str },
}

/// The schema of a JSON object response without a schema of its own.
fn any_object() -> &'static Value {
    static ANY_OBJECT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    ANY_OBJECT.get_or_init(|| serde_json::json!({"type": "object"}))
}

/// The Converse body for `request`.
pub fn build_request(request: &ChatRequest, options: Options) -> Result<Vec<u8>, RequestError> {
    for (value, name) in [(request.temperature, "temperature"), (request.top_p, "top_p")] {
        if let Some(value) = value
            && !(0.0..=1.0).contains(&value)
        {
            return Err(RequestError::new(format!("this backend accepts a {name} from 0 to 1"), Some(name)));
        }
    }
    if request.max_tokens == Some(0) {
        return Err(RequestError::new("max_tokens must be at least 1", Some("max_tokens")));
    }
    let messages = turns(&request.messages)?;
    let tool_config = tool_config(request, &messages)?;
    let inference = InferenceConfig {
        max_tokens: request.max_tokens.or(options.default_max_tokens),
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: &request.stop,
    };
    let empty = inference.max_tokens.is_none()
        && inference.temperature.is_none()
        && inference.top_p.is_none()
        && inference.stop_sequences.is_empty();
    let body = Body {
        messages,
        // Blank system text is refused by the service; it says nothing anyway.
        system: request
            .system
            .iter()
            .filter(|t| !t.text.trim().is_empty())
            .map(|t| SystemBlock { text: &t.text })
            .collect(),
        inference_config: (!empty).then_some(inference),
        tool_config,
    };
    serde_json::to_vec(&body).map_err(|err| RequestError::new(err.to_string(), None))
}

/// `toolConfig`, with the JSON response format's forced tool when there is one.
///
/// Bedrock has no `toolChoice: none`, and refuses `toolUse`/`toolResult` blocks in a request
/// without `toolConfig`: for `none`, the tools are left out unless the conversation already holds
/// tool blocks, in which case they stay with the default choice (the closest the API allows).
fn tool_config<'a>(
    request: &'a ChatRequest,
    turns: &[Turn<'a>],
) -> Result<Option<ToolConfig<'a>>, RequestError> {
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
        let spec = ToolSpec {
            name: JSON_TOOL,
            description: Some("Respond with a JSON value matching this schema."),
            input_schema: InputSchema { json: schema },
        };
        return Ok(Some(ToolConfig {
            tools: vec![ToolEntry { tool_spec: spec }],
            tool_choice: Some(Choice::Tool { name: JSON_TOOL }),
        }));
    }
    let has_tool_blocks =
        turns.iter().flat_map(|t| &t.content).any(|b| matches!(b, Block::ToolUse(_) | Block::ToolResult(_)));
    if request.tools.is_empty() {
        // OpenAI accepts a conversation with tool calls and no `tools` (a follow-up that only
        // asks about the results); Bedrock needs `toolConfig` for it, so the tools the history
        // calls are declared, without a schema of their own.
        if !has_tool_blocks {
            return Ok(None);
        }
        let mut names: Vec<&str> = turns
            .iter()
            .flat_map(|t| &t.content)
            .filter_map(|b| match b {
                Block::ToolUse(call) => Some(call.name),
                _ => None,
            })
            .collect();
        names.sort_unstable();
        names.dedup();
        if names.is_empty() {
            return Err(RequestError::new(
                "tool results without the tool calls they answer are not supported by this backend",
                Some("messages"),
            ));
        }
        let tools = names
            .into_iter()
            .map(|name| ToolEntry {
                tool_spec: ToolSpec {
                    name,
                    description: Some("A tool this conversation used earlier."),
                    input_schema: InputSchema { json: any_object() },
                },
            })
            .collect();
        return Ok(Some(ToolConfig { tools, tool_choice: None }));
    }
    let tool_choice = match &request.tool_choice {
        None => None,
        Some(ToolChoice::Auto) => Some(Choice::Auto {}),
        Some(ToolChoice::None) if has_tool_blocks => None,
        Some(ToolChoice::None) => return Ok(None),
        Some(ToolChoice::Required) => Some(Choice::Any {}),
        Some(ToolChoice::Function(name)) => Some(Choice::Tool { name }),
    };
    // `parallel_tool_calls: false` has no Converse equivalent; the model decides.
    Ok(Some(ToolConfig { tools: request.tools.iter().map(tool_entry).collect(), tool_choice }))
}

fn tool_entry(tool: &Tool) -> ToolEntry<'_> {
    ToolEntry {
        tool_spec: ToolSpec {
            name: &tool.name,
            description: tool.description.as_deref().filter(|d| !d.is_empty()),
            input_schema: InputSchema { json: &tool.parameters },
        },
    }
}

/// The conversation as alternating user/assistant turns.
fn turns(messages: &[Message]) -> Result<Vec<Turn<'_>>, RequestError> {
    alternating(messages, |index, message| {
        Ok(match message.role {
            Role::User => ("user", content_blocks(&message.content, index)?),
            Role::Assistant => {
                let mut blocks = content_blocks(&message.content, index)?;
                if blocks.iter().any(|b| matches!(b, Block::Image { .. })) {
                    return Err(RequestError::new(
                        format!("messages[{index}]: this backend accepts images from the user only"),
                        Some("messages"),
                    ));
                }
                for (call_index, call) in message.tool_calls.iter().enumerate() {
                    let input = tool_input(&call.arguments, index, call_index)?;
                    blocks.push(Block::ToolUse(ToolUse { tool_use_id: &call.id, name: &call.name, input }));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let id = message.tool_call_id.as_deref().unwrap_or_default();
                let mut content = Vec::new();
                for block in content_blocks(&message.content, index)? {
                    match block {
                        Block::Text(text) => content.push(ResultBlock::Text(text)),
                        Block::Image { format, source } => {
                            content.push(ResultBlock::Image { format, source })
                        }
                        Block::ToolUse(_) | Block::ToolResult(_) => {}
                    }
                }
                if content.is_empty() {
                    // A tool that returned nothing: the service refuses an empty or blank result.
                    content.push(ResultBlock::Text("(no output)"));
                }
                ("user", vec![Block::ToolResult(ToolResult { tool_use_id: id, content })])
            }
        })
    })
}

/// A message's parts as blocks; blank text is left out (the service refuses it).
fn content_blocks(parts: &[Part], index: usize) -> Result<Vec<Block<'_>>, RequestError> {
    let mut blocks = Vec::with_capacity(parts.len());
    for (part_index, part) in parts.iter().enumerate() {
        match part {
            Part::Text(text) if text.text.trim().is_empty() => {}
            Part::Text(text) => blocks.push(Block::Text(&text.text)),
            Part::Image(image) => {
                let at = format!("messages[{index}].content[{part_index}]");
                let (format, data) = match &image.source {
                    ImageSource::Url(_) => {
                        return Err(RequestError::new(
                            format!("{at}: this backend takes images as data: URLs (base64), not links"),
                            Some("messages"),
                        ));
                    }
                    ImageSource::Base64 { media_type, data } => (image_format(media_type).ok_or_else(|| {
                        RequestError::new(
                            format!("{at}: image type {media_type} is not supported by this backend (jpeg, png, gif, webp)"),
                            Some("messages"),
                        )
                    })?, data),
                };
                blocks.push(Block::Image { format, source: ImageBytes { bytes: data } });
            }
        }
    }
    Ok(blocks)
}

/// Bedrock's `ImageFormat` for a media type.
fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ModelRequest;

    fn build(body: &str) -> Result<serde_json::Value, RequestError> {
        let request = ModelRequest::parse(body.as_bytes())
            .unwrap()
            .to_hub("anthropic.claude-3-haiku-20240307-v1:0")
            .unwrap();
        build_request(&request, Options::default()).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn what_bedrock_would_refuse_is_refused_here_with_the_reason() {
        let user = r#"{"role":"user","content":"hi"}"#;
        for (body, param, words) in [
            (format!(r#"{{"model":"m","messages":[{user}],"temperature":1.5}}"#), "temperature", "from 0 to 1"),
            (r#"{"model":"m","messages":[{"role":"assistant","content":"hi"}]}"#.to_owned(), "messages", "start with a user message"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#.to_owned(),
                "messages",
                "data: URLs",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#.to_owned(),
                "messages",
                "image/tiff is not supported",
            ),
        ] {
            let err = build(&body).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{body}");
            assert!(err.message.contains(words), "{body}: {}", err.message);
        }
    }

    #[test]
    fn tool_choice_none_keeps_tools_only_when_the_history_needs_them() {
        let tools = r#""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
        let body = build(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"tool_choice":"none",{tools}}}"#
        ))
        .unwrap();
        assert!(body.get("toolConfig").is_none());
        let body = build(&format!(
            r#"{{"model":"m","tool_choice":"none",{tools},"messages":[{{"role":"user","content":"hi"}},
            {{"role":"assistant","tool_calls":[{{"id":"c1","type":"function","function":{{"name":"f","arguments":""}}}}]}},
            {{"role":"tool","tool_call_id":"c1","content":""}}]}}"#
        ))
        .unwrap();
        assert!(body["toolConfig"].get("toolChoice").is_none());
        assert_eq!(body["messages"][1]["content"][0]["toolUse"]["input"], serde_json::json!({}));
        assert_eq!(body["messages"][2]["content"][0]["toolResult"]["content"][0]["text"], "(no output)");
        assert!(body.get("inferenceConfig").is_none() && body.get("system").is_none());
        // The same history without `tools`: the tool it calls is declared for Bedrock.
        let body = build(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"},{"role":"user","content":"so?"}]}"#,
        )
        .unwrap();
        assert_eq!(body["toolConfig"]["tools"][0]["toolSpec"]["name"], "f");
        assert_eq!(body["messages"].as_array().unwrap().len(), 3, "the result and the question merge");
    }
}
