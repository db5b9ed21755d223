//! LLMProvider → a snapshot provider, its credentials resolved from Secrets into the snapshot's
//! `secrets` section (referenced by name, never inlined).

use super::status::{Kind, Verdicts};
use super::{SecretIndex, SecretProblem, age_order, namespace, object_ref, qualified};
use std::sync::Arc;
use switchboard_config::{
    AnthropicProviderConfig, Credential, GeminiProviderConfig, HeaderConfig, MockProviderConfig,
    OpenAiProviderConfig, ProviderConfig, ProviderTimeouts, SecretValue, Snapshot,
};
use switchboard_crds::condition::Reason;
use switchboard_crds::llm_provider::{Header, LlmProvider, ProviderType};
use switchboard_crds::{Duration, SecretKeyRef};

mod cloud;

const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";
const DEFAULT_GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// The contract's defaults, written out so a snapshot says what replicas will send.
const DEFAULT_MAX_TOKENS: u32 = 4096;
const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

pub(super) fn compile_all(
    providers: &[Arc<LlmProvider>],
    secrets: &SecretIndex<'_>,
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
) {
    for provider in age_order(providers, |p| &p.metadata) {
        if let Some(config) = compile_one(provider, secrets, snapshot, verdicts) {
            snapshot.providers.push(config);
        }
    }
}

fn compile_one(
    provider: &LlmProvider,
    secrets: &SecretIndex<'_>,
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
) -> Option<ProviderConfig> {
    let meta = &provider.metadata;
    let ns = namespace(meta);
    let name = qualified(ns, meta.name.as_deref().unwrap_or_default());
    let source = Some(object_ref(Kind::LlmProvider, meta));
    let spec = &provider.spec;
    let mut ok = true;
    let mut invalid = |path: &str, reason: String| {
        verdicts.invalid(Kind::LlmProvider, meta, path, reason);
        ok = false;
    };
    let config = match spec.type_ {
        ProviderType::Bedrock => {
            return super::bedrock::compile(provider, secrets, snapshot, verdicts, name, source);
        }
        ProviderType::Mock => {
            let mock = spec.mock.clone().unwrap_or_default();
            let latency_ms = match mock.latency.parse() {
                Ok(latency) => latency.as_millis() as u64,
                Err(err) => {
                    invalid("spec.mock.latency", err.to_string());
                    0
                }
            };
            if spec.base_url.is_some() {
                invalid("spec.baseURL", "is not allowed with type: mock".into());
            }
            let tokens_per_second = u32::try_from(mock.tokens_per_second).unwrap_or_else(|_| {
                invalid("spec.mock.tokensPerSecond", "must not be negative".into());
                0
            });
            // The contract checks the range; a negative count only needs to stay negative-free.
            let embedding_dimensions = u32::try_from(mock.embedding_dimensions).unwrap_or(0);
            ProviderConfig::Mock(MockProviderConfig {
                name,
                latency_ms,
                tokens_per_second,
                reply: mock.reply.clone(),
                embedding_dimensions,
                source,
            })
        }
        ProviderType::OpenAi
        | ProviderType::Anthropic
        | ProviderType::Gemini
        | ProviderType::Vertex
        | ProviderType::AzureOpenAi => {
            if spec.mock.is_some() {
                invalid("spec.mock", "is only allowed with type: mock".into());
            }
            if spec.anthropic.is_some() && spec.type_ != ProviderType::Anthropic {
                invalid("spec.anthropic", "is only allowed with type: anthropic".into());
            }
            cloud::misplaced(spec, &mut invalid);
            let timeout_ms = request_timeout_ms(provider).unwrap_or_else(|reason| {
                invalid("spec.timeouts.request", reason);
                1
            });
            let timeouts = provider_timeouts(provider, &mut |field, reason| invalid(field, reason));
            let mut refs = SecretRefs::new(secrets, ns, snapshot);
            let api_key = spec.api_key.as_ref().and_then(|k| refs.credential(&k.secret_key_ref));
            let headers = refs.headers(&spec.headers);
            let token_secret = cloud::token_secret(spec).and_then(|r| refs.credential(r));
            let unresolved = refs.unresolved;
            let all_headers = headers.len() == spec.headers.len() || !unresolved.is_empty();
            if !all_headers {
                invalid("spec.headers", "each header needs exactly one of value or valueFrom".into());
            }
            if !unresolved.is_empty() {
                // A provider missing a credential would only fail every request: leave it out.
                verdicts.unresolved(Kind::LlmProvider, meta, Reason::SecretNotFound, unresolved.join("; "));
                ok = false;
            }
            let base_url = |default: &str| spec.base_url.clone().unwrap_or_else(|| default.to_owned());
            match spec.type_ {
                ProviderType::Anthropic => {
                    let settings = spec.anthropic.clone().unwrap_or_default();
                    // The contract checks the range; a negative count only needs to stay negative-free.
                    let default_max_tokens = settings
                        .default_max_tokens
                        .map_or(DEFAULT_MAX_TOKENS, |n| u32::try_from(n).unwrap_or(0));
                    ProviderConfig::Anthropic(AnthropicProviderConfig {
                        name,
                        base_url: base_url(DEFAULT_ANTHROPIC_BASE_URL),
                        api_key,
                        headers,
                        timeout_ms,
                        timeouts,
                        version: settings.version.unwrap_or_else(|| DEFAULT_ANTHROPIC_VERSION.to_owned()),
                        default_max_tokens,
                        allow_private_network: spec.allow_private_network,
                        entra: cloud::entra(spec, token_secret),
                        source,
                    })
                }
                ProviderType::Vertex | ProviderType::AzureOpenAi => {
                    let common = cloud::Common { name, api_key, headers, timeout_ms, timeouts, source };
                    let mut problems = Vec::new();
                    let config = if spec.type_ == ProviderType::Vertex {
                        cloud::vertex(spec, common, token_secret, &mut problems).map(ProviderConfig::Vertex)
                    } else {
                        let entra = cloud::entra(spec, token_secret);
                        cloud::azure_openai(spec, common, entra, &mut problems)
                            .map(ProviderConfig::AzureOpenAi)
                    };
                    for (path, reason) in problems {
                        verdicts.invalid(Kind::LlmProvider, meta, path, reason);
                        ok = false;
                    }
                    config?
                }
                ProviderType::Gemini => ProviderConfig::Gemini(GeminiProviderConfig {
                    name,
                    base_url: base_url(DEFAULT_GEMINI_BASE_URL),
                    api_key,
                    headers,
                    timeout_ms,
                    timeouts,
                    allow_private_network: spec.allow_private_network,
                    source,
                }),
                // OpenAI (the mock is compiled above).
                _ => ProviderConfig::OpenAi(OpenAiProviderConfig {
                    name,
                    base_url: base_url(DEFAULT_OPENAI_BASE_URL),
                    api_key,
                    headers,
                    timeout_ms,
                    timeouts,
                    stream_usage: spec.stream_usage,
                    responses_api: spec.responses_api,
                    allow_private_network: spec.allow_private_network,
                    source,
                }),
            }
        }
    };
    ok.then_some(config)
}

