//! `POST /v1/responses` bodies: read, checked, and turned into the hub's request.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses/create>.
//!
//! Parameters are sorted as for chat completions (`openai/to_hub.rs`):
//! - translated: what [`ChatRequest`] holds, plus what the gateway itself acts on (`store`,
//!   `previous_response_id`, `metadata`, which the response repeats);
//! - dropped: tuning other providers lack whose absence changes no shape of the answer
//!   (`reasoning`, `service_tier`, `truncation`, prompt-cache hints, `stream_options`, `include`
//!   of data only OpenAI's hosted tools or reasoning produce);
//! - refused with a 400 naming the parameter: what would change the answer and cannot be
//!   honoured (hosted tools, background mode, stored prompts, conversation objects, log
//!   probabilities), and unknown parameters.

use super::items::{Item, Place, add_items, normalized, parse_item};
use crate::RawObject;
use crate::hub::{ChatRequest, ResponseFormat, Text, Tool, ToolChoice};
use crate::openai::RequestError;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Parameters read here.
const TRANSLATED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "text",
    "stream",
    "store",
    "previous_response_id",
    "metadata",
    "user",
    "safety_identifier",
    "include",
];

/// Parameters left out: no equivalent elsewhere, and the answer keeps its shape without them.
const DROPPED: &[&str] = &[
    "reasoning",
    "service_tier",
    "truncation",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "stream_options",
];

/// OpenAI's limits on `metadata`: the gateway stores it with the response, so it holds them too.
/// <https://platform.openai.com/docs/api-reference/responses/create#responses-create-metadata>
const METADATA_MAX_PAIRS: usize = 16;
const METADATA_MAX_KEY_CHARS: usize = 64;
const METADATA_MAX_VALUE_CHARS: usize = 512;

/// A parsed `/v1/responses` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// The public model name the caller asked for.
    pub model: String,
    pub stream: bool,
    /// This request's input items as the conversation store keeps them: messages with `type`
    /// and their content as parts (a string `input` is one user message).
    pub input: Vec<Value>,
    /// What the response object repeats of this request.
    pub echo: Echo,
    /// `input`, read.
    items: Vec<Item>,
    tools: Vec<Tool>,
    tool_choice: Option<ToolChoice>,
    parallel_tool_calls: Option<bool>,
    response_format: ResponseFormat,
    /// `user`, or else `safety_identifier` (its replacement): the end-user id for abuse checks.
    end_user: Option<String>,
}

/// The request's settings as the response object repeats them
/// (<https://platform.openai.com/docs/api-reference/responses/object>).
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub instructions: Option<String>,
    /// The function tools, each as `{type, name, description, parameters, strict}`.
    pub tools: Vec<Value>,
    /// `"auto"` when not given.
    pub tool_choice: Value,
    /// `{"format": ...}`; `{"format": {"type": "text"}}` when not given.
    pub text: Value,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub metadata: Map<String, Value>,
    /// Whether the response is kept for `previous_response_id` (OpenAI's default: yes).
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// OpenAI's default: true.
    pub parallel_tool_calls: bool,
    pub user: Option<String>,
}

/// Reads a `/v1/responses` body.
pub fn parse_request(body: &[u8]) -> Result<ResponsesRequest, RequestError> {
    let body = RawObject::parse(body)?;
    for key in body.keys() {
        if !TRANSLATED.contains(&key) && !DROPPED.contains(&key) {
            refuse_unsupported(&body, key)?;
        }
    }
    let field = |name: &'static str| move |e: crate::RawObjectError| RequestError::new(e.0, Some(name));
    let model = match body.get_as::<String>("model").map_err(field("model"))? {
        Some(model) if !model.is_empty() => model,
        _ => return Err(RequestError::new("you must provide a model parameter", Some("model"))),
    };
    let input = body
        .get_as::<Input>("input")
        .map_err(|_| RequestError::new("'input' must be a string or a list of items", Some("input")))?
        .ok_or_else(|| RequestError::new("you must provide an input parameter", Some("input")))?;
    let (items, input) = read_input(input)?;
    let (tools, tools_echo) = read_tools(body.get_as("tools").map_err(field("tools"))?.unwrap_or_default())?;
    let (tool_choice, tool_choice_echo) =
        match body.get_as::<Value>("tool_choice").map_err(field("tool_choice"))? {
            Some(choice) => read_tool_choice(choice)?,
            None => (None, Value::from("auto")),
        };
    let (response_format, text_echo) = read_text(body.get_as("text").map_err(field("text"))?)?;
    if let Some(include) = body.get_as::<Vec<String>>("include").map_err(field("include"))?
        && include.iter().any(|item| item == "message.output_text.logprobs")
    {
        return Err(RequestError::new(
            "log probabilities are not supported by this gateway",
            Some("include"),
        ));
    }
    let previous_response_id =
        body.get_as::<String>("previous_response_id").map_err(field("previous_response_id"))?;
    if previous_response_id.as_deref() == Some("") {
        return Err(RequestError::new(
            "'previous_response_id' must not be empty",
            Some("previous_response_id"),
        ));
    }
    let parallel_tool_calls = body.get_as("parallel_tool_calls").map_err(field("parallel_tool_calls"))?;
    let user: Option<String> = body.get_as("user").map_err(field("user"))?;
    let safety_identifier: Option<String> =
        body.get_as("safety_identifier").map_err(field("safety_identifier"))?;
    let echo = Echo {
        instructions: body.get_as("instructions").map_err(field("instructions"))?,
        tools: tools_echo,
        tool_choice: tool_choice_echo,
        text: text_echo,
        max_output_tokens: body.get_as("max_output_tokens").map_err(field("max_output_tokens"))?,
        temperature: body.get_as("temperature").map_err(field("temperature"))?,
        top_p: body.get_as("top_p").map_err(field("top_p"))?,
        metadata: read_metadata(body.get_as("metadata").map_err(field("metadata"))?)?,
        store: body.get_as("store").map_err(field("store"))?.unwrap_or(true),
        previous_response_id,
        parallel_tool_calls: parallel_tool_calls.unwrap_or(true),
        user: user.clone(),
    };
    Ok(ResponsesRequest {
        model,
        stream: body.get_as("stream").map_err(field("stream"))?.unwrap_or(false),
        input,
        echo,
        items,
        tools,
        tool_choice,
        parallel_tool_calls,
        response_format,
        end_user: user.or(safety_identifier),
    })
}

