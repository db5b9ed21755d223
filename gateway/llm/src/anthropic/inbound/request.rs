//! A Messages request into the hub, for a backend that does not speak the Messages API.
//!
//! Reference: <https://docs.anthropic.com/en/api/messages>. Validation follows the real API
//! where it is cheap to (required fields, roles, known block types, ranges), with its wording.
//!
//! Top-level parameters are sorted three ways:
//! - translated: everything [`ChatRequest`] holds (`output_config.format` becomes the hub's
//!   JSON-schema response format; `metadata.user_id` its `user`);
//! - dropped, each for the reason in [`DROPPED`]: they tune how Anthropic serves the request
//!   but not what a valid answer looks like;
//! - refused with the field's name: what only Anthropic can run (server tools, MCP servers,
//!   code-execution containers), and unknown fields, as the real API refuses them ("Extra
//!   inputs are not permitted"): silently ignoring a field a client relies on is how
//!   translation bugs hide.

use super::content::{self, Content, WireCacheControl, parse_at};
use super::{InboundError, InboundRequest, MessagesHead, optional};
use crate::hub::{ChatRequest, ResponseFormat, Text, Tool, ToolChoice};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// Parameters carried into the hub.
const TRANSLATED: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "output_config",
    "output_format",
];

/// Parameters left out, and why leaving them out is safe:
/// - `top_k`: a sampling cut-off; OpenAI has none, and the hub carries only what every
///   provider can take (like `seed` or `presence_penalty` the other way). The answer keeps its
///   shape and is sampled from the model's full distribution, as with most OpenAI clients;
/// - `thinking`: Anthropic's extended-thinking switch; other providers reason (or not) by
///   their own settings, and the answer is valid without thinking blocks;
/// - `cache_control` (automatic caching): a cost optimisation; OpenAI caches by itself;
/// - `service_tier`, `speed`, `inference_geo`, `diagnostics`: how and where Anthropic serves;
/// - `context_management`: Anthropic's server-side clearing of old tool results once the
///   context grows; the backend gets the whole conversation the client sent, which is valid;
/// - `user_profile_id`, `workspace_id`: account attribution at Anthropic.
///
/// Inside `output_config`, `effort` is dropped for the same reason as `thinking`.
const DROPPED: &[&str] = &[
    "top_k",
    "thinking",
    "cache_control",
    "service_tier",
    "speed",
    "inference_geo",
    "diagnostics",
    "context_management",
    "user_profile_id",
    "workspace_id",
];

/// Parameters only Anthropic can honour, refused with why.
const ANTHROPIC_ONLY: &[(&str, &str)] = &[
    ("container", "code-execution containers run only at Anthropic"),
    ("mcp_servers", "Anthropic's MCP connector runs only at Anthropic"),
];

/// Parses a Messages request body into the hub for `upstream_model`.
pub fn parse_request(body: &[u8], upstream_model: &str) -> Result<InboundRequest, InboundError> {
    MessagesHead::parse(body)?.to_hub(upstream_model)
}

impl MessagesHead<'_> {
    /// This request in the hub's terms, for a backend that does not speak the Messages API,
    /// asking `upstream_model`.
    pub fn to_hub(&self, upstream_model: &str) -> Result<InboundRequest, InboundError> {
        let body = &self.body;
        for key in body.keys() {
            if TRANSLATED.contains(&key) || DROPPED.contains(&key) {
                continue;
            }
            if body.get(key).is_some_and(|raw| raw.get() == "null") {
                continue;
            }
            return Err(match ANTHROPIC_ONLY.iter().find(|(name, _)| *name == key) {
                Some((_, why)) => InboundError::new(format!("{key}: not supported by this backend ({why})")),
                None => InboundError::new(format!("{key}: Extra inputs are not permitted")),
            });
        }
        if self.max_tokens == 0 {
            // Anthropic takes 0 to pre-warm its prompt cache; other providers need a token.
            return Err(InboundError::new(
                "max_tokens: 0 (pre-warming Anthropic's prompt cache) is not supported by this backend; ask for at least 1",
            ));
        }
        let mut chat = ChatRequest {
            model: upstream_model.to_owned(),
            max_tokens: Some(self.max_tokens),
            stream: self.stream,
            // A Messages stream always reports usage (message_start, message_delta).
            include_usage: true,
            ..ChatRequest::default()
        };
        if let Some(system) = body.get("system").filter(|raw| raw.get() != "null") {
            chat.system = system_texts(system)?;
        }
        let messages: Vec<Box<RawValue>> = optional(body, "messages", "a valid list")?
            .ok_or_else(|| InboundError::new("messages: Field required"))?;
        content::messages(&messages, &mut chat.messages)?;
        if let Some(tools) = optional::<Vec<Box<RawValue>>>(body, "tools", "a valid list")? {
            chat.tools =
                tools.iter().enumerate().map(|(index, raw)| tool(raw, index)).collect::<Result<_, _>>()?;
        }
        if let Some(choice) = optional::<WireToolChoice>(body, "tool_choice", "a valid tool choice")? {
            let (choice, parallel) = choice.into_hub()?;
            chat.tool_choice = Some(choice);
            chat.parallel_tool_calls = parallel;
        }
        chat.stop = optional(body, "stop_sequences", "a valid list of strings")?.unwrap_or_default();
        chat.temperature = unit_interval(optional(body, "temperature", "a valid number")?, "temperature")?;
        chat.top_p = unit_interval(optional(body, "top_p", "a valid number")?, "top_p")?;
        chat.user = optional::<Metadata>(body, "metadata", "a valid dictionary")?.and_then(|m| m.user_id);
        chat.response_format = response_format(&self.body)?;
        Ok(InboundRequest {
            chat,
            model: self.model.clone(),
            stream: self.stream,
            max_tokens: self.max_tokens,
        })
    }
}

