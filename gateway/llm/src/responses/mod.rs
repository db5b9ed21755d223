//! OpenAI's Responses API (`POST /v1/responses`) as a client dialect: requests into the hub,
//! answers and streams rendered back, from any backend.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/responses>. Pure, like the rest of
//! the crate: the gateway keeps the conversation store, chooses response ids and the time, and
//! hands in the history a `previous_response_id` continues; this module turns
//! - a body into a [`ResponsesRequest`] ([`parse_request`]), whose normalized `input` items the
//!   store saves, and which builds the hub request from the stored history plus its own input
//!   ([`ResponsesRequest::to_hub`]);
//! - a complete hub answer into the response object ([`render_response`]);
//! - a hub stream into the documented streaming events ([`ResponsesRenderer`]), which keeps the
//!   finished response for the store.
//!
//! Either way a response ends as a [`Rendered`]: the object for the client and its output items
//! for the store, which appends them to the conversation after the input.

mod forward;
mod items;
mod request;
mod response;
mod stream;

pub use forward::{ForwardedResponses, read_answer};
pub use request::{Echo, ResponsesRequest, parse_request};
pub use response::{Rendered, ResponseContext, ResponseStatus, render_response, usage_json};
pub use stream::ResponsesRenderer;

#[cfg(test)]
mod spec_check;
#[cfg(test)]
mod tests;