impl ResponsesRequest {
    /// Whether the response is to be stored (`store`, default true).
    pub fn store(&self) -> bool {
        self.echo.store
    }

    pub fn previous_response_id(&self) -> Option<&str> {
        self.echo.previous_response_id.as_deref()
    }

    /// The hub request asking `upstream_model`: the earlier turns' items (`history`: inputs and
    /// outputs, oldest first, as the conversation store keeps them) then this request's input.
    /// Only this request's `instructions` apply: a previous response's are not carried over
    /// (<https://platform.openai.com/docs/api-reference/responses/create#responses-create-instructions>).
    pub fn to_hub(&self, history: &[Value], upstream_model: &str) -> Result<ChatRequest, RequestError> {
        let mut items = Vec::with_capacity(history.len() + self.items.len());
        for (index, item) in history.iter().enumerate() {
            // A stored item this code cannot read is the gateway's problem, but the client can
            // act on it: start a new conversation.
            let path = format!("previous_response_id: stored item {index}");
            items.push(parse_item(item, Place { path: &path, param: "previous_response_id" })?);
        }
        items.extend(self.items.iter().cloned());
        let mut request = ChatRequest {
            model: upstream_model.to_owned(),
            system: self.echo.instructions.iter().map(Text::plain).collect(),
            tools: self.tools.clone(),
            tool_choice: self.tool_choice.clone(),
            parallel_tool_calls: self.parallel_tool_calls,
            max_tokens: self.echo.max_output_tokens,
            temperature: self.echo.temperature,
            top_p: self.echo.top_p,
            response_format: self.response_format.clone(),
            stream: self.stream,
            // A Responses stream always ends with the usage (in `response.completed`).
            include_usage: self.stream,
            user: self.end_user.clone(),
            ..ChatRequest::default()
        };
        add_items(&mut request, items);
        Ok(request)
    }
}

/// A parameter neither read nor dropped: refused unless it asks for nothing (`null`, `false`,
/// `top_logprobs: 0`).
fn refuse_unsupported(body: &RawObject<'_>, key: &str) -> Result<(), RequestError> {
    let raw = body.get(key).map(|v| v.get()).unwrap_or("null");
    let harmless =
        raw == "null" || (key == "background" && raw == "false") || (key == "top_logprobs" && raw == "0");
    if harmless {
        return Ok(());
    }
    let why = match key {
        "background" => "background mode is not supported by this gateway".to_owned(),
        "conversation" => {
            "conversation objects are not supported by this gateway; continue with previous_response_id"
                .to_owned()
        }
        "prompt" => "stored prompt templates are not supported by this gateway".to_owned(),
        "top_logprobs" => "log probabilities are not supported by this gateway".to_owned(),
        "max_tool_calls" => "a cap on tool calls cannot be enforced by this gateway".to_owned(),
        _ => format!("unknown parameter '{key}' (not supported by this gateway)"),
    };
    Err(RequestError::new(why, Some(key)))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Value>),
}

