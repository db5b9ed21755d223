//! The token-authenticated providers' settings: Vertex AI's project, location and service
//! account key, Azure OpenAI's API version, and Entra ID (Azure OpenAI, Anthropic on Foundry).
//! Their secrets are resolved by the caller like any other credential.

use switchboard_config::{
    AzureOpenAiProviderConfig, Credential, EntraConfig, HeaderConfig, ObjectRef, ProviderTimeouts,
    VertexProviderConfig, vertex_base_url,
};
use switchboard_crds::SecretKeyRef;
use switchboard_crds::llm_provider::{LlmProviderSpec, ProviderType};

/// The contract's Entra scope default, written out so a snapshot says what replicas will ask for.
const DEFAULT_ENTRA_SCOPE: &str = "https://cognitiveservices.azure.com/.default";

/// The Secret key a provider gets its tokens with, if it uses tokens.
pub(super) fn token_secret(spec: &LlmProviderSpec) -> Option<&SecretKeyRef> {
    match (spec.type_, &spec.vertex, &spec.entra) {
        (ProviderType::Vertex, Some(vertex), _) => Some(&vertex.service_account_key.secret_key_ref),
        (ProviderType::AzureOpenAi | ProviderType::Anthropic, _, Some(entra)) => {
            Some(&entra.client_secret.secret_key_ref)
        }
        _ => None,
    }
}

/// Settings given to a type that does not take them (the CRD's rules refuse them too; a spec
/// written around them is still refused here).
pub(super) fn misplaced(spec: &LlmProviderSpec, invalid: &mut dyn FnMut(&str, String)) {
    if spec.vertex.is_some() && spec.type_ != ProviderType::Vertex {
        invalid("spec.vertex", "is only allowed with type: vertex".into());
    }
    if spec.azure.is_some() && spec.type_ != ProviderType::AzureOpenAi {
        invalid("spec.azure", "is only allowed with type: azure_openai".into());
    }
    if spec.entra.is_some() && !matches!(spec.type_, ProviderType::AzureOpenAi | ProviderType::Anthropic) {
        invalid("spec.entra", "is only allowed with type: azure_openai or anthropic".into());
    }
}

/// The Entra settings, with `client_secret` resolved (None: unresolved, already reported).
pub(super) fn entra(spec: &LlmProviderSpec, client_secret: Option<Credential>) -> Option<EntraConfig> {
    let entra = spec.entra.as_ref()?;
    Some(EntraConfig {
        tenant_id: entra.tenant_id.clone(),
        client_id: entra.client_id.clone(),
        client_secret: client_secret?,
        scope: entra.scope.clone().unwrap_or_else(|| DEFAULT_ENTRA_SCOPE.to_owned()),
        token_url: entra.token_url.clone(),
    })
}

/// What every HTTP provider config has, already compiled by the caller.
pub(super) struct Common {
    pub name: String,
    pub api_key: Option<Credential>,
    pub headers: Vec<HeaderConfig>,
    pub timeout_ms: u64,
    pub timeouts: ProviderTimeouts,
    pub source: Option<ObjectRef>,
}

pub(super) fn vertex(
    spec: &LlmProviderSpec,
    common: Common,
    key: Option<Credential>,
    problems: &mut Vec<(&'static str, String)>,
) -> Option<VertexProviderConfig> {
    let Some(settings) = &spec.vertex else {
        problems.push((
            "spec.vertex",
            "is required with type: vertex (project, location, serviceAccountKey)".into(),
        ));
        return None;
    };
    if common.api_key.is_some() {
        problems.push((
            "spec.apiKey",
            "is not used by type: vertex (it authenticates with spec.vertex.serviceAccountKey)".into(),
        ));
    }
    Some(VertexProviderConfig {
        name: common.name,
        project: settings.project.clone(),
        location: settings.location.clone(),
        base_url: spec.base_url.clone().unwrap_or_else(|| vertex_base_url(&settings.location)),
        service_account: key?,
        token_url: settings.token_url.clone(),
        headers: common.headers,
        timeout_ms: common.timeout_ms,
        timeouts: common.timeouts,
        allow_private_network: spec.allow_private_network,
        source: common.source,
    })
}

pub(super) fn azure_openai(
    spec: &LlmProviderSpec,
    common: Common,
    entra: Option<EntraConfig>,
    problems: &mut Vec<(&'static str, String)>,
) -> Option<AzureOpenAiProviderConfig> {
    let (Some(settings), Some(base_url)) = (&spec.azure, &spec.base_url) else {
        problems.push(("spec.azure", "type: azure_openai needs baseURL and spec.azure.apiVersion".into()));
        return None;
    };
    Some(AzureOpenAiProviderConfig {
        name: common.name,
        base_url: base_url.clone(),
        api_version: settings.api_version.clone(),
        api_key: common.api_key,
        entra,
        headers: common.headers,
        timeout_ms: common.timeout_ms,
        timeouts: common.timeouts,
        stream_usage: spec.stream_usage,
        allow_private_network: spec.allow_private_network,
        source: common.source,
    })
}
