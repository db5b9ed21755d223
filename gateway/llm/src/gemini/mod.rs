//! Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`, `batchEmbedContents`)
//! as a provider dialect: build the upstream body from the hub, parse its answers (complete,
//! streamed, errors) back into the hub. Pure functions, no sockets; the URL (`models/{model}:…`), the key and the
//! choice of streaming are the caller's.
//!
//! References (Google docs):
//! - request and response: <https://ai.google.dev/api/generate-content>
//! - contents, parts, tools, tool config: <https://ai.google.dev/api/caching#Content>
//! - function calling: <https://ai.google.dev/gemini-api/docs/function-calling>
//! - the `Schema` object: <https://ai.google.dev/api/caching#Schema>
//! - errors: <https://ai.google.dev/gemini-api/docs/troubleshooting>

mod embed;
mod error;
mod request;
mod response;
mod schema;
mod stream;

pub use embed::{build_embed_request, parse_embed_response};
pub use error::{ErrorDetails, error_details};
pub use request::{Options, build_request};
pub use response::{parse_error, parse_response};
pub use stream::GeminiStream;