/// `input` read, and as the store keeps it.
fn read_input(input: Input) -> Result<(Vec<Item>, Vec<Value>), RequestError> {
    let raw = match input {
        Input::Text(text) => vec![json!({"type": "message", "role": "user", "content": text})],
        Input::Items(items) if items.is_empty() => {
            return Err(RequestError::new("'input' must not be empty", Some("input")));
        }
        Input::Items(items) => items,
    };
    let mut items = Vec::with_capacity(raw.len());
    let mut stored = Vec::with_capacity(raw.len());
    for (index, value) in raw.into_iter().enumerate() {
        let path = format!("input[{index}]");
        let item = parse_item(&value, Place { path: &path, param: "input" })?;
        stored.push(normalized(value, &item));
        items.push(item);
    }
    Ok((items, stored))
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// Function tools, and their echo. Hosted tools (`web_search`, `file_search`, ...) run inside
/// OpenAI; no other backend has them.
fn read_tools(tools: Vec<WireTool>) -> Result<(Vec<Tool>, Vec<Value>), RequestError> {
    let mut hub = Vec::with_capacity(tools.len());
    let mut echo = Vec::with_capacity(tools.len());
    for (index, tool) in tools.into_iter().enumerate() {
        if tool.kind != "function" {
            return Err(RequestError::new(
                format!(
                    "tools[{index}]: the built-in tool '{}' is not supported by this gateway; only function tools are",
                    tool.kind
                ),
                Some("tools"),
            ));
        }
        let Some(name) = tool.name.filter(|name| !name.is_empty()) else {
            return Err(RequestError::new(format!("tools[{index}].name: required"), Some("tools")));
        };
        // A function may take no arguments.
        let parameters = tool.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        // `strict` is passed on as given: left out, each backend applies its own default.
        echo.push(json!({
            "type": "function",
            "name": name,
            "description": tool.description,
            "parameters": parameters,
            "strict": tool.strict,
        }));
        hub.push(Tool { name, description: tool.description, parameters, strict: tool.strict, cache: None });
    }
    Ok((hub, echo))
}

fn read_tool_choice(choice: Value) -> Result<(Option<ToolChoice>, Value), RequestError> {
    let refuse = |what: &str| {
        RequestError::new(
            format!("'{what}' is not supported by this gateway; use auto, none, required or a function"),
            Some("tool_choice"),
        )
    };
    let hub = match &choice {
        Value::String(mode) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(refuse(other)),
        },
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => match object.get("name").and_then(Value::as_str) {
                Some(name) => ToolChoice::Function(name.to_owned()),
                None => return Err(RequestError::new("tool_choice.name: required", Some("tool_choice"))),
            },
            other => return Err(refuse(other.unwrap_or("tool_choice without a type"))),
        },
        _ => {
            return Err(RequestError::new(
                "'tool_choice' must be a string or an object",
                Some("tool_choice"),
            ));
        }
    };
    let echo = match &hub {
        ToolChoice::Function(name) => json!({"type": "function", "name": name}),
        _ => choice,
    };
    Ok((Some(hub), echo))
}

#[derive(Deserialize)]
struct WireText {
    #[serde(default)]
    format: Option<WireFormat>,
}

#[derive(Deserialize)]
struct WireFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    strict: Option<bool>,
}

/// `text.format` (<https://platform.openai.com/docs/guides/structured-outputs>), and its echo.
/// `text.verbosity` has no equivalent elsewhere and is dropped.
fn read_text(text: Option<WireText>) -> Result<(ResponseFormat, Value), RequestError> {
    let Some(format) = text.and_then(|text| text.format) else {
        return Ok((ResponseFormat::Text, json!({"format": {"type": "text"}})));
    };
    let (hub, echo) = match format.kind.as_str() {
        "text" => (ResponseFormat::Text, json!({"type": "text"})),
        "json_object" => (ResponseFormat::JsonObject, json!({"type": "json_object"})),
        "json_schema" => {
            let (Some(name), Some(schema)) = (format.name, format.schema) else {
                return Err(RequestError::new(
                    "text.format: a json_schema format needs a name and a schema",
                    Some("text"),
                ));
            };
            let mut echo =
                json!({"type": "json_schema", "name": name, "schema": schema, "strict": format.strict});
            if let Some(description) = format.description {
                echo["description"] = Value::from(description);
            }
            (ResponseFormat::JsonSchema { name, schema, strict: format.strict }, echo)
        }
        other => {
            return Err(RequestError::new(format!("text.format.type: unknown type '{other}'"), Some("text")));
        }
    };
    Ok((hub, json!({"format": echo})))
}

fn read_metadata(metadata: Option<Map<String, Value>>) -> Result<Map<String, Value>, RequestError> {
    let metadata = metadata.unwrap_or_default();
    let refuse = |why: String| Err(RequestError::new(why, Some("metadata")));
    if metadata.len() > METADATA_MAX_PAIRS {
        return refuse(format!("'metadata' may hold at most {METADATA_MAX_PAIRS} pairs"));
    }
    for (key, value) in &metadata {
        if key.chars().count() > METADATA_MAX_KEY_CHARS {
            return refuse(format!("metadata keys may be at most {METADATA_MAX_KEY_CHARS} characters"));
        }
        match value.as_str() {
            Some(text) if text.chars().count() <= METADATA_MAX_VALUE_CHARS => {}
            Some(_) => {
                return refuse(format!(
                    "metadata values may be at most {METADATA_MAX_VALUE_CHARS} characters"
                ));
            }
            None => return refuse(format!("metadata.{key}: values must be strings")),
        }
    }
    Ok(metadata)
}
