//! OpenAI chat completion requests into the hub: how an OpenAI client's request reaches a
//! provider with another dialect. (Answers go back through `render.rs`.)
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/create>.
//!
//! Parameters are sorted three ways when the backend is not OpenAI-compatible:
//! - translated: everything [`ChatRequest`] holds;
//! - dropped: sampling knobs other dialects do not have and whose absence changes no shape of the
//!   answer (`seed`, `presence_penalty`, `frequency_penalty`, `logit_bias`, `service_tier`,
//!   `store`, `metadata`, `reasoning_effort`, `prompt_cache_key`, `safety_identifier`,
//!   `stream_options` beyond `include_usage`);
//! - refused with a 400 naming the parameter: what would change the answer's shape and cannot be
//!   honoured (`n` above 1, `logprobs`, audio, predicted outputs, the deprecated `functions`).
//!   Unknown parameters are refused too: silently ignoring a parameter a client relies on is how
//!   translation bugs hide.

use super::{ModelRequest, RequestError};
use crate::RawObject;
use crate::hub::{
    CacheControl, ChatRequest, Image, ImageSource, Message, Part, ResponseFormat, Role, Text, Tool, ToolCall,
    ToolChoice,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Parameters carried into the hub.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "response_format",
    "stream",
    "stream_options",
    "user",
];

/// Parameters left out: tuning other dialects lack, which changes no shape of the answer.
const DROPPED: &[&str] = &[
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "service_tier",
    "store",
    "metadata",
    "reasoning_effort",
    "prompt_cache_key",
    "safety_identifier",
    "verbosity",
    "web_search_options",
];

impl ModelRequest<'_> {
    /// This request in the hub's terms, for a backend that is not OpenAI-compatible, asking
    /// `upstream_model`.
    pub fn to_hub(&self, upstream_model: &str) -> Result<ChatRequest, RequestError> {
        to_hub(&self.body, upstream_model, self.stream, self.include_usage)
    }
}

fn to_hub(
    body: &RawObject<'_>,
    upstream_model: &str,
    stream: bool,
    include_usage: bool,
) -> Result<ChatRequest, RequestError> {
    for key in body.keys() {
        if TRANSLATED.contains(&key) || DROPPED.contains(&key) {
            continue;
        }
        refuse_unsupported(body, key)?;
    }
    let field = |name: &'static str| move |e: crate::RawObjectError| RequestError::new(e.0, Some(name));
    let messages: Vec<WireMessage> = body
        .get_as("messages")
        .map_err(field("messages"))?
        .ok_or_else(|| RequestError::new("you must provide a messages parameter", Some("messages")))?;
    let mut request =
        ChatRequest { model: upstream_model.to_owned(), stream, include_usage, ..ChatRequest::default() };
    for (index, message) in messages.into_iter().enumerate() {
        add_message(&mut request, message, index)?;
    }
    if let Some(tools) = body.get_as::<Vec<WireTool>>("tools").map_err(field("tools"))? {
        request.tools = tools.into_iter().map(WireTool::into_hub).collect::<Result<_, _>>()?;
    }
    request.tool_choice = body
        .get_as::<WireToolChoice>("tool_choice")
        .map_err(field("tool_choice"))?
        .map(WireToolChoice::into_hub);
    request.parallel_tool_calls = body.get_as("parallel_tool_calls").map_err(field("parallel_tool_calls"))?;
    request.max_tokens = match body.get_as("max_completion_tokens").map_err(field("max_completion_tokens"))? {
        Some(max) => Some(max),
        None => body.get_as("max_tokens").map_err(field("max_tokens"))?,
    };
    request.temperature = body.get_as("temperature").map_err(field("temperature"))?;
    request.top_p = body.get_as("top_p").map_err(field("top_p"))?;
    request.stop = match body.get_as::<Stop>("stop").map_err(field("stop"))? {
        None => Vec::new(),
        Some(Stop::One(stop)) => vec![stop],
        Some(Stop::Many(stops)) => stops,
    };
    if let Some(format) =
        body.get_as::<WireResponseFormat>("response_format").map_err(field("response_format"))?
    {
        request.response_format = format.into_hub()?;
    }
    request.user = body.get_as("user").map_err(field("user"))?;
    Ok(request)
}