/// Temperature and top_p: Anthropic takes 0 to 1 (OpenAI's temperature goes to 2, so a value
/// is never rescaled, only checked).
fn unit_interval(value: Option<f64>, field: &str) -> Result<Option<f64>, InboundError> {
    match value {
        Some(v) if v < 0.0 => {
            Err(InboundError::new(format!("{field}: Input should be greater than or equal to 0")))
        }
        Some(v) if v > 1.0 => {
            Err(InboundError::new(format!("{field}: Input should be less than or equal to 1")))
        }
        _ => Ok(value),
    }
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    user_id: Option<String>,
}

/// `system`: a string, or text blocks (each may carry a cache breakpoint).
fn system_texts(raw: &RawValue) -> Result<Vec<Text>, InboundError> {
    #[derive(Deserialize)]
    struct SystemBlock {
        #[serde(rename = "type")]
        kind: String,
        text: String,
        #[serde(default)]
        cache_control: Option<WireCacheControl>,
    }
    match content::content(raw, "system")? {
        Content::Text(text) if text.is_empty() => Ok(Vec::new()),
        Content::Text(text) => Ok(vec![Text::plain(text)]),
        Content::Blocks(blocks) => blocks
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let at = format!("system.{index}");
                let block: SystemBlock = parse_at(raw, &at)?;
                if block.kind != "text" {
                    return Err(InboundError::new(format!("{at}.type: Input should be 'text'")));
                }
                let cache = block.cache_control.map(|c| c.into_hub(&at)).transpose()?;
                Ok(Text { text: block.text, cache })
            })
            .collect(),
    }
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
    #[serde(default)]
    cache_control: Option<WireCacheControl>,
}

/// A custom tool; server tools (`web_search_20250305`, `bash_20250124`, ...) are refused:
/// Anthropic runs them (or defines their schema) and no other provider does.
fn tool(raw: &RawValue, index: usize) -> Result<Tool, InboundError> {
    let at = format!("tools.{index}");
    let tool: WireTool = parse_at(raw, &at)?;
    if let Some(kind) = tool.kind.as_deref().filter(|kind| *kind != "custom") {
        let name = tool.name.as_deref().unwrap_or(kind);
        return Err(InboundError::new(format!(
            "{at}.type: '{kind}' ('{name}') is an Anthropic server tool, not supported by this backend; only custom tools (name, input_schema) can be translated"
        )));
    }
    let Some(name) = tool.name else {
        return Err(InboundError::new(format!("{at}.name: Field required")));
    };
    let Some(parameters) = tool.input_schema else {
        return Err(InboundError::new(format!("{at}.input_schema: Field required")));
    };
    let cache = tool.cache_control.map(|c| c.into_hub(&at)).transpose()?;
    Ok(Tool { name, description: tool.description, parameters, strict: tool.strict, cache })
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

impl WireToolChoice {
    /// The hub's choice, and `parallel_tool_calls` (`Some(false)` when parallel use is off;
    /// otherwise left to the provider's default, which is parallel, as Anthropic's is).
    fn into_hub(self) -> Result<(ToolChoice, Option<bool>), InboundError> {
        let choice = match (self.kind.as_str(), self.name) {
            ("auto", _) => ToolChoice::Auto,
            ("any", _) => ToolChoice::Required,
            ("none", _) => ToolChoice::None,
            ("tool", Some(name)) => ToolChoice::Function(name),
            ("tool", None) => return Err(InboundError::new("tool_choice.name: Field required")),
            (other, _) => {
                return Err(InboundError::new(format!(
                    "tool_choice.type: Input tag '{other}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
                )));
            }
        };
        Ok((choice, (self.disable_parallel_tool_use == Some(true)).then_some(false)))
    }
}

/// Structured outputs: `output_config.format` (and the older `output_format` of the beta),
/// `{"type":"json_schema","schema":{...}}`
/// (<https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs>).
///
/// `strict` is left unset: Anthropic accepts schemas OpenAI's strict mode refuses (optional
/// properties), so asking for it would turn valid requests into errors upstream.
fn response_format(body: &crate::RawObject<'_>) -> Result<ResponseFormat, InboundError> {
    #[derive(Deserialize)]
    struct OutputConfig {
        #[serde(default)]
        format: Option<Format>,
    }
    #[derive(Deserialize)]
    struct Format {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        schema: Option<Value>,
    }
    let (format, at) = match optional::<OutputConfig>(body, "output_config", "a valid dictionary")? {
        Some(OutputConfig { format: Some(format) }) => (format, "output_config.format"),
        _ => match optional::<Format>(body, "output_format", "a valid dictionary")? {
            Some(format) => (format, "output_format"),
            None => return Ok(ResponseFormat::Text),
        },
    };
    match (format.kind.as_str(), format.schema) {
        ("json_schema", Some(schema)) => {
            Ok(ResponseFormat::JsonSchema { name: "response".to_owned(), schema, strict: None })
        }
        ("json_schema", None) => Err(InboundError::new(format!("{at}.schema: Field required"))),
        (_, _) => Err(InboundError::new(format!("{at}.type: Input should be 'json_schema'"))),
    }
}
