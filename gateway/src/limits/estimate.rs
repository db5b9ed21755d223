//! What a request is expected to take, before it is sent: the reservation token and cost limits
//! charge at admission (settlement then replaces it with exact usage).
//!
//! The prompt is estimated at 4 bytes of text per token (English text averages about that;
//! code and other scripts take more tokens per byte, so a prompt estimate can be short by a
//! factor of about two, which settlement corrects). The completion is reserved in full: the
//! request's `max_tokens`, else the route's `default_max_tokens`, else [`DEFAULT_OUTPUT`], since
//! a model may use all of it.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchboard_llm::hub::{ChatRequest, Part};
use switchboard_llm::openai::{ModelRequest, embedding_inputs};

/// Completion tokens reserved for a request that sets no `max_tokens` on a route without
/// `default_max_tokens`.
pub const DEFAULT_OUTPUT: u64 = 1024;

const BYTES_PER_TOKEN: u64 = 4;
/// What every message adds to the text (role and framing tokens, in OpenAI's accounting).
const TOKENS_PER_MESSAGE: u64 = 4;
/// An image, whatever its size (a high-detail 1024×1024 image costs OpenAI 765 tokens).
const TOKENS_PER_IMAGE: u64 = 765;

/// Only what the estimate reads, borrowed from the body: no string is copied, no tree built
/// (admission runs on every governed request).
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ContentPart<'a> {
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    image_url: Option<&'a RawValue>,
}

/// (prompt tokens, completion tokens) to reserve. `body_bytes`: the request body's size, the
/// estimate for a body whose messages do not read.
pub fn demand(
    request: &ModelRequest<'_>,
    body_bytes: usize,
    embeddings: bool,
    route_default: Option<u32>,
) -> (u64, u64) {
    if embeddings {
        let inputs = embedding_inputs(&request.body).unwrap_or_default();
        let bytes: usize = inputs.iter().map(String::len).sum();
        return ((bytes as u64).div_ceil(BYTES_PER_TOKEN), 0);
    }
    let asked = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| request.body.get_as::<u64>(field).ok().flatten());
    let output = asked.or(route_default.map(u64::from)).unwrap_or(DEFAULT_OUTPUT);
    let messages =
        request.body.get("messages").map(|raw| serde_json::from_str::<Vec<Message<'_>>>(raw.get()));
    let Some(Ok(messages)) = messages else {
        // Not messages the estimate reads (the upstream will judge them): the whole body's size.
        return (fallback(body_bytes), output);
    };
    let (mut bytes, mut tokens) = (0, 0);
    for message in &messages {
        tokens += TOKENS_PER_MESSAGE;
        let (text, images) = message.content.map_or((0, 0), content_size);
        bytes += text + message.tool_calls.map_or(0, |raw| raw.get().len());
        tokens += images * TOKENS_PER_IMAGE;
    }
    bytes += request.body.get("tools").map_or(0, |raw| raw.get().len());
    (tokens + (bytes as u64).div_ceil(BYTES_PER_TOKEN), output)
}

/// Bytes of text and number of images in a message's `content`: a string, or an array of
/// parts. A JSON string's length stands for its text's (escapes are rare in prompts).
fn content_size(raw: &RawValue) -> (usize, u64) {
    let json = raw.get();
    match json.as_bytes().first() {
        Some(b'"') => (json.len().saturating_sub(2), 0),
        Some(b'[') => match serde_json::from_str::<Vec<ContentPart<'_>>>(json) {
            Ok(parts) => parts.iter().fold((0, 0), |(bytes, images), part| {
                let text = part.text.map_or(0, |t| t.get().len().saturating_sub(2));
                (bytes + text, images + u64::from(part.image_url.is_some()))
            }),
            Err(_) => (json.len(), 0),
        },
        _ => (0, 0),
    }
}

/// (prompt tokens, completion tokens) to reserve for a request already in the hub's terms (the
/// APIs other than OpenAI's), with the same rules as [`demand`]: its text at 4 bytes a token,
/// each turn's framing, each image, and `max_tokens` (else the route's default) in full.
pub fn demand_of_hub(hub: &ChatRequest, route_default: Option<u32>) -> (u64, u64) {
    let output = hub.max_tokens.or(route_default).map_or(DEFAULT_OUTPUT, u64::from);
    let mut bytes: usize = hub.system.iter().map(|text| text.text.len()).sum();
    let mut tokens = 0;
    for message in &hub.messages {
        tokens += TOKENS_PER_MESSAGE;
        for part in &message.content {
            match part {
                Part::Text(text) => bytes += text.text.len(),
                Part::Image(_) => tokens += TOKENS_PER_IMAGE,
            }
        }
        bytes += message.tool_calls.iter().map(|call| call.name.len() + call.arguments.len()).sum::<usize>();
    }
    for tool in &hub.tools {
        bytes += tool.name.len() + tool.description.as_ref().map_or(0, String::len);
        bytes += tool.parameters.to_string().len();
    }
    (tokens + (bytes as u64).div_ceil(BYTES_PER_TOKEN), output)
}

/// The prompt estimate when nothing better is known: the body's size.
pub fn fallback(body_bytes: usize) -> u64 {
    (body_bytes as u64).div_ceil(BYTES_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_images_and_max_tokens_are_counted() {
        let body = br#"{"model":"m","max_tokens":50,"messages":[{"role":"system","content":"12345678"},
            {"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let request = ModelRequest::parse(body).unwrap();
        // Two messages, 12 bytes of text, one image.
        assert_eq!(demand(&request, 0, false, None), (2 * TOKENS_PER_MESSAGE + 3 + TOKENS_PER_IMAGE, 50));
        let bare =
            ModelRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(demand(&bare, 0, false, Some(300)).1, 300, "the route's default");
        assert_eq!(demand(&bare, 0, false, None).1, DEFAULT_OUTPUT);
        let embed = ModelRequest::parse(br#"{"model":"e","input":["abcdefgh","ab"]}"#).unwrap();
        assert_eq!(demand(&embed, 0, true, None), (3, 0));
    }

    #[test]
    fn a_hub_request_is_estimated_like_an_openai_one() {
        let body = br#"{"model":"m","max_tokens":50,"messages":[{"role":"system","content":"12345678"},
            {"role":"user","content":[{"type":"text","text":"abcd"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let hub = ModelRequest::parse(body).unwrap().to_hub("m").unwrap();
        // The system text is apart from the turns in the hub: one message's framing fewer.
        assert_eq!(demand_of_hub(&hub, None), (TOKENS_PER_MESSAGE + 3 + TOKENS_PER_IMAGE, 50));
        let bare = ChatRequest::default();
        assert_eq!(demand_of_hub(&bare, Some(300)), (0, 300));
        assert_eq!(demand_of_hub(&bare, None), (0, DEFAULT_OUTPUT));
    }
}