/// An LLMProvider's connect, idle and total limits; a field that is not a positive duration is
/// reported through `invalid` and left out.
pub(super) fn provider_timeouts(
    provider: &LlmProvider,
    invalid: &mut dyn FnMut(&'static str, String),
) -> ProviderTimeouts {
    let t = &provider.spec.timeouts;
    let mut ms = |field: &'static str, value: &Option<Duration>| {
        let value = value.as_ref()?;
        match value.parse() {
            Ok(d) if d.as_millis() > 0 => Some(d.as_millis() as u64),
            Ok(_) => {
                invalid(field, "must be greater than 0s".to_owned());
                None
            }
            Err(err) => {
                invalid(field, err.to_string());
                None
            }
        }
    };
    ProviderTimeouts {
        connect_ms: ms("spec.timeouts.connect", &t.connect),
        idle_ms: ms("spec.timeouts.idle", &t.idle),
        total_ms: ms("spec.timeouts.total", &t.total),
    }
}

/// An LLMProvider's request timeout in milliseconds, or why `spec.timeouts.request` is wrong.
pub(super) fn request_timeout_ms(provider: &LlmProvider) -> Result<u64, String> {
    match provider.spec.timeouts.request.parse() {
        Ok(timeout) if timeout.as_millis() > 0 => Ok(timeout.as_millis() as u64),
        Ok(_) => Err("must be greater than 0s".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

/// Resolves an LLMProvider's Secret references into the snapshot's `secrets` section, one entry
/// per Secret key (two providers sharing a Secret share it), and collects why a reference does
/// not resolve.
pub(super) struct SecretRefs<'a, 's> {
    secrets: &'a SecretIndex<'s>,
    ns: &'a str,
    snapshot: &'a mut Snapshot,
    pub unresolved: Vec<String>,
}

impl<'a, 's> SecretRefs<'a, 's> {
    pub fn new(secrets: &'a SecretIndex<'s>, ns: &'a str, snapshot: &'a mut Snapshot) -> Self {
        SecretRefs { secrets, ns, snapshot, unresolved: Vec::new() }
    }

    /// The snapshot's reference to the Secret key's value, or `None` (and why) when it does not
    /// resolve.
    pub fn credential(&mut self, reference: &SecretKeyRef) -> Option<Credential> {
        let ns = self.ns;
        match self.secrets.value(ns, &reference.name, &reference.key) {
            Ok(value) => {
                let entry = format!("{ns}/{}/{}", reference.name, reference.key);
                self.snapshot.secrets.insert(entry.clone(), SecretValue::new(&value));
                Some(Credential::Secret(entry))
            }
            Err(SecretProblem::Missing) => {
                self.unresolved.push(format!("Secret {ns}/{} not found", reference.name));
                None
            }
            Err(SecretProblem::Entry(message)) => {
                self.unresolved.push(message);
                None
            }
        }
    }

    /// The headers that resolve: a value, or a Secret key. A header with neither or both is left
    /// out (the caller compares counts to say so).
    pub fn headers(&mut self, headers: &[Header]) -> Vec<HeaderConfig> {
        let mut out = Vec::with_capacity(headers.len());
        for header in headers {
            let value = match (&header.value, &header.value_from) {
                (Some(value), None) => Some(Credential::Value(SecretValue::new(value))),
                (None, Some(from)) => self.credential(&from.secret_key_ref),
                _ => None,
            };
            if let Some(value) = value {
                out.push(HeaderConfig { name: header.name.clone(), value });
            }
        }
        out
    }
}