/// A parameter that is neither translated nor dropped: refused, unless it asks for nothing
/// (`n: 1`, `logprobs: false`, `null`).
fn refuse_unsupported(body: &RawObject<'_>, key: &str) -> Result<(), RequestError> {
    let raw = body.get(key).map(|v| v.get()).unwrap_or("null");
    let harmless = match key {
        "n" => raw == "1" || raw == "null",
        "logprobs" => raw == "false" || raw == "null",
        "top_logprobs" | "modalities" | "audio" | "prediction" => raw == "null",
        _ => raw == "null",
    };
    if harmless {
        return Ok(());
    }
    let why = match key {
        "n" => "more than one choice (n > 1) is not supported by this backend".to_owned(),
        "logprobs" | "top_logprobs" => "log probabilities are not supported by this backend".to_owned(),
        "modalities" | "audio" => "audio output is not supported by this backend".to_owned(),
        "prediction" => "predicted outputs are not supported by this backend".to_owned(),
        "functions" | "function_call" => {
            format!("'{key}' is deprecated and not translated; use 'tools' and 'tool_choice'")
        }
        _ => format!("unknown parameter '{key}' (not supported by this backend)"),
    };
    Err(RequestError::new(why, Some(key)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Deserialize)]
struct WirePart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<WireImageUrl>,
    /// Anthropic's prompt-cache breakpoint, as some OpenAI clients send it on parts.
    #[serde(default)]
    cache_control: Option<WireCacheControl>,
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct WireCacheControl {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ttl: Option<String>,
}

impl WireCacheControl {
    fn into_hub(self, param: &str) -> Result<CacheControl, RequestError> {
        if self.kind != "ephemeral" {
            return Err(RequestError::at(format!("{param}.cache_control.type must be 'ephemeral'")));
        }
        Ok(CacheControl { ttl: self.ttl })
    }
}

#[derive(Deserialize)]
struct WireToolCall {
    id: String,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    function: WireFunctionCall,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

impl RequestError {
    /// An error whose message starts with the field path; `param` is its top-level parameter.
    fn at(message: String) -> RequestError {
        let param = message.split(['[', '.', ':']).next().map(str::to_owned);
        RequestError { message, param }
    }
}

fn add_message(request: &mut ChatRequest, message: WireMessage, index: usize) -> Result<(), RequestError> {
    let at = format!("messages[{index}]");
    let content = match message.content {
        None => Vec::new(),
        Some(WireContent::Text(text)) => vec![Part::Text(Text::plain(text))],
        Some(WireContent::Parts(parts)) => parts
            .into_iter()
            .enumerate()
            .map(|(i, part)| convert_part(part, &format!("{at}.content[{i}]")))
            .collect::<Result<_, _>>()?,
    };
    match message.role.as_str() {
        "system" | "developer" => {
            for part in content {
                match part {
                    Part::Text(text) => request.system.push(text),
                    Part::Image(_) => {
                        return Err(RequestError::at(format!("{at}: a system message can hold text only")));
                    }
                }
            }
        }
        "user" => request.messages.push(Message {
            role: Role::User,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }),
        "assistant" => {
            let mut tool_calls = Vec::new();
            for (i, call) in message.tool_calls.unwrap_or_default().into_iter().enumerate() {
                if call.kind.as_deref().is_some_and(|kind| kind != "function") {
                    return Err(RequestError::at(format!(
                        "{at}.tool_calls[{i}].type: only 'function' tool calls are supported"
                    )));
                }
                tool_calls.push(ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                });
            }
            request.messages.push(Message { role: Role::Assistant, content, tool_calls, tool_call_id: None });
        }
        "tool" => {
            let Some(id) = message.tool_call_id else {
                return Err(RequestError::at(format!("{at}.tool_call_id: required for role 'tool'")));
            };
            request.messages.push(Message {
                role: Role::Tool,
                content,
                tool_calls: Vec::new(),
                tool_call_id: Some(id),
            });
        }
        "function" => {
            return Err(RequestError::at(format!(
                "{at}.role: 'function' is deprecated and not translated; use 'tool'"
            )));
        }
        other => return Err(RequestError::at(format!("{at}.role: unknown role '{other}'"))),
    }
    Ok(())
}

fn convert_part(part: WirePart, at: &str) -> Result<Part, RequestError> {
    let cache = part.cache_control.map(|c| c.into_hub(at)).transpose()?;
    match part.kind.as_str() {
        "text" => {
            let Some(text) = part.text else {
                return Err(RequestError::at(format!("{at}.text: required for a text part")));
            };
            Ok(Part::Text(Text { text, cache }))
        }
        "image_url" => {
            let Some(image) = part.image_url else {
                return Err(RequestError::at(format!("{at}.image_url: required for an image_url part")));
            };
            Ok(Part::Image(Image { source: image_source(&image.url, at)?, detail: image.detail }))
        }
        other => {
            Err(RequestError::at(format!("{at}.type: '{other}' parts are not supported by this backend")))
        }
    }
}

/// An image URL: `http(s)://` passed on, `data:<media type>;base64,<data>` decoded into its parts.
fn image_source(url: &str, at: &str) -> Result<ImageSource, RequestError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((meta, data)) = rest.split_once(',') else {
            return Err(RequestError::at(format!("{at}.image_url.url: a data URL without ','")));
        };
        let Some(media_type) = meta.strip_suffix(";base64") else {
            return Err(RequestError::at(format!("{at}.image_url.url: data URLs must be base64")));
        };
        return Ok(ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url(url.to_owned()));
    }
    Err(RequestError::at(format!("{at}.image_url.url: must be an http(s) or data URL")))
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<WireFunction>,
    #[serde(default)]
    cache_control: Option<WireCacheControl>,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

