//! Providers: where a request goes once its route and backend are chosen.
//!
//! [`Upstream`] is a closed enum compiled from config, one variant per dialect; each variant
//! implements [`Provider`]. Adding a dialect (Anthropic, Gemini, Azure) means a new variant, a new
//! file here, and a compile error at every `match` until it is handled.

mod anthropic;
mod azure;
mod bedrock;
mod client;
mod credentials;
mod embeddings;
mod exec;
mod gemini;
mod mock;
mod oauth;
mod openai;
mod resolve;
mod service_account;
mod sigv4;
mod sts;
mod translated;
mod vertex;

pub use anthropic::AnthropicProvider;
pub use azure::AzureOpenAiProvider;
pub use bedrock::BedrockProvider;
pub use client::{CollectorClient, HttpClient, HttpClients, collector_client};
pub use gemini::GeminiProvider;
pub use mock::{MockProvider, MockStream};
pub use openai::OpenAiProvider;

use crate::body::SseRelay;
use crate::error::UpstreamError;
use crate::inbound::{Api, ClientApi, Inbound};
use crate::telemetry::TraceHeaders;
use bytes::Bytes;
use http::HeaderValue;
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{Origin, ProviderConfig, ProviderTimeouts, Secrets};
use switchboard_llm::Usage;
use switchboard_llm::capability::Capabilities;

/// What one attempt at a backend is about, besides the request body.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The API the client called.
    pub api: Api,
    /// The model id the backend knows (the route's public name already resolved).
    pub model: &'a str,
    /// Forwarded upstream as `x-request-id`, so provider-side logs can be correlated.
    pub request_id: &'a HeaderValue,
    /// The route's `max_tokens` for backends that require one, when the client sent none.
    pub default_max_tokens: Option<u32>,
    /// How answers translated through the hub are written for this client.
    pub client: ClientApi<'a>,
    /// The attempt's trace context, when it is traced: every request to the provider carries it.
    pub trace: Option<&'a TraceHeaders>,
}

impl<'a> Call<'a> {
    pub fn correlation(&self) -> Correlation<'a> {
        Correlation { request_id: self.request_id, trace: self.trace }
    }
}

/// What ties a request to a provider to the client's: `x-request-id`, for provider-side logs,
/// and the attempt's trace context. The executor adds both to every request it sends.
#[derive(Debug, Clone, Copy)]
pub struct Correlation<'a> {
    pub request_id: &'a HeaderValue,
    pub trace: Option<&'a TraceHeaders>,
}

/// A successful upstream answer, ready to be relayed.
pub enum Reply {
    /// A complete JSON body and the usage it reports.
    Full { body: Bytes, usage: Usage },
    /// An event stream (from an HTTP upstream or the built-in mock), relayed as it arrives.
    Stream(Box<SseRelay>),
}

/// What every dialect does. One request in, one reply or one error out; translation to and from
/// the provider's format happens inside.
pub trait Provider {
    fn name(&self) -> &Arc<str>;

    /// Sends `request` as `call` describes and returns the reply, in the client's dialect,
    /// once its headers are in (streams) or its body is complete (everything else).
    fn send(
        &self,
        call: Call<'_>,
        request: &Inbound<'_>,
    ) -> impl Future<Output = Result<Reply, UpstreamError>> + Send;
}

pub enum Upstream {
    OpenAi(OpenAiProvider),
    Anthropic(AnthropicProvider),
    Gemini(GeminiProvider),
    /// Vertex AI: the Gemini provider at Vertex's URLs with OAuth2 tokens (`vertex.rs`).
    Vertex(GeminiProvider),
    AzureOpenAi(AzureOpenAiProvider),
    Bedrock(BedrockProvider),
    Mock(MockProvider),
}

/// A provider that could not be built; `path` is relative to the provider's entry.
pub struct CompileError {
    pub path: String,
    pub reason: String,
}

/// A provider's connect timeout: its own, else the default or its `timeout_ms` when shorter.
fn connect_timeout(timeout_ms: u64, timeouts: &ProviderTimeouts) -> Duration {
    let default = client::DEFAULT_CONNECT_TIMEOUT.min(Duration::from_millis(timeout_ms));
    timeouts.connect_ms.map_or(default, Duration::from_millis)
}

