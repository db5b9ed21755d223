//! `LLMProvider`: one upstream the gateway can send requests to, and how to reach it.
//!
//! Compiled by the operator into the contract's `ProviderConfig`. Credentials exist only as
//! Secret references: an inline key would sit in etcd, `kubectl get -o yaml` and GitOps repos
//! in plain text.

use crate::common::{Duration, SecretKeyRef, duration_rule};

mod bedrock;
pub use bedrock::{BedrockCredentials, BedrockSettings, FromSecret, WebIdentity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

mod cloud;
pub use cloud::{AzureSettings, EntraSettings, SecretKeyRefHolder, VertexSettings};

/// An upstream that serves models: OpenAI, an OpenAI-compatible server (vLLM, Ollama, ...),
/// Anthropic, Google Gemini, Vertex AI, Azure OpenAI, or the built-in mock. ModelRoutes in the same namespace send requests to it through providerRef.
#[expect(clippy::duplicated_attributes, reason = "every printcolumn(...) repeats type_ = \"string\"")]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "LLMProvider",
    root = "LlmProvider",
    plural = "llmproviders",
    shortname = "llmp",
    category = "switchboard",
    namespaced,
    status = "LlmProviderStatus",
    doc = "LLMProvider is an upstream that serves models (OpenAI, an OpenAI-compatible server, Anthropic, Google Gemini, Vertex AI, Azure OpenAI, or the built-in mock).",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Base URL", type_ = "string", json_path = ".spec.baseURL"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Accepted")].status"#
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Programmed")].status"#
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == 'mock' || !has(self.mock)")
        .message("mock settings are only allowed with type: mock")
        .field_path(".mock"),
    validation = Rule::new("self.type != 'mock' || !has(self.baseURL)")
        .message("baseURL is not allowed with type: mock (the mock makes no network calls)")
        .field_path(".baseURL"),
    validation = Rule::new("self.type == 'anthropic' || !has(self.anthropic)")
        .message("anthropic settings are only allowed with type: anthropic")
        .field_path(".anthropic"),
    validation = Rule::new("self.type == 'vertex' || !has(self.vertex)")
        .message("vertex settings are only allowed with type: vertex")
        .field_path(".vertex"),
    validation = Rule::new("self.type != 'vertex' || (has(self.vertex) && !has(self.apiKey))")
        .message("type: vertex needs spec.vertex (project, location, serviceAccountKey) and takes no apiKey"),
    validation = Rule::new("self.type == 'azure_openai' || !has(self.azure)")
        .message("azure settings are only allowed with type: azure_openai")
        .field_path(".azure"),
    validation = Rule::new("self.type != 'azure_openai' || (has(self.azure) && has(self.baseURL))")
        .message("type: azure_openai needs baseURL (the resource endpoint) and spec.azure.apiVersion"),
    validation = Rule::new("!has(self.entra) || ((self.type == 'azure_openai' || self.type == 'anthropic') && !has(self.apiKey))")
        .message("entra is only allowed with type: azure_openai or anthropic, instead of apiKey")
        .field_path(".entra"),
    validation = Rule::new("self.type == 'bedrock' || !has(self.bedrock)")
        .message("bedrock settings are only allowed with type: bedrock")
        .field_path(".bedrock"),
    validation = Rule::new("self.type != 'bedrock' || has(self.bedrock)")
        .message("type: bedrock needs bedrock settings (region and credentials)")
        .field_path(".bedrock"),
    validation = Rule::new("self.type != 'bedrock' || !has(self.apiKey)")
        .message("apiKey is not used with type: bedrock (requests are signed with bedrock.credentials)")
        .field_path(".apiKey")
)]
pub struct LlmProviderSpec {
    /// The API the upstream speaks. `openai`: OpenAI or any OpenAI-compatible server (vLLM,
    /// Ollama, LiteLLM, ...). `anthropic`: Anthropic's Messages API (api.anthropic.com, or Claude
    /// served elsewhere with that API); OpenAI requests are translated. `gemini`: Google's Gemini
    /// API (generativelanguage.googleapis.com, from Google AI Studio); OpenAI requests are
    /// translated. `vertex`: Gemini on Google Cloud's Vertex AI, with a service account.
    /// `azure_openai`: Azure OpenAI, with a key or Entra ID. `bedrock`: AWS Bedrock Runtime's
    /// Converse API (any model family on Bedrock); OpenAI requests are translated and signed with
    /// SigV4. `mock`: the built-in test
    /// provider; it answers deterministically without any network call (demos, load tests, CI).
    #[serde(rename = "type")]
    pub type_: ProviderType,

