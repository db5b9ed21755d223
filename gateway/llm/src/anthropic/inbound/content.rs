//! The `messages` of a Messages request into hub turns.
//!
//! Anthropic puts everything in content blocks; the hub, shaped after OpenAI, keeps tool calls
//! and tool results apart from content:
//! - an assistant turn's `tool_use` blocks become its `tool_calls`, the input JSON kept as text
//!   (the hub never re-serializes tool arguments);
//! - a user turn's `tool_result` blocks become one [`Role::Tool`] message each, in order, then
//!   the turn's other blocks (text, images) one user message after them: the order OpenAI
//!   needs (tool results right after the assistant turn that called them), and the order
//!   clients such as Claude Code write them in anyway;
//! - `thinking` and `redacted_thinking` blocks are dropped: they carry Anthropic's signature, so
//!   only Anthropic can take them back, and other providers keep their own reasoning apart
//!   (same-dialect traffic never comes here: it passes through with the blocks intact);
//! - blocks only Anthropic can act on (documents, files, server-tool calls and results) are
//!   refused with the block's path, never silently dropped.

use super::InboundError;
use crate::hub::{CacheControl, Image, ImageSource, Message, Part, Role, Text, ToolCall};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// Media types the Messages API accepts for base64 images.
const IMAGE_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Block types the Messages API knows that carry something only Anthropic can act on.
const ANTHROPIC_ONLY: [&str; 14] = [
    "document",
    "search_result",
    "container_upload",
    "server_tool_use",
    "web_search_tool_result",
    "web_fetch_tool_result",
    "code_execution_tool_result",
    "bash_code_execution_tool_result",
    "text_editor_code_execution_tool_result",
    "tool_search_tool_result",
    "tool_reference",
    "mcp_tool_use",
    "mcp_tool_result",
    "compaction",
];

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    content: Option<Box<RawValue>>,
}

/// A block's `type`, read first: the other fields are typed differently per block type
/// (`source` is an object in an image, a string in a search result), so the whole block is
/// parsed only for the types translated.
#[derive(Deserialize)]
struct BlockType {
    #[serde(rename = "type")]
    kind: String,
}

fn block_type(raw: &RawValue, at: &str) -> Result<String, InboundError> {
    parse_at::<BlockType>(raw, at).map(|block| block.kind)
}

/// A content block, flat: serde cannot keep raw JSON (`input`) inside a tagged enum.
#[derive(Deserialize)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    source: Option<WireImageSource>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default)]
    content: Option<Box<RawValue>>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(default)]
    cache_control: Option<WireCacheControl>,
}

#[derive(Deserialize)]
struct WireImageSource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// `{"type":"ephemeral","ttl":"5m"|"1h"}`
/// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).
#[derive(Deserialize)]
pub(super) struct WireCacheControl {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ttl: Option<String>,
}

impl WireCacheControl {
    pub(super) fn into_hub(self, at: &str) -> Result<CacheControl, InboundError> {
        if self.kind != "ephemeral" {
            return Err(InboundError::new(format!("{at}.cache_control.type: Input should be 'ephemeral'")));
        }
        Ok(CacheControl { ttl: self.ttl })
    }
}

/// Parses a raw value as `T`; a failure names `at`.
pub(super) fn parse_at<T: DeserializeOwned>(raw: &RawValue, at: &str) -> Result<T, InboundError> {
    serde_json::from_str(raw.get()).map_err(|err| {
        let message = err.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message);
        InboundError::new(format!("{at}: {message}"))
    })
}

/// A `string | [blocks]` value: the blocks, each still raw (so `input` stays text); a string is
/// returned as one text block's text.
pub(super) enum Content {
    Text(String),
    Blocks(Vec<Box<RawValue>>),
}

pub(super) fn content(raw: &RawValue, at: &str) -> Result<Content, InboundError> {
    if raw.get().starts_with('"') {
        return parse_at(raw, at).map(Content::Text);
    }
    serde_json::from_str(raw.get()).map(Content::Blocks).map_err(|_| {
        InboundError::new(format!("{at}: Input should be a valid string or a list of content blocks"))
    })
}

