//! `switchboard-mock-providers`: strict, deterministic, in-process mock servers that speak the
//! documented wire formats of
//!
//! - **Anthropic Messages** ([`AnthropicMock`], module [`anthropic`]): `POST /v1/messages` (plain
//!   and SSE) and `POST /v1/messages/count_tokens`;
//! - **Google Gemini** ([`GeminiMock`], module [`gemini`]): `generateContent`,
//!   `streamGenerateContent`, `embedContent`, `batchEmbedContents` and `countTokens` under
//!   `/v1beta/models/…`, and the same bodies at Vertex AI's
//!   `/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:…` (plus `:predict` embeddings).
//! - **OAuth2 token endpoints** ([`TokenMock`], module [`oauth`]): Google's JWT bearer grant
//!   (signatures verified) and Microsoft Entra ID's client-credentials grant, for Vertex AI and
//!   Azure.
//!
//! They exist for the gateway's translation conformance suite: each **rejects what the real API
//! rejects** (with the provider's status, error envelope and a message naming the field) and
//! answers valid requests with replies **derived only from the request**, so a test can assert
//! an exact translation. The model id picks a behaviour (a tool call, a stop reason, an upstream
//! error, a mid-stream failure…); the modules list them, and so does `README.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use switchboard_mock_providers::{AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions};
//! let anthropic = AnthropicMock::start(([127, 0, 0, 1], 0).into(), AnthropicOptions::default()).await?;
//! let gemini = GeminiMock::start(([127, 0, 0, 1], 0).into(), GeminiOptions::default()).await?;
//! // Point the gateway at anthropic.base_url() ("http://127.0.0.1:PORT") with key
//! // AnthropicOptions::default().api_key, and at gemini.base_url() / gemini.vertex_base_url().
//! let _ = (anthropic.last_request(), gemini.requests());
//! # Ok(()) }
//! ```
//!
//! Every mock records the last request it received (even one it rejected) as a
//! [`RecordedRequest`] and counts requests. Streams can be paced (`pace` in the options; zero by
//! default, so tests never wait). Dropping a handle stops its server.

pub mod anthropic;
mod behavior;
mod body;
pub mod gemini;
mod json;
pub mod oauth;
mod server;

pub use anthropic::{AnthropicMock, AnthropicOptions};
pub use gemini::{GeminiMock, GeminiOptions};
pub use oauth::{TokenMock, TokenOptions};

/// The most recent request a mock received, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, …
    pub method: String,
    /// The request path, e.g. `/v1/messages` or `/v1beta/models/gemini-x:generateContent`.
    pub path: String,
    /// The raw query string without `?`, e.g. `alt=sse`.
    pub query: Option<String>,
    /// Request headers in arrival order, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The parsed body; a JSON string holding the raw text if the body was not valid JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