    /// Base URL of the API, including the version path; endpoints such as /chat/completions are
    /// appended. http or https, no credentials, no query or fragment. Default for openai:
    /// https://api.openai.com/v1, for anthropic: https://api.anthropic.com/v1, for gemini:
    /// https://generativelanguage.googleapis.com/v1beta, for vertex: from spec.vertex.location,
    /// for bedrock: https://bedrock-runtime.<region>.amazonaws.com. Required for azure_openai: the
    /// resource endpoint without a path (https://{resource}.openai.azure.com). Not allowed for
    /// mock. Example: http://vllm.models.svc:8000/v1
    #[serde(rename = "baseURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(
        validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')")
            .message("must start with http:// or https://"),
        validation = Rule::new("!self.matches('^https?://[^/]*@')")
            .message("must not contain credentials (user:password@); use apiKey or headers[].valueFrom"),
        validation = Rule::new("!self.contains('?') && !self.contains('#')")
            .message("must not have a query or fragment"),
        // The host check is a regex, not url(self).getHostname(): Go's and Rust's URL parsers
        // disagree on inputs such as http:///v1, and the test suite evaluates rules in Rust.
        validation = Rule::new("self.matches('^[a-z]+://[^/?#]+') && isURL(self)")
            .message("must be a valid absolute URL with a host, such as https://api.openai.com/v1")
    )]
    pub base_url: Option<String>,

    /// The provider's API key, sent as "Authorization: Bearer <key>" (openai), "x-api-key"
    /// (anthropic), "x-goog-api-key" (gemini; never in the URL) or "api-key" (azure_openai). Only a reference to a
    /// Secret in the same namespace: keys are never written inline. Omit it for servers that
    /// need no key (a local vLLM or Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKey>,

    /// Extra headers sent with every upstream request, for example OpenAI-Organization or a
    /// proxy's tenant header. Each has a literal value or a value from a Secret. Header names are
    /// unique (case-insensitive); Host, Content-Length, Transfer-Encoding, Connection and
    /// Authorization are set by the gateway and cannot be overridden. At most 32.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[x_kube(
        validation = Rule::new("self.all(h, self.filter(g, g.name.lowerAscii() == h.name.lowerAscii()).size() == 1)")
            .message("header names must be unique (case-insensitive)")
    )]
    pub headers: Vec<Header>,

    /// Time limits for upstream requests.
    #[serde(default)]
    pub timeouts: Timeouts,

    /// Ask streaming responses to report token usage (the OpenAI stream_options.include_usage
    /// option), so rate limits and metrics count the tokens of streams. Default true. Turn it off
    /// only for a server that rejects the option; its streams then count no tokens.
    #[serde(default = "default_true")]
    pub stream_usage: bool,

    /// The server speaks OpenAI's Responses API (baseURL/responses: OpenAI itself, recent vLLM):
    /// /v1/responses requests are forwarded to it as they are, with only the model rewritten.
    /// Default false: they are served through chat completions, which every OpenAI-compatible
    /// server has. Only for type openai.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub responses_api: bool,

    /// Allow baseURL to point at loopback, link-local (including cloud metadata services such as
    /// 169.254.169.254) or unspecified addresses. Default false: a provider must not be a way
    /// into the gateway's own network neighbourhood. Private ranges (10/8, 172.16/12,
    /// 192.168/16) are always allowed: in-cluster model servers live there.
    #[serde(default)]
    pub allow_private_network: bool,

    /// Behaviour of the built-in mock. Only with type: mock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockSettings>,
    /// Settings of the Anthropic Messages API. Only with type: anthropic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic: Option<AnthropicSettings>,
    /// Settings of Vertex AI. Required with type: vertex, only allowed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<VertexSettings>,
    /// Settings of Azure OpenAI. Required with type: azure_openai, only allowed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureSettings>,
    /// A Microsoft Entra ID application to get access tokens with, instead of apiKey. Only with
    /// type: azure_openai or anthropic (Claude on Microsoft Foundry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraSettings>,
    /// Region and credentials of AWS Bedrock. Required with type: bedrock, only allowed there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bedrock: Option<BedrockSettings>,
}

/// Settings of an Anthropic provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnthropicSettings {
    /// The anthropic-version header. Default 2023-06-01.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), pattern(r"^[0-9A-Za-z._-]+$"))]
    pub version: Option<String>,
    /// max_tokens for requests that set none (the Messages API requires one). Default 4096. A
    /// ModelRoute may set its own (spec.defaultMaxTokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub default_max_tokens: Option<i32>,
}

