//! OpenAI's API (`/v1/chat/completions`, `/v1/embeddings`): the fields the gateway acts on.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat/create>. Everything not named
//! here is carried verbatim in the [`RawObject`].
//!
//! OpenAI's chat dialect sits on both sides of the hub ([`crate::hub`]): as the client dialect
//! (`to_hub.rs` reads a client's request, `render.rs` writes its answer), and as the provider
//! dialect of OpenAI-compatible upstreams serving clients of other dialects (`from_hub.rs`
//! builds the upstream request, `response.rs` and `stream.rs` read its answers). OpenAI clients
//! on OpenAI-compatible upstreams skip the hub: [`ModelRequest::to_upstream_body`].

mod from_hub;
mod render;
mod response;
mod stream;
mod to_hub;

pub use from_hub::{MaxTokensField, Options, build_request};
pub use render::{ChunkRenderer, render_response, usage_json};
pub use response::{parse_error, parse_response};
pub use stream::OpenAiStream;

use crate::raw::{RawObject, RawObjectError, null, raw_string};
use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A client request that the gateway could not accept, with the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub message: String,
    /// The parameter at fault, as OpenAI's envelope names it (`messages`, `tools`, `n`).
    pub param: Option<String>,
}

impl RequestError {
    pub fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        RequestError { message: message.into(), param: param.map(str::to_owned) }
    }
}

impl From<RawObjectError> for RequestError {
    fn from(err: RawObjectError) -> Self {
        RequestError::new(err.0, None)
    }
}

/// A parsed `/v1/chat/completions` or `/v1/embeddings` request body.
#[derive(Debug)]
pub struct ModelRequest<'a> {
    pub body: RawObject<'a>,
    /// The public model name the caller asked for.
    pub model: String,
    /// `stream: true` (chat only; embeddings never stream).
    pub stream: bool,
    /// Whether the caller itself asked for `stream_options.include_usage`.
    pub include_usage: bool,
}

impl<'a> ModelRequest<'a> {
    /// Parses a request body and reads the fields every provider needs.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RequestError> {
        let body = RawObject::parse(bytes)?;
        let model = match body.get_as::<String>("model").map_err(|e| RequestError::new(e.0, Some("model")))? {
            Some(model) if !model.is_empty() => model,
            _ => return Err(RequestError::new("you must provide a model parameter", Some("model"))),
        };
        let stream = body.get_as::<bool>("stream").map_err(|e| RequestError::new(e.0, Some("stream")))?;
        let options = body
            .get_as::<StreamOptions>("stream_options")
            .map_err(|e| RequestError::new(e.0, Some("stream_options")))?;
        Ok(ModelRequest {
            body,
            model,
            stream: stream.unwrap_or(false),
            include_usage: options.and_then(|o| o.include_usage).unwrap_or(false),
        })
    }

    /// The body for an OpenAI-compatible upstream: `model` replaced by the upstream id, and for
    /// streams, when `ask_usage`, `stream_options.include_usage` forced on so the gateway can
    /// count tokens (the usage chunk is stripped again on the way back if the caller did not ask
    /// for it). The request itself is left as the client sent it, so every fallback attempt
    /// starts from the original.
    pub fn to_upstream_body(&self, upstream_model: &str, ask_usage: bool) -> Result<Vec<u8>, RequestError> {
        let mut body = self.body.clone();
        body.set("model", raw_string(upstream_model));
        if self.stream && ask_usage && !self.include_usage {
            let options = match body.get("stream_options") {
                Some(raw) if raw.get() != "null" => {
                    let mut options = RawObject::from_raw(raw)
                        .map_err(|e| RequestError::new(e.0, Some("stream_options")))?;
                    options.set("include_usage", true_value());
                    boxed(options.to_vec())
                }
                _ => boxed(br#"{"include_usage":true}"#.to_vec()),
            };
            body.set("stream_options", options);
        }
        Ok(body.to_vec())
    }
}

/// OpenAI's error envelope: `{"error":{"message","type","param","code"}}`.
/// <https://platform.openai.com/docs/guides/error-codes>
pub fn error_envelope(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Bytes {
    #[derive(Serialize)]
    struct Envelope<'a> {
        error: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        message: &'a str,
        #[serde(rename = "type")]
        kind: &'a str,
        param: Option<&'a str>,
        code: Option<&'a str>,
    }
    let value = Envelope { error: Inner { message, kind, param, code } };
    // Strings only: serialization cannot fail.
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

/// An error inside an OpenAI event stream, once the status line is gone: one `data:` event with
/// the error envelope, as OpenAI's own streams end on a server error.
pub fn stream_error_event(message: &str, code: &str) -> Bytes {
    let body = error_envelope(message, "server_error", None, Some(code));
    let mut event = BytesMut::with_capacity(body.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(&body);
    event.extend_from_slice(b"\n\n");
    event.freeze()
}

#[derive(Deserialize)]
struct StreamOptions {
    include_usage: Option<bool>,
}

fn true_value() -> Box<RawValue> {
    boxed(b"true".to_vec())
}

fn boxed(bytes: Vec<u8>) -> Box<RawValue> {
    // Callers pass JSON they produced themselves.
    String::from_utf8(bytes).ok().and_then(|s| RawValue::from_string(s).ok()).unwrap_or_else(null)
}

/// The text of a chat request's messages, as the mock provider needs it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MessagesText {
    /// Text of the last message (string content, or its text parts joined by spaces).
    pub last: String,
    /// Whitespace-separated words over every message: the mock's "prompt tokens".
    pub words: u64,
}

/// Extracts [`MessagesText`] from a chat request; `messages` must be an array of objects.
pub fn messages_text(body: &RawObject<'_>) -> Result<MessagesText, RequestError> {
    let messages: Vec<Message> = body
        .get_as("messages")
        .map_err(|e| RequestError::new(e.0, Some("messages")))?
        .ok_or_else(|| RequestError::new("you must provide a messages parameter", Some("messages")))?;
    let mut out = MessagesText::default();
    for message in &messages {
        let text = match &message.content {
            Some(Content::Text(text)) => text.clone(),
            Some(Content::Parts(parts)) => {
                parts.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().join(" ")
            }
            None => String::new(),
        };
        out.words += text.split_whitespace().count() as u64;
        out.last = text;
    }
    out.words = out.words.max(1);
    Ok(out)
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(default)]
    text: Option<String>,
}

