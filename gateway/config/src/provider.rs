//! Upstream providers: where requests go and with which credentials.

use crate::{ObjectRef, SecretValue};
use serde::{Deserialize, Serialize};
use std::fmt;

mod cloud;
pub use cloud::{AzureOpenAiProviderConfig, EntraConfig, VertexProviderConfig, vertex_base_url};

/// One upstream, tagged by `type`. Every dialect the gateway speaks is a variant here, so adding a
/// provider is a compile error everywhere a provider is handled until it is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// OpenAI or any server that speaks its API (vLLM, Ollama, xAI, Groq, ...).
    #[serde(rename = "openai")]
    OpenAi(OpenAiProviderConfig),
    /// Anthropic's Messages API (api.anthropic.com, or Claude hosted elsewhere with that API).
    Anthropic(AnthropicProviderConfig),
    /// Google's Gemini API (Google AI Studio, `generativelanguage.googleapis.com`).
    Gemini(GeminiProviderConfig),
    /// Google's Vertex AI: Gemini's API with a service account's OAuth2 tokens.
    Vertex(VertexProviderConfig),
    /// Azure OpenAI: OpenAI's API at an Azure resource, with its key or Entra ID tokens.
    #[serde(rename = "azure_openai")]
    AzureOpenAi(AzureOpenAiProviderConfig),
    /// AWS Bedrock Runtime (Converse), signed with SigV4.
    Bedrock(crate::BedrockProviderConfig),
    /// The built-in mock: deterministic answers with configurable pacing, no network.
    Mock(MockProviderConfig),
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::OpenAi(p) => &p.name,
            ProviderConfig::Anthropic(p) => &p.name,
            ProviderConfig::Gemini(p) => &p.name,
            ProviderConfig::Vertex(p) => &p.name,
            ProviderConfig::AzureOpenAi(p) => &p.name,
            ProviderConfig::Bedrock(p) => &p.name,
            ProviderConfig::Mock(p) => &p.name,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::OpenAi(_) => "openai",
            ProviderConfig::Anthropic(_) => "anthropic",
            ProviderConfig::Gemini(_) => "gemini",
            ProviderConfig::Vertex(_) => "vertex",
            ProviderConfig::AzureOpenAi(_) => "azure_openai",
            ProviderConfig::Bedrock(_) => "bedrock",
            ProviderConfig::Mock(_) => "mock",
        }
    }

    /// The URL every request to this provider starts with; `None` for the built-in mock.
    pub fn base_url(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            ProviderConfig::Bedrock(p) => Some(p.base_url().into()),
            _ => self.http().map(|http| http.base_url.into()),
        }
    }

    /// The object this provider was compiled from, if the operator sent it.
    pub fn source(&self) -> Option<&ObjectRef> {
        match self {
            ProviderConfig::OpenAi(p) => p.source.as_ref(),
            ProviderConfig::Anthropic(p) => p.source.as_ref(),
            ProviderConfig::Gemini(p) => p.source.as_ref(),
            ProviderConfig::Vertex(p) => p.source.as_ref(),
            ProviderConfig::AzureOpenAi(p) => p.source.as_ref(),
            ProviderConfig::Bedrock(p) => p.source.as_ref(),
            ProviderConfig::Mock(p) => p.source.as_ref(),
        }
    }

    /// Every credential the provider names: its key, header values and token-grant secrets.
    pub fn credentials(&self) -> Vec<&Credential> {
        if let ProviderConfig::Bedrock(p) = self {
            return p.credentials();
        }
        let mut all: Vec<&Credential> = match self.http() {
            Some(http) => http.api_key.into_iter().chain(http.headers.iter().map(|h| &h.value)).collect(),
            None => Vec::new(),
        };
        all.extend(self.token_credential());
        all
    }

    /// The secret a provider gets access tokens with (a service account key, an Entra client
    /// secret), if it uses tokens.
    pub fn token_credential(&self) -> Option<&Credential> {
        match self {
            ProviderConfig::Vertex(p) => Some(&p.service_account),
            ProviderConfig::AzureOpenAi(p) => p.entra.as_ref().map(|e| &e.client_secret),
            ProviderConfig::Anthropic(p) => p.entra.as_ref().map(|e| &e.client_secret),
            _ => None,
        }
    }

    /// What every provider reached over HTTP has, for checks that apply to all of them.
    pub fn http(&self) -> Option<HttpSettings<'_>> {
        match self {
            ProviderConfig::OpenAi(p) => Some(HttpSettings {
                base_url: &p.base_url,
                endpoints: &["/chat/completions", "/embeddings"],
                api_key: p.api_key.as_ref(),
                api_key_prefix: "Bearer ",
                headers: &p.headers,
                timeout_ms: p.timeout_ms,
                timeouts: p.timeouts,
                allow_private_network: p.allow_private_network,
            }),
            ProviderConfig::Anthropic(p) => Some(HttpSettings {
                base_url: &p.base_url,
                endpoints: &["/messages"],
                api_key: p.api_key.as_ref(),
                api_key_prefix: "",
                headers: &p.headers,
                timeout_ms: p.timeout_ms,
                timeouts: p.timeouts,
                allow_private_network: p.allow_private_network,
            }),
            ProviderConfig::Gemini(p) => Some(HttpSettings {
                base_url: &p.base_url,
                // The model and method follow (`/models/{model}:generateContent`); the model is
                // percent-encoded by the gateway, so `/models` is what the base URL must carry.
                endpoints: &["/models"],
                api_key: p.api_key.as_ref(),
                api_key_prefix: "",
                headers: &p.headers,
                timeout_ms: p.timeout_ms,
                timeouts: p.timeouts,
                allow_private_network: p.allow_private_network,
            }),
            ProviderConfig::Vertex(p) => Some(HttpSettings {
                base_url: &p.base_url,
                // `/projects/{project}/locations/{location}/publishers/google/models/{model}`
                // follows; project and location are checked on their own, the model is encoded.
                endpoints: &["/projects"],
                api_key: None,
                api_key_prefix: "",
                headers: &p.headers,
                timeout_ms: p.timeout_ms,
                timeouts: p.timeouts,
                allow_private_network: p.allow_private_network,
            }),
            ProviderConfig::AzureOpenAi(p) => Some(HttpSettings {
                base_url: &p.base_url,
                endpoints: &["/openai/deployments", "/openai/v1/chat/completions"],
                api_key: p.api_key.as_ref(),
                api_key_prefix: "",
                headers: &p.headers,
                timeout_ms: p.timeout_ms,
                timeouts: p.timeouts,
                allow_private_network: p.allow_private_network,
            }),
            // Its base URL has a default per region, so it is not borrowed from the config; its
            // URLs and headers are checked apart (validate.rs).
            ProviderConfig::Bedrock(_) => None,
            ProviderConfig::Mock(_) => None,
        }
    }
}