fn default_true() -> bool {
    true
}

/// The API an upstream speaks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    /// OpenAI or an OpenAI-compatible server.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (generateContent).
    Gemini,
    /// Gemini on Google Cloud's Vertex AI.
    Vertex,
    /// Azure OpenAI.
    #[serde(rename = "azure_openai")]
    AzureOpenAi,
    /// AWS Bedrock Runtime's Converse API, signed with SigV4.
    Bedrock,
    /// The built-in mock provider.
    Mock,
}

/// Where the provider's API key comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The Secret key holding the API key, in the same namespace as this LLMProvider.
    pub secret_key_ref: SecretKeyRef,
}

/// One extra header for upstream requests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.value) != has(self.valueFrom)")
        .message("set exactly one of value or valueFrom")
)]
pub struct Header {
    /// The header name, an HTTP token. Example: OpenAI-Organization
    #[schemars(length(min = 1, max = 256), pattern(r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$"))]
    #[x_kube(
        validation = Rule::new("!(self.lowerAscii() in ['host', 'content-length', 'transfer-encoding', 'connection', 'authorization', 'x-request-id', 'anthropic-version'])")
            .message("is set by the gateway and cannot be overridden (use apiKey for Authorization, spec.anthropic.version for anthropic-version)")
    )]
    pub name: String,

    /// A literal value, for values that are not secret. No line breaks or other control
    /// characters (tab is allowed). Example: org-1234
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // A CR or LF would let the value smuggle in a header of its own.
    #[schemars(length(max = 4096), pattern(r"^[^\x00-\x08\x0A-\x1F\x7F]*$"))]
    pub value: Option<String>,

    /// The value from a Secret, for values that are secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HeaderValueSource>,
}

/// Where a header value comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueSource {
    /// The Secret key holding the value, in the same namespace as this LLMProvider.
    pub secret_key_ref: SecretKeyRef,
}

/// Time limits for upstream requests.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// Budget for connecting and receiving the response: the headers and, when not streaming,
    /// the whole body; for streams, also the longest silence allowed between events. Expiry
    /// before the first byte falls back to the next backend or answers 504. Default 600s.
    /// Examples: 30s, 2m, 1m30s.
    #[serde(default = "default_request_timeout")]
    #[x_kube(validation = Rule::new(duration_rule("> duration('0s')")).message("must be greater than 0s"))]
    pub request: Duration,

    /// Opening a connection, TCP and TLS. Default 10s, or request when shorter. Example: 2s
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(duration_rule("> duration('0s')")).message("must be greater than 0s"))]
    pub connect: Option<Duration>,

    /// The longest silence between two events of a stream. Default: request. Example: 30s
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(duration_rule("> duration('0s')")).message("must be greater than 0s"))]
    pub idle: Option<Duration>,

    /// One attempt from start to end, a stream's last event included. Default: no limit beyond
    /// the request's own. Example: 10m
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(duration_rule("> duration('0s')")).message("must be greater than 0s"))]
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { request: default_request_timeout(), connect: None, idle: None, total: None }
    }
}

fn default_request_timeout() -> Duration {
    Duration::new("600s")
}

/// Behaviour of the built-in mock provider.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MockSettings {
    /// Delay before the first byte (or the whole answer when not streaming). Default 0s; at most
    /// 10m. Example: 250ms
    #[serde(default = "zero")]
    #[x_kube(validation = Rule::new(duration_rule("<= duration('10m')")).message("must be at most 10m"))]
    pub latency: Duration,

    /// Streaming pace in tokens per second. Default 0: every token as fast as the client reads.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub tokens_per_second: i32,

    /// A fixed reply for every chat request. Default: a deterministic answer derived from the last
    /// user message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub reply: Option<String>,

    /// Length of the vectors returned for embeddings when the request does not set dimensions.
    /// Default 16.
    #[serde(default = "default_embedding_dimensions")]
    #[schemars(range(min = 1, max = 8192))]
    pub embedding_dimensions: i32,
}

impl Default for MockSettings {
    fn default() -> Self {
        Self {
            latency: zero(),
            tokens_per_second: 0,
            reply: None,
            embedding_dimensions: default_embedding_dimensions(),
        }
    }
}

fn zero() -> Duration {
    Duration::new("0s")
}

fn default_embedding_dimensions() -> i32 {
    16
}

/// What the operator observed about an LLMProvider.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LlmProviderStatus {
    /// Accepted, ResolvedRefs and Programmed, with a reason and message each (see docs/crds.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation the status was computed from; older than metadata.generation while
    /// the operator has not yet seen the latest spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
