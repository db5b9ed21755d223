//! The `bedrock` provider type: AWS Bedrock Runtime's Converse API, signed with SigV4.
//! <https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html>

use crate::ObjectRef;
use crate::provider::{Credential, HeaderConfig, ProviderTimeouts};
use serde::{Deserialize, Serialize};

/// An upstream speaking Bedrock Runtime's Converse and ConverseStream
/// (`POST {base_url}/model/{modelId}/converse[-stream]`), every request signed with SigV4 for
/// the service `bedrock` in `region`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockProviderConfig {
    pub name: String,
    /// The AWS region (`us-east-1`): part of the signature's scope and of the default base URL.
    pub region: String,
    /// Default `https://bedrock-runtime.{region}.amazonaws.com` (a VPC endpoint or a test server
    /// otherwise). `/model/{modelId}/converse` is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    pub credentials: BedrockCredentials,
    /// Extra headers sent (and signed) with every upstream request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderConfig>,
    /// As for OpenAI providers: connect and answer budget, and the longest silence in a stream.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// As for OpenAI providers: connecting, stream silence and whole-attempt limits.
    #[serde(default, skip_serializing_if = "ProviderTimeouts::is_empty")]
    pub timeouts: ProviderTimeouts,
    /// As for OpenAI providers: allow loopback, link-local and metadata addresses (for the base
    /// URL and the STS endpoint).
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_private_network: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// Where the signing keys come from: an access key (with an optional session token), or web
/// identity (IRSA on EKS). Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BedrockCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<Credential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Credential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Credential>,
    /// Temporary keys from STS `AssumeRoleWithWebIdentity`. The token file and role come from the
    /// gateway's own environment (`AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, as EKS sets
    /// them), never from the config: whoever writes a provider must not make the gateway read a
    /// file of their choosing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_identity: Option<WebIdentityConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebIdentityConfig {
    /// The STS endpoint; default `https://sts.{region}.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_url: Option<String>,
}

impl BedrockProviderConfig {
    pub fn base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| format!("https://bedrock-runtime.{}.amazonaws.com", self.region))
    }

    /// The STS endpoint, when credentials come from web identity.
    pub fn sts_url(&self) -> Option<String> {
        let web = self.credentials.web_identity.as_ref()?;
        Some(web.sts_url.clone().unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region)))
    }

    /// Every credential the provider names (keys, token, header values).
    pub fn credentials(&self) -> Vec<&Credential> {
        let keys = &self.credentials;
        [&keys.access_key_id, &keys.secret_access_key, &keys.session_token]
            .into_iter()
            .flatten()
            .chain(self.headers.iter().map(|h| &h.value))
            .collect()
    }

    /// What is wrong with the fields only a Bedrock provider has, as (field path under the
    /// provider, reason). URLs, headers and credential values are checked with every provider's.
    pub(crate) fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            problems.push(("region".to_owned(), "must be an AWS region such as us-east-1".to_owned()));
        }
        let keys = &self.credentials;
        let static_keys =
            keys.access_key_id.is_some() || keys.secret_access_key.is_some() || keys.session_token.is_some();
        match (static_keys, keys.web_identity.is_some()) {
            (true, true) => problems.push((
                "credentials".to_owned(),
                "set either access_key_id and secret_access_key or web_identity, not both".to_owned(),
            )),
            (false, false) => problems.push((
                "credentials".to_owned(),
                "needs access_key_id and secret_access_key, or web_identity".to_owned(),
            )),
            (true, false) => {
                for (field, value) in
                    [("access_key_id", &keys.access_key_id), ("secret_access_key", &keys.secret_access_key)]
                {
                    if value.is_none() {
                        problems.push((
                            format!("credentials.{field}"),
                            "is required with static keys".to_owned(),
                        ));
                    }
                }
            }
            (false, true) => {}
        }
        problems
    }
}

fn default_timeout_ms() -> u64 {
    600_000
}

fn is_false(value: &bool) -> bool {
    !value
}
