//! What a request is expected to take, before it is sent: the reservation token and cost limits
//! charge at admission (settlement then replaces it with exact usage).
//!
//! The prompt is estimated at 4 bytes of text per token (English text averages about that;
//! code and other scripts take more tokens per byte, so a prompt estimate can be short by a
//! factor of about two, which settlement corrects). The completion is reserved in full: the
//! request's `max_tokens`, else the route's `default_max_tokens`, else [`DEFAULT_OUTPUT`], since
//! a model may use all of it.

use switchboard_llm::hub::Part;
use switchboard_llm::openai::{ModelRequest, embedding_inputs};

/// Completion tokens reserved for a request that sets no `max_tokens` on a route without
/// `default_max_tokens`.
pub const DEFAULT_OUTPUT: u64 = 1024;

const BYTES_PER_TOKEN: u64 = 4;
/// What every message adds to the text (role and framing tokens, in OpenAI's accounting).
const TOKENS_PER_MESSAGE: u64 = 4;
/// An image, whatever its size (a high-detail 1024×1024 image costs OpenAI 765 tokens).
const TOKENS_PER_IMAGE: u64 = 765;

/// (prompt tokens, completion tokens) to reserve.
/// `body_bytes`: the request body's size, the estimate for a body the hub does not read.
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
    let Ok(hub) = request.to_hub("") else {
        // Not a request the hub reads (the upstream will judge it): the whole body's size.
        return (fallback(body_bytes), route_default.map_or(DEFAULT_OUTPUT, u64::from));
    };
    let mut bytes: usize = hub.system.iter().map(|t| t.text.len()).sum();
    let mut tokens = 0;
    for message in &hub.messages {
        tokens += TOKENS_PER_MESSAGE;
        for part in &message.content {
            match part {
                Part::Text(text) => bytes += text.text.len(),
                Part::Image(_) => tokens += TOKENS_PER_IMAGE,
            }
        }
        bytes += message.tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>();
    }
    for tool in &hub.tools {
        bytes += tool.name.len()
            + tool.description.as_ref().map_or(0, String::len)
            + tool.parameters.to_string().len();
    }
    let output = hub.max_tokens.or(route_default).map_or(DEFAULT_OUTPUT, u64::from);
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
        assert_eq!(demand(&request, 0, false, None), (4 + 2 + 1 + TOKENS_PER_IMAGE, 50));
        let bare =
            ModelRequest::parse(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).unwrap();
        assert_eq!(demand(&bare, 0, false, Some(300)).1, 300, "the route's default");
        assert_eq!(demand(&bare, 0, false, None).1, DEFAULT_OUTPUT);
        let embed = ModelRequest::parse(br#"{"model":"e","input":["abcdefgh","ab"]}"#).unwrap();
        assert_eq!(demand(&embed, 0, true, None), (3, 0));
    }
}