/// The settings every HTTP provider has, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings<'a> {
    pub base_url: &'a str,
    /// Paths appended to the base URL (each must form a valid URL with it).
    pub endpoints: &'static [&'static str],
    pub api_key: Option<&'a Credential>,
    /// What precedes the key in its header (`Bearer `), for the header-value check.
    pub api_key_prefix: &'static str,
    pub headers: &'a [HeaderConfig],
    pub timeout_ms: u64,
    pub timeouts: ProviderTimeouts,
    pub allow_private_network: bool,
}

impl HttpSettings<'_> {
    pub fn endpoint_url(&self, endpoint: &str) -> String {
        endpoint_url(self.base_url, endpoint)
    }
}

/// The URL of one endpoint of an HTTP provider: the base URL without trailing slashes, then the
/// endpoint (`/chat/completions`). The validator and the gateway both build URLs with this.
pub fn endpoint_url(base_url: &str, endpoint: &str) -> String {
    format!("{}{endpoint}", base_url.trim_end_matches('/'))
}

/// An OpenAI-compatible upstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiProviderConfig {
    pub name: String,
    /// Base URL including the API version path, e.g. `https://api.openai.com/v1` or
    /// `http://vllm.internal:8000/v1`. Endpoints are appended (`/chat/completions`).
    #[serde(default = "default_openai_base_url")]
    pub base_url: String,
    /// The provider credential, sent as `Authorization: Bearer`. Optional because local servers
    /// (Ollama, vLLM without `--api-key`) need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Credential>,
    /// Extra headers sent with every upstream request (e.g. `OpenAI-Organization`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// Budget in milliseconds for connecting and receiving the response (headers and, when not
    /// streaming, the whole body); for streams, also the longest silence allowed between events.
    /// A timeout before the first byte becomes a 504 (or a fallback to the next backend).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connecting, stream silence and whole-attempt limits beyond `timeout_ms`.
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    /// Ask streams for usage (`stream_options.include_usage`) so tokens are counted. Turn off
    /// only for a server that rejects the option; its streams then report no tokens.
    #[serde(default = "default_true")]
    pub stream_usage: bool,
    /// The server speaks OpenAI's Responses API (`{base_url}/responses`: OpenAI itself, recent
    /// vLLM): `/v1/responses` requests are forwarded to it as they are, `model` rewritten (and a
    /// continued conversation's stored items put in `input`). Off: they are served through
    /// chat completions, which every OpenAI-compatible server has.
    #[serde(default, skip_serializing_if = "is_false")]
    pub responses_api: bool,
    /// Allow a base URL (or a host name resolving to an address) on loopback, link-local or
    /// cloud-metadata networks. Off by default: a provider must not be a way into the gateway's
    /// own network neighbourhood.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// An upstream speaking Anthropic's Messages API.
