//! LLMProvider of type `bedrock` → a snapshot provider: the region, the base URL written out,
//! and the access key's parts resolved from Secrets into the snapshot's `secrets` section (or
//! web identity, whose role and token stay in each replica's own environment).

use super::provider::{SecretRefs, provider_timeouts, request_timeout_ms};
use super::status::{Kind, Verdicts};
use super::{SecretIndex, namespace};
use switchboard_config::{
    BedrockCredentials, BedrockProviderConfig, ObjectRef, ProviderConfig, Snapshot, WebIdentityConfig,
};
use switchboard_crds::condition::Reason;
use switchboard_crds::llm_provider::LlmProvider;

pub(super) fn compile(
    provider: &LlmProvider,
    secrets: &SecretIndex<'_>,
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
    name: String,
    source: Option<ObjectRef>,
) -> Option<ProviderConfig> {
    let meta = &provider.metadata;
    let ns = namespace(meta);
    let spec = &provider.spec;
    let mut ok = true;
    let mut invalid = |path: &str, reason: &str| {
        verdicts.invalid(Kind::LlmProvider, meta, path, reason);
        ok = false;
    };
    // CEL refuses these at admission; an object stored before the rules existed still gets told.
    for (present, path) in [
        (spec.mock.is_some(), "spec.mock"),
        (spec.anthropic.is_some(), "spec.anthropic"),
        (spec.api_key.is_some(), "spec.apiKey"),
    ] {
        if present {
            invalid(path, "is not used with type: bedrock");
        }
    }
    let Some(settings) = &spec.bedrock else {
        invalid("spec.bedrock", "type: bedrock needs bedrock settings (region and credentials)");
        return None;
    };
    let timeout_ms = request_timeout_ms(provider).unwrap_or_else(|reason| {
        invalid("spec.timeouts.request", &reason);
        1
    });
    let timeouts = provider_timeouts(provider, &mut |field, reason| invalid(field, &reason));
    let mut refs = SecretRefs::new(secrets, ns, snapshot);
    let keys = &settings.credentials;
    let credentials = BedrockCredentials {
        access_key_id: keys.access_key_id.as_ref().and_then(|k| refs.credential(&k.secret_key_ref)),
        secret_access_key: keys.secret_access_key.as_ref().and_then(|k| refs.credential(&k.secret_key_ref)),
        session_token: keys.session_token.as_ref().and_then(|k| refs.credential(&k.secret_key_ref)),
        web_identity: keys.web_identity.as_ref().map(|w| WebIdentityConfig { sts_url: w.sts_url.clone() }),
    };
    let headers = refs.headers(&spec.headers);
    let mut unresolved = refs.unresolved;
    if headers.len() != spec.headers.len() && unresolved.is_empty() {
        invalid("spec.headers", "each header needs exactly one of value or valueFrom");
    }
    if !unresolved.is_empty() {
        // The key id and the secret usually share a Secret: one line for it.
        unresolved.dedup();
        // A provider missing a key would only fail every request: leave it out.
        verdicts.unresolved(Kind::LlmProvider, meta, Reason::SecretNotFound, unresolved.join("; "));
        return None;
    }
    let base_url = spec
        .base_url
        .clone()
        .unwrap_or_else(|| format!("https://bedrock-runtime.{}.amazonaws.com", settings.region));
    let config = ProviderConfig::Bedrock(BedrockProviderConfig {
        name,
        region: settings.region.clone(),
        base_url: Some(base_url),
        credentials,
        headers,
        timeout_ms,
        timeouts,
        allow_private_network: spec.allow_private_network,
        source,
    });
    ok.then_some(config)
}