impl Upstream {
    pub fn compile(
        config: &ProviderConfig,
        origin: Origin,
        secrets: &Secrets,
        clients: &HttpClients,
    ) -> Result<Self, CompileError> {
        Ok(match config {
            ProviderConfig::OpenAi(c) => {
                // The client's resolver refuses addresses the provider may not reach, so a host
                // name cannot lead where a literal address would have been refused.
                let client = clients.with_connect_timeout(
                    origin.address_rule(c.allow_private_network),
                    connect_timeout(c.timeout_ms, &c.timeouts),
                );
                Upstream::OpenAi(OpenAiProvider::compile(c, secrets, client)?)
            }
            ProviderConfig::Anthropic(c) => {
                let rule = origin.address_rule(c.allow_private_network);
                let client = clients.with_connect_timeout(rule, connect_timeout(c.timeout_ms, &c.timeouts));
                Upstream::Anthropic(AnthropicProvider::compile(c, secrets, client, rule)?)
            }
            ProviderConfig::Gemini(c) => {
                let client = clients.with_connect_timeout(
                    origin.address_rule(c.allow_private_network),
                    connect_timeout(c.timeout_ms, &c.timeouts),
                );
                Upstream::Gemini(GeminiProvider::compile(c, secrets, client)?)
            }
            ProviderConfig::Vertex(c) => {
                let rule = origin.address_rule(c.allow_private_network);
                let client = clients.with_connect_timeout(rule, connect_timeout(c.timeout_ms, &c.timeouts));
                Upstream::Vertex(vertex::compile(c, secrets, client, rule)?)
            }
            ProviderConfig::AzureOpenAi(c) => {
                let rule = origin.address_rule(c.allow_private_network);
                let client = clients.with_connect_timeout(rule, connect_timeout(c.timeout_ms, &c.timeouts));
                Upstream::AzureOpenAi(AzureOpenAiProvider::compile(c, secrets, client, rule)?)
            }
            ProviderConfig::Bedrock(c) => {
                // One rule for the Bedrock endpoint and the STS endpoint: both are the provider's.
                let client = clients.with_connect_timeout(
                    origin.address_rule(c.allow_private_network),
                    connect_timeout(c.timeout_ms, &c.timeouts),
                );
                Upstream::Bedrock(BedrockProvider::compile(c, secrets, client)?)
            }
            ProviderConfig::Mock(c) => Upstream::Mock(MockProvider::compile(c)),
        })
    }

    /// What this provider type's API can do; a backend's config narrows it per model.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            // The Messages API and Converse have no embeddings; Vertex's (`:predict`) are not
            // spoken here yet.
            Upstream::Anthropic(_) | Upstream::Vertex(_) | Upstream::Bedrock(_) => {
                Capabilities { embeddings: false, ..Capabilities::default() }
            }
            Upstream::OpenAi(_) | Upstream::AzureOpenAi(_) | Upstream::Gemini(_) | Upstream::Mock(_) => {
                Capabilities::default()
            }
        }
    }

    /// The longest one attempt may take, a stream's last event included (`None`: no limit of
    /// its own).
    pub fn total_timeout(&self) -> Option<Duration> {
        match self {
            Upstream::OpenAi(p) => p.exec.total_timeout(),
            Upstream::Anthropic(p) => p.exec.total_timeout(),
            Upstream::Gemini(p) | Upstream::Vertex(p) => p.exec.total_timeout(),
            Upstream::AzureOpenAi(p) => p.exec.total_timeout(),
            Upstream::Bedrock(p) => p.exec.total_timeout(),
            Upstream::Mock(_) => None,
        }
    }

    pub fn name(&self) -> &Arc<str> {
        match self {
            Upstream::OpenAi(p) => p.name(),
            Upstream::Anthropic(p) => p.name(),
            Upstream::Gemini(p) | Upstream::Vertex(p) => p.name(),
            Upstream::AzureOpenAi(p) => p.name(),
            Upstream::Bedrock(p) => p.name(),
            Upstream::Mock(p) => p.name(),
        }
    }

    pub async fn send(&self, call: Call<'_>, request: &Inbound<'_>) -> Result<Reply, UpstreamError> {
        match self {
            Upstream::OpenAi(p) => p.send(call, request).await,
            Upstream::Anthropic(p) => p.send(call, request).await,
            Upstream::Gemini(p) | Upstream::Vertex(p) => p.send(call, request).await,
            Upstream::AzureOpenAi(p) => p.send(call, request).await,
            Upstream::Bedrock(p) => p.send(call, request).await,
            Upstream::Mock(p) => p.send(call, request).await,
        }
    }
}
