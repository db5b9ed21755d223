//! Settings of the providers that authenticate with OAuth2 access tokens: Vertex AI (a Google
//! service account key) and Azure OpenAI (a key, or a Microsoft Entra ID application, which
//! Anthropic on Microsoft Foundry can use too).

use crate::common::SecretKeyRef;
use serde::{Deserialize, Serialize};

/// Token endpoints: http(s) URLs without spaces (the operator and the gateway check the rest).
const TOKEN_URL_PATTERN: &str = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$";

/// Settings of a Vertex AI provider (type: vertex).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VertexSettings {
    /// The Google Cloud project id. Example: my-project
    #[schemars(length(min = 1, max = 128), pattern(r"^[a-z0-9.:-]+$"))]
    pub project: String,
    /// The location: a region such as us-central1, or global. baseURL defaults to
    /// https://{location}-aiplatform.googleapis.com/v1 (https://aiplatform.googleapis.com/v1 for global).
    #[schemars(length(min = 1, max = 64), pattern(r"^[a-z0-9-]+$"))]
    pub location: String,
    /// The Secret key holding the service account key file (the JSON Google issues, with
    /// client_email, private_key and token_uri). Access tokens are requested with it (JWT bearer
    /// grant) and refreshed before they expire.
    pub service_account_key: SecretKeyRefHolder,
    /// Where access tokens are requested. Default: the key's token_uri
    /// (https://oauth2.googleapis.com/token). Subject to allowPrivateNetwork like baseURL.
    #[serde(rename = "tokenURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(TOKEN_URL_PATTERN))]
    pub token_url: Option<String>,
}

/// Settings of an Azure OpenAI provider (type: azure_openai).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureSettings {
    /// v1 for the v1 API ({baseURL}/openai/v1/chat/completions, the model in the body), or a
    /// dated version for deployment URLs ({baseURL}/openai/deployments/{model}/chat/completions?api-version=...,
    /// the backend's model being the deployment name). Example: 2024-10-21
    #[schemars(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9-]+$"))]
    pub api_version: String,
}

/// A Microsoft Entra ID application whose tokens the upstream accepts (client-credentials
/// grant), for type azure_openai or anthropic (Claude on Microsoft Foundry). Instead of apiKey.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EntraSettings {
    /// The directory (tenant) id.
    #[serde(rename = "tenantID")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9._-]+$"))]
    pub tenant_id: String,
    /// The application (client) id.
    #[serde(rename = "clientID")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9._-]+$"))]
    pub client_id: String,
    /// The Secret key holding the application's client secret.
    pub client_secret: SecretKeyRefHolder,
    /// The scope requested. Default https://cognitiveservices.azure.com/.default
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), pattern(r"^\S+$"))]
    pub scope: Option<String>,
    /// The token endpoint. Default https://login.microsoftonline.com/{tenantID}/oauth2/v2.0/token.
    /// Subject to allowPrivateNetwork like baseURL.
    #[serde(rename = "tokenURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048), pattern(TOKEN_URL_PATTERN))]
    pub token_url: Option<String>,
}

/// A secret value's place.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRefHolder {
    /// The Secret key, in the same namespace as this LLMProvider.
    pub secret_key_ref: SecretKeyRef,
}
