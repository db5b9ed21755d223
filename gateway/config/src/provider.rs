//! Upstream providers: where requests go and with which credentials.

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
    #[serde(default)]
    pub api_key: Option<Credential>,
    /// Extra headers sent with every upstream request (e.g. `OpenAI-Organization`).
    #[serde(default)]
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
}

fn default_embedding_dimensions() -> u32 {
    16
}

/// Where a secret comes from. Exactly one of the fields is set.
///
/// `value` exists for the operator, which resolves Kubernetes Secrets and streams the result to
/// the gateway; standalone files should prefer `env` or `file`. Debug output never shows a value.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "CredentialFields", into = "CredentialFields")]
pub enum Credential {
    /// Read from this environment variable when the config is loaded.
    Env(String),
    /// Read from this file (surrounding whitespace trimmed) when the config is loaded.
    File(String),
    /// The secret itself.
    Value(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Credential::File(path) => f.debug_tuple("File").field(path).finish(),
            Credential::Value(_) => f.write_str("Value(<redacted>)"),
        }
    }
}

/// The YAML/JSON shape of [`Credential`]: a map with exactly one of `env`, `file`, `value`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

impl TryFrom<CredentialFields> for Credential {
    type Error = &'static str;

    fn try_from(fields: CredentialFields) -> Result<Self, Self::Error> {
        match (fields.env, fields.file, fields.value) {
            (Some(name), None, None) => Ok(Credential::Env(name)),
            (None, Some(path), None) => Ok(Credential::File(path)),
            (None, None, Some(value)) => Ok(Credential::Value(value)),
            _ => Err("set exactly one of `env`, `file` or `value`"),
        }
    }
}

impl From<Credential> for CredentialFields {
    fn from(credential: Credential) -> Self {
        let mut fields = CredentialFields { env: None, file: None, value: None };
        match credential {
            Credential::Env(name) => fields.env = Some(name),
            Credential::File(path) => fields.file = Some(path),
            Credential::Value(value) => fields.value = Some(value),
        }
        fields
    }
}
