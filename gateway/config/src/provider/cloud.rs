//! The cloud-hosted providers that authenticate with short-lived OAuth2 access tokens:
//! Vertex AI (a Google service account, JWT bearer grant) and Azure OpenAI (an `api-key`, or a
//! Microsoft Entra ID app through the client-credentials grant). Entra is also an option of the
//! `anthropic` type, for Claude on Microsoft Foundry.

use super::{HeaderConfig, ProviderTimeouts, default_timeout_ms, default_true, is_false};
use crate::{Credential, ObjectRef};
use serde::{Deserialize, Serialize};

/// Google's Vertex AI: Gemini's request and response bodies at
/// `{base_url}/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent`.
/// <https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models/generateContent>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "VertexFields")]
pub struct VertexProviderConfig {
    pub name: String,
    /// The Google Cloud project id.
    pub project: String,
    /// The region (`us-central1`, `europe-west4`) or `global`.
    pub location: String,
    /// Base URL including the API version path. Default `https://{location}-aiplatform.googleapis.com/v1`
    /// (`https://aiplatform.googleapis.com/v1` for `global`); always present once parsed.
    pub base_url: String,
    /// The service account key: the JSON file Google issues (`client_email`, `private_key`,
    /// `token_uri`). Never logged or echoed.
    pub service_account: Credential,
    /// Where access tokens are requested. Default: the key's `token_uri`. Obeys the same address
    /// rule as `base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// What a Vertex entry may say; the base URL defaults from the location.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VertexFields {
    name: String,
    project: String,
    location: String,
    #[serde(default)]
    base_url: Option<String>,
    service_account: Credential,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    headers: Vec<HeaderConfig>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default)]
    timeouts: ProviderTimeouts,
    #[serde(default)]
    allow_private_network: bool,
    #[serde(default)]
    source: Option<ObjectRef>,
}

impl From<VertexFields> for VertexProviderConfig {
    fn from(f: VertexFields) -> Self {
        VertexProviderConfig {
            base_url: f.base_url.unwrap_or_else(|| vertex_base_url(&f.location)),
            name: f.name,
            project: f.project,
            location: f.location,
            service_account: f.service_account,
            token_url: f.token_url,
            headers: f.headers,
            timeout_ms: f.timeout_ms,
            timeouts: f.timeouts,
            allow_private_network: f.allow_private_network,
            source: f.source,
        }
    }
}

/// Vertex AI's endpoint for a location: regional hosts are `{location}-aiplatform`, the
/// `global` location has no prefix.
/// <https://cloud.google.com/vertex-ai/generative-ai/docs/learn/locations>
pub fn vertex_base_url(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com/v1".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com/v1")
    }
}

/// Azure OpenAI: OpenAI's bodies, passed through, at an Azure resource.
///
/// With a dated `api_version` (`2024-10-21`) requests go to the deployment URLs,
/// `{base_url}/openai/deployments/{model}/chat/completions?api-version=...` (the backend's model is
/// the deployment name). With `api_version: v1` they go to the version-less v1 API,
/// `{base_url}/openai/v1/chat/completions`, with the model in the body.
/// <https://learn.microsoft.com/azure/ai-foundry/openai/reference>,
/// <https://learn.microsoft.com/azure/ai-foundry/openai/api-version-lifecycle>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureOpenAiProviderConfig {
    pub name: String,
    /// The resource endpoint, `https://{resource}.openai.azure.com` (no path).
    pub base_url: String,
    /// `v1` for the v1 API, or the dated version deployment URLs are called with.
    pub api_version: String,
    /// The resource key, sent as `api-key`. Exactly one of `api_key` and `entra`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<Credential>,
    /// A Microsoft Entra ID application whose tokens the resource accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entra: Option<EntraConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    /// As for OpenAI providers: ask streams for usage.
    #[serde(default = "default_true")]
    pub stream_usage: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// Microsoft Entra ID's client-credentials grant: the gateway asks for a token as the
/// application and sends it as `Authorization: Bearer`.
/// <https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntraConfig {
    /// The directory (tenant) id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The application's client secret. Never logged or echoed.
    pub client_secret: Credential,
    /// Default `https://cognitiveservices.azure.com/.default` (Azure OpenAI and Foundry).
    #[serde(default = "default_entra_scope")]
    pub scope: String,
    /// Default `https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token`. Obeys the same
    /// address rule as `base_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_url: Option<String>,
}

impl EntraConfig {
    /// The token endpoint: the configured one or Entra's for the tenant.
    pub fn token_url(&self) -> String {
        match &self.token_url {
            Some(url) => url.clone(),
            None => format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", self.tenant_id),
        }
    }
}

fn default_entra_scope() -> String {
    "https://cognitiveservices.azure.com/.default".to_owned()
}
