//! Anthropic's Messages API as a client dialect: a `POST /v1/messages` request into the hub, and
//! hub answers, streams and errors rendered back the way Anthropic writes them, so a client of
//! the Messages API can be served by any backend. Pure functions, no sockets.
//!
//! (The rest of `anthropic/` is the other side: the hub into an Anthropic upstream.)
//!
//! - [`MessagesHead`]: the few fields every request needs (`model`, `stream`, `max_tokens`), and
//!   the body for an Anthropic upstream with only `model` rewritten (same-dialect passthrough);
//! - [`parse_request`]: the whole request into a [`ChatRequest`], for other backends;
//! - [`render_response`], [`MessageStreamRenderer`]: the answer, complete or streamed;
//! - [`error_body`]: the error envelope.
//!
//! References (Anthropic docs):
//! - request and response: <https://docs.anthropic.com/en/api/messages>
//! - streaming events: <https://docs.anthropic.com/en/api/messages-streaming>
//! - errors: <https://docs.anthropic.com/en/api/errors>

mod content;
mod error;
mod request;
mod response;
mod stream;
#[cfg(test)]
mod tests;

pub use error::{error_body, error_envelope, error_type, stream_error_event};
pub use request::parse_request;
pub use response::{MessagesUsage, messages_usage, render_response};
pub use stream::MessageStreamRenderer;

use crate::hub::ChatRequest;
use crate::raw::{RawObject, raw_string};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::fmt;

/// A Messages request the gateway refuses: a 400 `invalid_request_error`. Messages name the
/// field the way Anthropic does (`max_tokens: Field required`, `messages.1.content.0.type: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundError {
    pub message: String,
}

impl InboundError {
    pub fn new(message: impl Into<String>) -> Self {
        InboundError { message: message.into() }
    }

    /// The HTTP status: always 400, as Anthropic answers a request it cannot take.
    pub fn status(&self) -> u16 {
        400
    }

    /// The error body (`invalid_request_error`).
    pub fn body(&self) -> Bytes {
        error_body(self.status(), &self.message)
    }
}

impl fmt::Display for InboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InboundError {}

/// A Messages request in the hub's terms, and what the hub does not hold that the gateway needs.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundRequest {
    /// The request for the backend (`model` is the upstream's id, `max_tokens` always set).
    pub chat: ChatRequest,
    /// The public model name the client asked for: the answer names it.
    pub model: String,
    pub stream: bool,
    /// Required by the Messages API, so always known (admission reserves it).
    pub max_tokens: u32,
}

/// The fields of a Messages request the gateway reads before choosing a backend; the body is
/// kept as raw JSON so an Anthropic upstream gets it with only `model` rewritten.
#[derive(Debug)]
pub struct MessagesHead<'a> {
    pub body: RawObject<'a>,
    /// The public model name the client asked for.
    pub model: String,
    pub stream: bool,
    /// 0 is allowed: Anthropic pre-warms the prompt cache without generating.
    pub max_tokens: u32,
}

impl<'a> MessagesHead<'a> {
    /// Reads `model`, `stream` and `max_tokens`; the other fields stay unparsed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, InboundError> {
        let body = RawObject::parse(bytes).map_err(|err| InboundError::new(err.0))?;
        let model: String = required(&body, "model", "a valid string")?;
        if model.is_empty() {
            return Err(InboundError::new("model: String should have at least 1 character"));
        }
        let max_tokens: u32 = required(&body, "max_tokens", "a valid integer")?;
        let stream = optional::<bool>(&body, "stream", "a valid boolean")?.unwrap_or(false);
        Ok(MessagesHead { body, model, stream, max_tokens })
    }

    /// The body for an Anthropic upstream: `model` replaced by the upstream's id, every other
    /// field as the client sent it.
    pub fn to_upstream_body(&self, upstream_model: &str) -> Vec<u8> {
        let mut body = self.body.clone();
        body.set("model", raw_string(upstream_model));
        body.to_vec()
    }
}

/// A required field, with Anthropic's wording when it is missing or of the wrong type.
fn required<T: DeserializeOwned>(
    body: &RawObject<'_>,
    field: &str,
    expected: &str,
) -> Result<T, InboundError> {
    optional(body, field, expected)?.ok_or_else(|| InboundError::new(format!("{field}: Field required")))
}

/// An optional field (`null` counts as absent).
fn optional<T: DeserializeOwned>(
    body: &RawObject<'_>,
    field: &str,
    expected: &str,
) -> Result<Option<T>, InboundError> {
    body.get_as(field).map_err(|_| InboundError::new(format!("{field}: Input should be {expected}")))
}
