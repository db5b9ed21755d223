//! Conversation items: what a request's `input` holds and what a response's `output` adds to
//! the history, read into the hub's messages.
//!
//! References: <https://platform.openai.com/docs/api-reference/responses/create#responses-create-input>
//! (input items), <https://platform.openai.com/docs/guides/function-calling> (a `function_call`
//! item and the `function_call_output` that answers it, matched by `call_id`).
//!
//! Items are stored as JSON (the conversation store keeps what a turn added and hands it back
//! as the history of the next one), so they are read from [`Value`]s: the client's items when a
//! request arrives, the stored ones for `previous_response_id`. Both go through [`parse_item`].

use crate::hub::{ChatRequest, Image, ImageSource, Message, Part, Role, Text, ToolCall};
use crate::openai::RequestError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// One conversation item, as the hub needs it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Message {
        role: ItemRole,
        content: Vec<Part>,
    },
    FunctionCall(ToolCall),
    FunctionCallOutput {
        call_id: String,
        output: Vec<Part>,
    },
    /// A reasoning item (a reasoning model's earlier thinking, often encrypted). It is dropped on
    /// the way to the hub: no other provider can read another model's reasoning, and the answer
    /// it led to is in the history as its own items.
    Reasoning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ItemRole {
    User,
    Assistant,
    /// `system` or `developer`: both are instructions to the hub.
    System,
}

/// Where an item sits, for error messages: its path (`input[2]`) and the top-level parameter
/// OpenAI's error envelope names (`input`, or `previous_response_id` for stored history).
#[derive(Clone, Copy)]
pub(crate) struct Place<'a> {
    pub path: &'a str,
    pub param: &'a str,
}

impl Place<'_> {
    fn error(&self, detail: impl std::fmt::Display) -> RequestError {
        RequestError::new(format!("{}{detail}", self.path), Some(self.param))
    }

    fn read<T: DeserializeOwned>(&self, value: &Value) -> Result<T, RequestError> {
        T::deserialize(value).map_err(|err| self.error(format!(": {err}")))
    }
}

/// Reads one item; `item` is left as it is.
pub(crate) fn parse_item(item: &Value, at: Place<'_>) -> Result<Item, RequestError> {
    let Some(object) = item.as_object() else {
        return Err(at.error(": an item must be an object"));
    };
    // A message may leave out `type` (OpenAI's "easy input message": role and content only).
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        None | Some(Value::Null) if object.contains_key("role") => "message",
        _ => return Err(at.error(".type: required, a string")),
    };
    match kind {
        "message" => parse_message(at.read(item)?, at),
        "function_call" => {
            let call: WireFunctionCall = at.read(item)?;
            Ok(Item::FunctionCall(ToolCall { id: call.call_id, name: call.name, arguments: call.arguments }))
        }
        "function_call_output" => {
            let output: WireFunctionCallOutput = at.read(item)?;
            let parts = match output.output {
                WireContent::Text(text) => vec![Part::Text(Text::plain(text))],
                WireContent::Parts(parts) => parse_parts(&parts, ItemRole::User, &format!("{}.output", at.path), at.param)?,
            };
            Ok(Item::FunctionCallOutput { call_id: output.call_id, output: parts })
        }
        "reasoning" => Ok(Item::Reasoning),
        "item_reference" => Err(at.error(
            ".type: item references are not supported by this gateway; send the item itself, or continue a stored response with previous_response_id",
        )),
        other => Err(at.error(format!(".type: '{other}' items are not supported by this gateway"))),
    }
}

/// The item as the conversation store keeps it: a message gets its `type` and its content as a
/// list of parts (a string becomes one text part), as OpenAI lists input items; other items are
/// kept as sent.
pub(crate) fn normalized(mut item: Value, parsed: &Item) -> Value {
    if let (Item::Message { role, .. }, Some(object)) = (parsed, item.as_object_mut()) {
        object.insert("type".to_owned(), Value::from("message"));
        if let Some(Value::String(text)) = object.get("content") {
            let part = if *role == ItemRole::Assistant {
                json!({"type": "output_text", "text": text, "annotations": []})
            } else {
                json!({"type": "input_text", "text": text})
            };
            object.insert("content".to_owned(), Value::Array(vec![part]));
        }
    }
    item
}

