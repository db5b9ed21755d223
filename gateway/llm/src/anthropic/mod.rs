//! Anthropic's Messages API, as a provider dialect: build the upstream request from the hub,
//! parse its answers (complete, streamed, errors) back into the hub. Pure functions, no sockets.
//!
//! References (Anthropic docs):
//! - request and response: <https://docs.anthropic.com/en/api/messages>
//! - streaming events: <https://docs.anthropic.com/en/api/messages-streaming>
//! - errors: <https://docs.anthropic.com/en/api/errors>
//! - tools: <https://docs.anthropic.com/en/docs/build-with-claude/tool-use>
//! - images: <https://docs.anthropic.com/en/docs/build-with-claude/vision>
//! - prompt caching: <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>

pub mod inbound;
mod request;
mod response;
mod stream;

pub use request::{JSON_TOOL, Options, build_request};
pub use response::{parse_error, parse_response};
pub use stream::AnthropicStream;

/// The API version every request states (`anthropic-version` header).
pub const API_VERSION: &str = "2023-06-01";
