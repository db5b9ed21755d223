//! Upstream providers: where requests go and with which credentials.

use crate::{ObjectRef, SecretValue};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One upstream, tagged by `type`. Every dialect the gateway speaks is a variant here, so adding a
/// provider is a compile error everywhere a provider is handled until it is handled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProviderConfig {
    /// OpenAI or any server that speaks its API (vLLM, Ollama, xAI, Groq, ...).
    #[serde(rename = "openai")]
    OpenAi(OpenAiProviderConfig),
    /// The built-in mock: deterministic answers with configurable pacing, no network.
    Mock(MockProviderConfig),
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::OpenAi(p) => &p.name,
            ProviderConfig::Mock(p) => &p.name,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::OpenAi(_) => "openai",
            ProviderConfig::Mock(_) => "mock",
        }
    }

    /// The object this provider was compiled from, if the operator sent it.
    pub fn source(&self) -> Option<&ObjectRef> {
        match self {
            ProviderConfig::OpenAi(p) => p.source.as_ref(),
            ProviderConfig::Mock(p) => p.source.as_ref(),
        }
    }

    /// Every credential the provider names: its key and header values.
    pub fn credentials(&self) -> Vec<&Credential> {
        match self {
            ProviderConfig::OpenAi(p) => p.api_key.iter().chain(p.headers.iter().map(|h| &h.value)).collect(),
            ProviderConfig::Mock(_) => Vec::new(),
        }
    }
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
    /// Ask streams for usage (`stream_options.include_usage`) so tokens are counted. Turn off
    /// only for a server that rejects the option; its streams then report no tokens.
    #[serde(default = "default_true")]
    pub stream_usage: bool,
    /// Allow a base URL (or a host name resolving to an address) on loopback, link-local or
    /// cloud-metadata networks. Off by default: a provider must not be a way into the gateway's
    /// own network neighbourhood.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

impl OpenAiProviderConfig {
    /// The URL of one endpoint (`/chat/completions`): the base URL without trailing slashes,
    /// then the endpoint. The validator and the gateway both build URLs with this.
    pub fn endpoint_url(&self, endpoint: &str) -> String {
        format!("{}{endpoint}", self.base_url.trim_end_matches('/'))
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

fn default_true() -> bool {
    true
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