/// The `messages` array into hub turns, appended to `out`.
pub(super) fn messages(raw: &[Box<RawValue>], out: &mut Vec<Message>) -> Result<(), InboundError> {
    if raw.is_empty() {
        return Err(InboundError::new("messages: at least one message is required"));
    }
    for (index, message) in raw.iter().enumerate() {
        let at = format!("messages.{index}");
        let message: WireMessage = parse_at(message, &at)?;
        let role = match message.role.as_deref() {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            // Anthropic's own wording for the most common mistake.
            Some("system") => {
                return Err(InboundError::new(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, not \"system\" as an input message role.",
                ));
            }
            Some(_) => {
                return Err(InboundError::new(format!("{at}.role: Input should be 'user' or 'assistant'")));
            }
            None => return Err(InboundError::new(format!("{at}.role: Field required"))),
        };
        let Some(content_raw) = message.content else {
            return Err(InboundError::new(format!("{at}.content: Field required")));
        };
        let blocks = match content(&content_raw, &format!("{at}.content"))? {
            Content::Text(text) if text.is_empty() => Vec::new(),
            Content::Text(text) => {
                out.push(hub_message(role, vec![Part::Text(Text::plain(text))], Vec::new()));
                continue;
            }
            Content::Blocks(blocks) => blocks,
        };
        // The final assistant message may be empty (a prefill of nothing); no other.
        if blocks.is_empty() {
            if role == Role::Assistant && index + 1 == raw.len() {
                continue;
            }
            return Err(InboundError::new(format!(
                "{at}: all messages must have non-empty content except for the optional final assistant message"
            )));
        }
        match role {
            Role::User => user_turn(&blocks, &at, out)?,
            _ => assistant_turn(&blocks, &at, out)?,
        }
    }
    Ok(())
}

fn hub_message(role: Role, content: Vec<Part>, tool_calls: Vec<ToolCall>) -> Message {
    Message { role, content, tool_calls, tool_call_id: None }
}

fn user_turn(blocks: &[Box<RawValue>], at: &str, out: &mut Vec<Message>) -> Result<(), InboundError> {
    let mut parts = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content.{index}");
        match block_type(block, &at)?.as_str() {
            "text" | "image" => parts.push(part(parse_at(block, &at)?, &at)?),
            "tool_result" => out.push(tool_result(parse_at(block, &at)?, &at)?),
            "thinking" | "redacted_thinking" => {}
            "tool_use" => {
                return Err(InboundError::new(format!("{at}: tool_use blocks belong in assistant messages")));
            }
            other => return Err(unsupported(other, &at)),
        }
    }
    if !parts.is_empty() {
        out.push(hub_message(Role::User, parts, Vec::new()));
    }
    Ok(())
}

fn assistant_turn(blocks: &[Box<RawValue>], at: &str, out: &mut Vec<Message>) -> Result<(), InboundError> {
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        let at = format!("{at}.content.{index}");
        match block_type(block, &at)?.as_str() {
            "text" => parts.push(part(parse_at(block, &at)?, &at)?),
            "tool_use" => calls.push(tool_use(parse_at(block, &at)?, &at)?),
            "thinking" | "redacted_thinking" => {}
            kind @ ("image" | "tool_result") => {
                return Err(InboundError::new(format!("{at}: {kind} blocks belong in user messages")));
            }
            other => return Err(unsupported(other, &at)),
        }
    }
    // A turn of thinking only has nothing left for another provider.
    if !parts.is_empty() || !calls.is_empty() {
        out.push(hub_message(Role::Assistant, parts, calls));
    }
    Ok(())
}

/// A block type this dialect does not translate: Anthropic-only, or not a block type at all.
fn unsupported(kind: &str, at: &str) -> InboundError {
    if ANTHROPIC_ONLY.contains(&kind) {
        InboundError::new(format!(
            "{at}.type: '{kind}' blocks are not supported by this backend (only Anthropic can act on them)"
        ))
    } else {
        InboundError::new(format!(
            "{at}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'text', 'image', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"
        ))
    }
}

