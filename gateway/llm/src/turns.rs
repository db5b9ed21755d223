//! Conversations as alternating user and assistant turns: the shape Anthropic's Messages API and
//! Bedrock's Converse both take. Each dialect turns a hub message into a role and its own
//! blocks; what is common is here: a message with no blocks is left out, consecutive turns of one
//! role are merged (both APIs refuse two in a row, which OpenAI allows, e.g. a tool result
//! followed by a user message), the first turn must be a user's, and a tool call's arguments
//! become the JSON object both APIs take as its input.

use crate::hub::Message;
use crate::openai::RequestError;
use serde::Serialize;
use serde_json::value::RawValue;

/// One turn: `user` or `assistant`, and the dialect's blocks.
#[derive(Serialize)]
pub(crate) struct Turn<B> {
    pub role: &'static str,
    pub content: Vec<B>,
}

/// The turns of `messages`, each made by `turn` (given the message's index, for error paths).
pub(crate) fn alternating<'m, B>(
    messages: &'m [Message],
    mut turn: impl FnMut(usize, &'m Message) -> Result<(&'static str, Vec<B>), RequestError>,
) -> Result<Vec<Turn<B>>, RequestError> {
    let mut turns: Vec<Turn<B>> = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let (role, blocks) = turn(index, message)?;
        if blocks.is_empty() {
            // An assistant turn with neither text nor calls (OpenAI allows `content: ""`).
            continue;
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Turn { role, content: blocks }),
        }
    }
    match turns.first() {
        None => Err(RequestError::new("at least one user message is required", Some("messages"))),
        Some(first) if first.role != "user" => Err(RequestError::new(
            "this backend needs the conversation to start with a user message",
            Some("messages"),
        )),
        Some(_) => Ok(turns),
    }
}

/// A tool call's arguments as the JSON object both APIs take (`{}` for none), or a 400 naming
/// the call: OpenAI carries arguments as text and lets a model write anything there.
pub(crate) fn tool_input(
    arguments: &str,
    index: usize,
    call_index: usize,
) -> Result<Box<RawValue>, RequestError> {
    let arguments = arguments.trim();
    let raw = if arguments.is_empty() {
        RawValue::from_string("{}".to_owned()).ok()
    } else {
        serde_json::from_str::<Box<RawValue>>(arguments).ok().filter(|raw| raw.get().starts_with('{'))
    };
    raw.ok_or_else(|| {
        RequestError::new(
            format!("messages[{index}].tool_calls[{call_index}].function.arguments: not a JSON object"),
            Some("messages"),
        )
    })
}
