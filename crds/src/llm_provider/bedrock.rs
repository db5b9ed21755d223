//! The settings of an LLMProvider of type `bedrock` (AWS Bedrock Runtime, Converse API).

use crate::common::SecretKeyRef;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// Settings of an AWS Bedrock provider: the region, and where the keys requests are signed
/// with (SigV4) come from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct BedrockSettings {
    /// The AWS region of the Bedrock endpoint and of the signature, such as us-east-1. The base
    /// URL defaults to https://bedrock-runtime.<region>.amazonaws.com.
    #[schemars(length(min = 1, max = 32), pattern(r"^[a-z0-9-]+$"))]
    pub region: String,

    /// Where the signing keys come from: an access key in a Secret, or the gateway's web identity
    /// (IRSA).
    pub credentials: BedrockCredentials,
}

/// An access key (with an optional session token), each from a Secret; or web identity.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.webIdentity) != (has(self.accessKeyId) || has(self.secretAccessKey) || has(self.sessionToken))")
        .message("set accessKeyId and secretAccessKey (and optionally sessionToken), or webIdentity"),
    validation = Rule::new("has(self.accessKeyId) == has(self.secretAccessKey)")
        .message("accessKeyId and secretAccessKey go together")
)]
pub struct BedrockCredentials {
    /// The access key id (AKIA... or ASIA...), from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<FromSecret>,
    /// The secret access key, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<FromSecret>,
    /// A session token, for temporary keys, from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<FromSecret>,
    /// Temporary keys from STS AssumeRoleWithWebIdentity, for gateways on EKS with IAM roles for
    /// service accounts (IRSA). The role and the token file are those of the gateway's own
    /// environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE), never named here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentity>,
}

/// A value kept in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct FromSecret {
    /// The Secret key holding the value, in the same namespace as this LLMProvider.
    pub secret_key_ref: SecretKeyRef,
}

/// Web identity settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebIdentity {
    /// The STS endpoint. Default https://sts.<region>.amazonaws.com. Subject to the same address
    /// rule as baseURL (allowPrivateNetwork).
    #[serde(rename = "stsURL", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(
        validation = Rule::new("self.matches('^https?://[^/?#@]+(/[^?#]*)?$') && isURL(self)")
            .message("must be an http:// or https:// URL with a host, without credentials, query or fragment")
    )]
    pub sts_url: Option<String>,
}
