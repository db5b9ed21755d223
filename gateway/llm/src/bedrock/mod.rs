//! AWS Bedrock Runtime's Converse API, as a provider dialect: build the upstream request from the
//! hub, parse its answers (complete, streamed as event-stream messages, errors) back into the hub.
//! Pure functions, no sockets; signing is the gateway's (`upstream/sigv4.rs`).
//!
//! References (Amazon Bedrock API Reference and User Guide):
//! - Converse: <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>
//! - ConverseStream and its events:
//!   <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html>
//! - content blocks, tools, inference settings: the `Message`, `ContentBlock`, `ToolConfiguration`,
//!   `InferenceConfiguration` and `TokenUsage` data types
//! - tool use: <https://docs.aws.amazon.com/bedrock/latest/userguide/tool-use-inference-call.html>
//! - errors: <https://docs.aws.amazon.com/bedrock/latest/APIReference/CommonErrors.html>

mod error;
mod request;
mod response;
mod stream;

pub use error::{ErrorDetails, error_details};
pub use request::{JSON_TOOL, Options, build_request};
pub use response::parse_response;
pub use stream::{BedrockStream, encode_event};

/// The id the hub's answers carry: Converse answers have none in the body (the request id is in
/// the `x-amzn-RequestId` header, which the pure parsers do not see).
pub const RESPONSE_ID: &str = "chatcmpl-bedrock";