impl WireTool {
    fn into_hub(self) -> Result<Tool, RequestError> {
        let (Some(function), "function") = (self.function, self.kind.as_str()) else {
            return Err(RequestError::new(
                "only function tools are supported by this backend",
                Some("tools"),
            ));
        };
        let cache = self.cache_control.map(|c| c.into_hub("tools")).transpose()?;
        Ok(Tool {
            name: function.name,
            description: function.description,
            // OpenAI allows omitting parameters: a function without arguments.
            parameters: function.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            strict: function.strict,
            cache,
        })
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Named { function: NamedFunction },
}

#[derive(Deserialize)]
struct NamedFunction {
    name: String,
}

impl WireToolChoice {
    fn into_hub(self) -> ToolChoice {
        match self {
            WireToolChoice::Mode(mode) => match mode.as_str() {
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                _ => ToolChoice::Auto,
            },
            WireToolChoice::Named { function } => ToolChoice::Function(function.name),
        }
    }
}

#[derive(Deserialize)]
struct WireResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<WireJsonSchema>,
}

#[derive(Deserialize)]
struct WireJsonSchema {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

impl WireResponseFormat {
    fn into_hub(self) -> Result<ResponseFormat, RequestError> {
        match (self.kind.as_str(), self.json_schema) {
            ("text", _) => Ok(ResponseFormat::Text),
            ("json_object", _) => Ok(ResponseFormat::JsonObject),
            ("json_schema", Some(schema)) => Ok(ResponseFormat::JsonSchema {
                name: schema.name,
                schema: schema.schema.unwrap_or_else(|| json!({"type": "object"})),
                strict: schema.strict,
            }),
            ("json_schema", None) => {
                Err(RequestError::new("'json_schema' is required for this type", Some("response_format")))
            }
            (other, _) => Err(RequestError::at(format!("response_format.type: unknown type '{other}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(body: &str) -> Result<ChatRequest, RequestError> {
        ModelRequest::parse(body.as_bytes()).unwrap().to_hub("upstream-model")
    }

    #[test]
    fn a_whole_conversation_reaches_the_hub() {
        let request = hub(r#"{
            "model": "public", "stream": true, "stream_options": {"include_usage": true},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is here?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"at\":\"cat\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "description": "Looks.",
                "parameters": {"type": "object", "properties": {"at": {"type": "string"}}, "required": ["at"]}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "parallel_tool_calls": false, "max_completion_tokens": 300, "max_tokens": 5,
            "temperature": 0.2, "top_p": 0.9, "stop": "END", "user": "u-1", "seed": 7,
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}}
        }"#)
        .unwrap();
        assert_eq!(request.model, "upstream-model");
        assert!(request.stream && request.include_usage);
        assert_eq!(
            request.system,
            vec![
                Text::plain("Be brief."),
                Text { text: "Use tools.".into(), cache: Some(CacheControl { ttl: None }) }
            ]
        );
        assert_eq!(request.messages.len(), 3);
        assert_eq!(
            request.messages[0].content[1],
            Part::Image(Image {
                source: ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() },
                detail: Some("low".into()),
            })
        );
        assert_eq!(
            request.messages[0].content[2],
            Part::Image(Image {
                source: ImageSource::Url("https://example.com/cat.jpg".into()),
                detail: None
            })
        );
        assert_eq!(
            request.messages[1].tool_calls,
            vec![ToolCall { id: "call_1".into(), name: "look".into(), arguments: r#"{"at":"cat"}"#.into() }]
        );
        assert_eq!(
            (request.messages[2].role, request.messages[2].tool_call_id.as_deref()),
            (Role::Tool, Some("call_1"))
        );
        assert_eq!(request.messages[2].text(), "a cat");
        assert_eq!(request.tools[0].parameters["required"], json!(["at"]));
        assert_eq!(request.tool_choice, Some(ToolChoice::Function("look".into())));
        assert_eq!(request.parallel_tool_calls, Some(false));
        assert_eq!(request.max_tokens, Some(300), "max_completion_tokens wins over the older max_tokens");
        assert_eq!((request.temperature, request.top_p), (Some(0.2), Some(0.9)));
        assert_eq!(request.stop, vec!["END".to_owned()]);
        assert_eq!(request.user.as_deref(), Some("u-1"));
        assert!(
            matches!(request.response_format, ResponseFormat::JsonSchema { ref name, strict: Some(true), .. } if name == "answer")
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_naming_the_parameter() {
        let base = r#""model":"m","messages":[{"role":"user","content":"hi"}]"#;
        for (extra, param, words) in [
            (r#""n":2"#, "n", "n > 1"),
            (r#""logprobs":true"#, "logprobs", "log probabilities"),
            (r#""modalities":["text","audio"]"#, "modalities", "audio"),
            (r#""functions":[{"name":"f"}]"#, "functions", "use 'tools'"),
            (r#""frobnicate":1"#, "frobnicate", "unknown parameter"),
        ] {
            let err = hub(&format!("{{{base},{extra}}}")).unwrap_err();
            assert_eq!(err.param.as_deref(), Some(param), "{extra}");
            assert!(err.message.contains(words), "{extra}: {}", err.message);
        }
        // Asking for nothing is not refused, and tuning without an equivalent is dropped.
        assert!(
            hub(&format!(r#"{{{base},"n":1,"logprobs":false,"seed":3,"presence_penalty":0.5}}"#)).is_ok()
        );
        let err = hub(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#)
            .unwrap_err();
        assert_eq!(
            err.message,
            "messages[0].content[0].type: 'input_audio' parts are not supported by this backend"
        );
        assert_eq!(err.param.as_deref(), Some("messages"));
        let err = hub(r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#).unwrap_err();
        assert_eq!(err.message, "messages[0].tool_call_id: required for role 'tool'");
        let err = hub(r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]}"#).unwrap_err();
        assert!(err.message.ends_with("must be an http(s) or data URL"), "{}", err.message);
    }
}