/// <https://docs.anthropic.com/en/api/messages>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnthropicProviderConfig {
    pub name: String,
    /// Base URL including the API version path: `https://api.anthropic.com/v1`, or a gateway or
    /// cloud endpoint serving the same API. `/messages` is appended.
    #[serde(default = "default_anthropic_base_url")]
    pub base_url: String,
    /// The provider credential, sent as `x-api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Credential>,
    /// Extra headers sent with every upstream request (e.g. `anthropic-beta`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// As for OpenAI providers: connect and answer budget, and the longest silence in a stream.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connecting, stream silence and whole-attempt limits beyond `timeout_ms`.
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    /// The `anthropic-version` header.
    #[serde(default = "default_anthropic_version")]
    pub version: String,
    /// `max_tokens` when the client sent none (the Messages API requires one); a route may set
    /// its own.
    #[serde(default = "default_max_tokens")]
    pub default_max_tokens: u32,
    /// As for OpenAI providers: allow loopback, link-local and metadata addresses.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    /// Microsoft Entra ID tokens instead of `api_key`, for Claude on Microsoft Foundry
    /// (`https://{resource}.services.ai.azure.com/anthropic/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// An upstream speaking Google's Gemini API (`models/{model}:generateContent` and
/// `:streamGenerateContent?alt=sse`). <https://ai.google.dev/api/generate-content>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeminiProviderConfig {
    pub name: String,
    /// Base URL including the API version path: `https://generativelanguage.googleapis.com/v1beta`.
    /// `/models/{model}:generateContent` is appended.
    #[serde(default = "default_gemini_base_url")]
    pub base_url: String,
    /// The provider credential, sent as `x-goog-api-key`; never as the `?key=` query parameter
    /// the API also reads, so the key cannot end up in a URL that is logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Credential>,
    /// Extra headers sent with every upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// As for OpenAI providers: connect and answer budget, and the longest silence in a stream.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Connecting, stream silence and whole-attempt limits beyond `timeout_ms`.
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    /// As for OpenAI providers: allow loopback, link-local and metadata addresses.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

fn default_gemini_base_url() -> String {
    "https://generativelanguage.googleapis.com/v1beta".to_owned()
}

fn default_anthropic_base_url() -> String {
    "https://api.anthropic.com/v1".to_owned()
}

fn default_anthropic_version() -> String {
    "2023-06-01".to_owned()
}

