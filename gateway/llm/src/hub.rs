//! The translation hub: one typed model of a chat request, its response and its stream, between
//! every client dialect and every provider dialect.
//!
//! A client dialect parses into these types and renders from them; a provider dialect builds its
//! upstream request from them and parses its answers into them. N dialects on each side then
//! need N + N conversions, not N × N, and a rule such as "tool-call arguments arrive in pieces"
//! is written once. OpenAI-to-OpenAI traffic does not come through here: it passes through with
//! only `model` rewritten, unknown fields kept (see [`crate::openai::ModelRequest`]).
//!
//! The model follows OpenAI's chat completions (the API every client speaks), made explicit where
//! OpenAI is implicit: system instructions are apart from the turns, a tool result is its own
//! part, images are URLs or decoded data, and JSON text stays text (tool arguments are forwarded
//! as the model wrote them, never re-serialized).

use crate::Usage;
use serde_json::Value;

/// A chat request, dialect-neutral.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    /// The model id the upstream knows (the route's public name already resolved).
    pub model: String,
    /// System (and developer) instructions, in order.
    pub system: Vec<Text>,
    /// The conversation: user, assistant and tool turns, in order.
    pub messages: Vec<Message>,
    pub tools: Vec<Tool>,
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// The most tokens to generate (`max_completion_tokens`, or the older `max_tokens`).
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub response_format: ResponseFormat,
    pub stream: bool,
    /// The caller asked for usage in the stream (`stream_options.include_usage`).
    pub include_usage: bool,
    /// An end-user id for the provider's abuse monitoring (OpenAI's `user`).
    pub user: Option<String>,
}

/// Text with an optional prompt-cache breakpoint (Anthropic's `cache_control`, which some
/// OpenAI clients send on content parts).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text {
    pub text: String,
    pub cache: Option<CacheControl>,
}

impl Text {
    pub fn plain(text: impl Into<String>) -> Text {
        Text { text: text.into(), cache: None }
    }
}

/// Where a provider may cache the prompt up to.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheControl {
    /// Anthropic's `ttl` (`5m`, `1h`), when given.
    pub ttl: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// The result of a tool call (OpenAI's `tool` role).
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
    /// Assistant turns: the tools it called.
    pub tool_calls: Vec<ToolCall>,
    /// Tool turns: which call this answers.
    pub tool_call_id: Option<String>,
}

impl Message {
    /// The text parts joined, for dialects that take text only.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Part::Text(text) = part {
                out.push_str(&text.text);
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(Text),
    Image(Image),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub source: ImageSource,
    /// OpenAI's `detail` (`low`, `high`, `auto`); providers without it ignore it.
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// An `http(s)` URL the provider fetches.
    Url(String),
    /// Inline data, from a `data:` URL: media type and base64 text (kept encoded).
    Base64 { media_type: String, data: String },
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, as the model wrote them.
    pub arguments: String,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema object.
    pub parameters: Value,
    /// OpenAI's strict mode (`function.strict`).
    pub strict: Option<bool>,
    pub cache: Option<CacheControl>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// At least one tool call (OpenAI's `required`, Anthropic's `any`).
    Required,
    /// This function.
    Function(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResponseFormat {
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema { name: String, schema: Value, strict: Option<bool> },
}

/// Why the model stopped, in OpenAI's terms (`finish_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// A natural end or a stop sequence.
    Stop,
    /// The token limit.
    Length,
    ToolCalls,
    /// A safety system stopped or withheld the answer.
    ContentFilter,
}

impl FinishReason {
    pub fn as_openai(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
        }
    }
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// The answer's text (its text parts joined).
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish: FinishReason,
    pub usage: Usage,
}

/// One step of a streamed answer. Providers' streams are parsed into these; client dialects
/// render them.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The answer begins (first event).
    Start { id: String, model: String },
    /// More text.
    Text(String),
    /// A tool call begins; `index` numbers the calls of this answer from 0.
    ToolCallStart { index: u32, id: String, name: String },
    /// More of a tool call's arguments (JSON text, in arbitrary pieces).
    ToolCallArguments { index: u32, fragment: String },
    /// The answer ended for this reason (usage may still follow).
    Finish(FinishReason),
    /// The running usage total so far (replaces any earlier one).
    Usage(Usage),
    /// The provider reported an error inside the stream.
    Error(StreamError),
}

/// An error a provider reported inside a stream, after the status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    /// The provider's error type (`overloaded_error`, `RESOURCE_EXHAUSTED`, ...).
    pub kind: String,
    pub message: String,
}