/// Adds `items` to the hub request, in order. A run of `function_call` items (and the assistant
/// message before it, if any) is one assistant turn: the calls the model made together.
pub(crate) fn add_items(request: &mut ChatRequest, items: impl IntoIterator<Item = Item>) {
    // Whether the last hub message is an assistant turn a following call belongs to.
    let mut assistant_turn_open = false;
    for item in items {
        match item {
            Item::Message { role: ItemRole::System, content } => {
                request.system.extend(content.into_iter().filter_map(|part| match part {
                    Part::Text(text) => Some(text),
                    // Refused when the item was read.
                    Part::Image(_) => None,
                }));
                assistant_turn_open = false;
            }
            Item::Message { role, content } => {
                let role = if role == ItemRole::Assistant { Role::Assistant } else { Role::User };
                request.messages.push(Message { role, content, tool_calls: Vec::new(), tool_call_id: None });
                assistant_turn_open = role == Role::Assistant;
            }
            Item::FunctionCall(call) => {
                match request.messages.last_mut() {
                    Some(last) if assistant_turn_open && last.role == Role::Assistant => {
                        last.tool_calls.push(call)
                    }
                    _ => request.messages.push(Message {
                        role: Role::Assistant,
                        content: Vec::new(),
                        tool_calls: vec![call],
                        tool_call_id: None,
                    }),
                }
                assistant_turn_open = true;
            }
            Item::FunctionCallOutput { call_id, output } => {
                request.messages.push(Message {
                    role: Role::Tool,
                    content: output,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call_id),
                });
                assistant_turn_open = false;
            }
            // Between an answer's text and its calls, a reasoning item does not split the turn.
            Item::Reasoning => {}
        }
    }
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    content: WireContent,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Deserialize)]
struct WireFunctionCall {
    call_id: String,
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct WireFunctionCallOutput {
    call_id: String,
    output: WireContent,
}

#[derive(Deserialize)]
struct WireText {
    text: String,
}

#[derive(Deserialize)]
struct WireRefusal {
    refusal: String,
}

#[derive(Deserialize)]
struct WireImage {
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

fn parse_message(message: WireMessage, at: Place<'_>) -> Result<Item, RequestError> {
    let role = match message.role.as_str() {
        "user" => ItemRole::User,
        "assistant" => ItemRole::Assistant,
        "system" | "developer" => ItemRole::System,
        other => return Err(at.error(format!(".role: unknown role '{other}'"))),
    };
    let content = match message.content {
        WireContent::Text(text) => vec![Part::Text(Text::plain(text))],
        WireContent::Parts(parts) => parse_parts(&parts, role, &format!("{}.content", at.path), at.param)?,
    };
    Ok(Item::Message { role, content })
}

/// Content parts. Text of either direction is text (`input_text`, `output_text`, an assistant's
/// `refusal`); images only where a user speaks (user messages and tool outputs).
fn parse_parts(parts: &[Value], role: ItemRole, path: &str, param: &str) -> Result<Vec<Part>, RequestError> {
    let mut out = Vec::with_capacity(parts.len());
    for (index, part) in parts.iter().enumerate() {
        let path = format!("{path}[{index}]");
        let at = Place { path: &path, param };
        let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
        out.push(match kind {
            "input_text" | "output_text" => Part::Text(Text::plain(at.read::<WireText>(part)?.text)),
            "refusal" if role == ItemRole::Assistant => {
                Part::Text(Text::plain(at.read::<WireRefusal>(part)?.refusal))
            }
            "input_image" if role == ItemRole::User => Part::Image(image(at.read(part)?, at)?),
            "input_image" => return Err(at.error(": only user messages and tool outputs can hold images")),
            "input_file" => return Err(at.error(".type: file inputs are not supported by this gateway")),
            "" => return Err(at.error(".type: required, a string")),
            other => {
                return Err(at.error(format!(".type: '{other}' parts are not supported by this gateway")));
            }
        });
    }
    Ok(out)
}

fn image(image: WireImage, at: Place<'_>) -> Result<Image, RequestError> {
    let Some(url) = image.image_url else {
        return Err(match image.file_id {
            // Files live in OpenAI's storage, which no other provider can read.
            Some(_) => at.error(".file_id: images by file id are not supported by this gateway; send image_url (an https or base64 data URL)"),
            None => at.error(".image_url: required for an input_image part"),
        });
    };
    Ok(Image { source: image_source(&url, at)?, detail: image.detail })
}

/// `http(s)://` URLs pass on; `data:<media type>;base64,<data>` is split into its parts.
fn image_source(url: &str, at: Place<'_>) -> Result<ImageSource, RequestError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let Some((media_type, data)) =
            rest.split_once(',').and_then(|(meta, data)| Some((meta.strip_suffix(";base64")?, data)))
        else {
            return Err(at.error(".image_url: a data URL must be base64 (data:<media type>;base64,<data>)"));
        };
        return Ok(ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url(url.to_owned()));
    }
    Err(at.error(".image_url: must be an http(s) or data URL"))
}