fn default_max_tokens() -> u32 {
    4096
}

fn is_false(value: &bool) -> bool {
    !value
}

fn default_true() -> bool {
    true
}

/// A provider's time limits beyond `timeout_ms` (connecting plus the answer, or a stream's first
/// event). Each left out keeps its default; a route's `timeouts` may tighten `idle_ms` and
/// `total_ms` (and `timeout_ms`) for its own requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTimeouts {
    /// Opening a connection, TCP and TLS. Default 10 s (or `timeout_ms` when shorter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<u64>,
    /// The longest silence between two events of a stream. Default: `timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// One attempt from start to end, a stream's last event included. Default: no limit
    /// beyond the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
}

impl ProviderTimeouts {
    pub fn is_empty(&self) -> bool {
        *self == ProviderTimeouts::default()
    }
}

/// A static header added to upstream requests.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderConfig {
    pub name: String,
    pub value: Credential,
}

impl fmt::Debug for HeaderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderConfig").field("name", &self.name).finish_non_exhaustive()
    }
}

fn default_openai_base_url() -> String {
    "https://api.openai.com/v1".to_owned()
}

fn default_timeout_ms() -> u64 {
    600_000
}

/// The built-in mock provider: a real product feature for demos, load tests and CI pipelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockProviderConfig {
    pub name: String,
    /// Delay before the first byte (or the whole non-streaming answer), in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Streaming pace; 0 sends every token as fast as the client reads.
    #[serde(default)]
    pub tokens_per_second: u32,
    /// A fixed reply. Without it the mock answers deterministically from the last user message.
    #[serde(default)]
    pub reply: Option<String>,
    /// Length of the vectors returned for embeddings when the request does not set `dimensions`.
    #[serde(default = "default_embedding_dimensions")]
    pub embedding_dimensions: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

fn default_embedding_dimensions() -> u32 {
    16
}

/// Where a secret comes from. Exactly one of the fields is set.
///
/// `env` and `file` are read by the gateway when the config loads: fine for a file its operator
/// wrote, refused in a pushed snapshot (a CR author must not be able to make replicas read their
/// own files or environment). Pushed snapshots name an entry of their `secrets` section instead.
/// Debug output never shows a value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CredentialFields", into = "CredentialFields")]
pub enum Credential {
    /// Read from this environment variable when the config is loaded.
    Env(String),
    /// Read from this file (surrounding whitespace trimmed) when the config is loaded.
    File(String),
    /// The secret itself, inline (trimmed).
    Value(SecretValue),
    /// The entry of this name in the snapshot's `secrets` section.
    Secret(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Credential::File(path) => f.debug_tuple("File").field(path).finish(),
            Credential::Value(_) => f.write_str("Value(<redacted>)"),
            Credential::Secret(name) => f.debug_tuple("Secret").field(name).finish(),
        }
    }
}

/// The YAML/JSON shape of [`Credential`]: a map with exactly one of `env`, `file`, `value`, `secret`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<SecretValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl TryFrom<CredentialFields> for Credential {
    type Error = &'static str;

    fn try_from(fields: CredentialFields) -> Result<Self, Self::Error> {
        match (fields.env, fields.file, fields.value, fields.secret) {
            (Some(name), None, None, None) => Ok(Credential::Env(name)),
            (None, Some(path), None, None) => Ok(Credential::File(path)),
            (None, None, Some(value), None) => Ok(Credential::Value(value)),
            (None, None, None, Some(name)) => Ok(Credential::Secret(name)),
            _ => Err("set exactly one of `env`, `file`, `value` or `secret`"),
        }
    }
}

impl From<Credential> for CredentialFields {
    fn from(credential: Credential) -> Self {
        let mut fields = CredentialFields { env: None, file: None, value: None, secret: None };
        match credential {
            Credential::Env(name) => fields.env = Some(name),
            Credential::File(path) => fields.file = Some(path),
            Credential::Value(value) => fields.value = Some(value),
            Credential::Secret(name) => fields.secret = Some(name),
        }
        fields
    }
}