/// The `input` of an embeddings request, as texts (token arrays are rendered as numbers).
pub fn embedding_inputs(body: &RawObject<'_>) -> Result<Vec<String>, RequestError> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Input {
        One(String),
        Many(Vec<String>),
        Tokens(Vec<u32>),
        TokenLists(Vec<Vec<u32>>),
    }
    let tokens = |t: &[u32]| t.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let input: Input = body
        .get_as("input")
        .map_err(|_| {
            RequestError::new(
                "'input' must be a string, an array of strings or of token arrays",
                Some("input"),
            )
        })?
        .ok_or_else(|| RequestError::new("you must provide an input parameter", Some("input")))?;
    let inputs = match input {
        Input::One(text) => vec![text],
        Input::Many(texts) => texts,
        Input::Tokens(t) => vec![tokens(&t)],
        Input::TokenLists(lists) => lists.iter().map(|t| tokens(t)).collect(),
    };
    if inputs.is_empty() {
        return Err(RequestError::new("'input' must not be empty", Some("input")));
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_asks_upstream_for_usage_and_keeps_other_options() {
        let body = br#"{"model":"pub","stream":true,"stream_options":{"x":1},"custom":[1]}"#;
        let req = ModelRequest::parse(body).unwrap();
        assert!(req.stream && !req.include_usage);
        let out = req.to_upstream_body("up", true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"up","stream":true,"stream_options":{"x":1,"include_usage":true},"custom":[1]}"#
        );
    }

    #[test]
    fn non_stream_only_rewrites_model() {
        let req = ModelRequest::parse(br#"{"messages":[],"model":"pub","temperature":0.2}"#).unwrap();
        let out = req.to_upstream_body("up", true).unwrap();
        assert_eq!(out, br#"{"messages":[],"model":"up","temperature":0.2}"#.to_vec());
    }

    #[test]
    fn upstreams_that_reject_stream_options_get_the_body_untouched() {
        let body = br#"{"model":"pub","stream":true}"#;
        let req = ModelRequest::parse(body).unwrap();
        assert_eq!(req.to_upstream_body("up", false).unwrap(), br#"{"model":"up","stream":true}"#.to_vec());
        // And asking one backend does not leak into the next attempt.
        req.to_upstream_body("a", true).unwrap();
        assert_eq!(req.to_upstream_body("b", false).unwrap(), br#"{"model":"b","stream":true}"#.to_vec());
    }

    #[test]
    fn caller_usage_request_is_remembered() {
        let req =
            ModelRequest::parse(br#"{"model":"m","stream":true,"stream_options":{"include_usage":true}}"#)
                .unwrap();
        assert!(req.include_usage);
    }

    #[test]
    fn model_errors_name_the_param() {
        let err = ModelRequest::parse(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = ModelRequest::parse(br#"{"model":5}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = ModelRequest::parse(br#"{"model":"m","stream":"yes"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("stream"));
    }

    #[test]
    fn message_text_handles_strings_and_parts() {
        let body = br#"{"model":"m","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hello"},{"type":"image_url","image_url":{}},{"type":"text","text":"world"}]}]}"#;
        let req = ModelRequest::parse(body).unwrap();
        let text = messages_text(&req.body).unwrap();
        assert_eq!(text, MessagesText { last: "hello world".into(), words: 4 });
    }

    #[test]
    fn embedding_inputs_accept_every_documented_shape() {
        for (body, expected) in [
            (r#"{"model":"e","input":"a b"}"#, vec!["a b"]),
            (r#"{"model":"e","input":["a","b"]}"#, vec!["a", "b"]),
            (r#"{"model":"e","input":[1,2]}"#, vec!["1 2"]),
            (r#"{"model":"e","input":[[1],[2,3]]}"#, vec!["1", "2 3"]),
        ] {
            let req = ModelRequest::parse(body.as_bytes()).unwrap();
            assert_eq!(embedding_inputs(&req.body).unwrap(), expected);
        }
    }
}