/// A text or image block.
fn part(block: WireBlock, at: &str) -> Result<Part, InboundError> {
    let cache = block.cache_control.map(|c| c.into_hub(at)).transpose()?;
    if block.kind == "text" {
        let Some(text) = block.text else {
            return Err(InboundError::new(format!("{at}.text: Field required")));
        };
        return Ok(Part::Text(Text { text, cache }));
    }
    // An image's cache breakpoint has no place in the hub (only text carries one): dropped,
    // which costs at most a cache miss at a provider that caches.
    let Some(source) = block.source else {
        return Err(InboundError::new(format!("{at}.source: Field required")));
    };
    let at = format!("{at}.source");
    let source = match (source.kind.as_str(), source.media_type, source.data, source.url) {
        ("base64", Some(media_type), Some(data), _) => {
            if !IMAGE_TYPES.contains(&media_type.as_str()) {
                return Err(InboundError::new(format!(
                    "{at}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                )));
            }
            ImageSource::Base64 { media_type, data }
        }
        ("base64", None, _, _) => return Err(InboundError::new(format!("{at}.media_type: Field required"))),
        ("base64", _, None, _) => return Err(InboundError::new(format!("{at}.data: Field required"))),
        ("url", _, _, Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
            ImageSource::Url(url)
        }
        ("url", _, _, Some(_)) => return Err(InboundError::new(format!("{at}.url: must be an http(s) URL"))),
        ("url", _, _, None) => return Err(InboundError::new(format!("{at}.url: Field required"))),
        ("file", _, _, _) => {
            return Err(InboundError::new(format!(
                "{at}.type: 'file' images are not supported by this backend (Files API ids exist only at Anthropic)"
            )));
        }
        (other, _, _, _) => {
            return Err(InboundError::new(format!(
                "{at}.type: Input tag '{other}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"
            )));
        }
    };
    Ok(Part::Image(Image { source, detail: None }))
}

fn tool_use(block: WireBlock, at: &str) -> Result<ToolCall, InboundError> {
    let (Some(id), Some(name)) = (block.id, block.name) else {
        return Err(InboundError::new(format!("{at}: tool_use blocks need an id and a name")));
    };
    let Some(input) = block.input else {
        return Err(InboundError::new(format!("{at}.input: Field required")));
    };
    if !input.get().starts_with('{') {
        return Err(InboundError::new(format!("{at}.input: Input should be a valid dictionary")));
    }
    // The input as the client wrote it: the hub keeps tool arguments as JSON text.
    Ok(ToolCall { id, name, arguments: input.get().to_owned() })
}

/// A `tool_result` block as a hub tool message.
///
/// `is_error` has no field in the hub (nor in OpenAI's or Gemini's tool results), so the flag
/// itself is dropped; clients write what failed in the content (Claude Code:
/// `<tool_use_error>...</tool_use_error>`). An error result with no content would then say
/// nothing, so it gets the text `Error`, and the model still learns the call failed.
fn tool_result(block: WireBlock, at: &str) -> Result<Message, InboundError> {
    let Some(id) = block.tool_use_id else {
        return Err(InboundError::new(format!("{at}.tool_use_id: Field required")));
    };
    let mut parts = Vec::new();
    match block.content.as_deref().map(|raw| content(raw, &format!("{at}.content"))).transpose()? {
        Some(Content::Text(text)) if !text.is_empty() => parts.push(Part::Text(Text::plain(text))),
        None | Some(Content::Text(_)) => {}
        Some(Content::Blocks(blocks)) => {
            for (index, inner) in blocks.iter().enumerate() {
                let at = format!("{at}.content.{index}");
                match block_type(inner, &at)?.as_str() {
                    "text" | "image" => parts.push(part(parse_at(inner, &at)?, &at)?),
                    other => return Err(unsupported(other, &at)),
                }
            }
        }
    }
    if parts.is_empty() && block.is_error == Some(true) {
        parts.push(Part::Text(Text::plain("Error")));
    }
    // The block's cache breakpoint marks the end of its content: its last text.
    if let Some(cache) = block.cache_control.map(|c| c.into_hub(at)).transpose()? {
        let last_text = parts.iter_mut().rev().find_map(|part| match part {
            Part::Text(text) => Some(text),
            Part::Image(_) => None,
        });
        if let Some(text) = last_text {
            text.cache.get_or_insert(cache);
        }
    }
    Ok(Message { role: Role::Tool, content: parts, tool_calls: Vec::new(), tool_call_id: Some(id) })
}
