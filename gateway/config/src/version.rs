//! Schema versions and the skew policy between operator and gateways.
//!
//! Policy (docs/config.md, "Versions"): a gateway of release N reads schema versions N and N−1;
//! an operator of release N writes version N, or N−1 for a replica that says it reads no newer,
//! so during a rolling upgrade the operator goes first and old and new replicas both keep
//! receiving snapshots. A document of a version a gateway does not read is refused as a whole,
//! and the gateway keeps serving what it has.
//!
//! Version 1 is the landed standalone format; version 2 adds provenance, the `secrets` section,
//! key ids with several hashes and labels, rate-limit policies, anthropic and gemini providers,
//! per-route `default_max_tokens`, per-backend `capabilities` and `price`, and key budgets. A version-1 document is read
//! into the same types; using a version-2 field in it is an error, as it was for a version-1
//! gateway (unknown field).

use crate::{ConfigError, ConfigErrors, Credential, ProviderConfig, Section, Snapshot};
use serde_json::{Map, Value};

/// A problem found by the version-1 subset check: the entry (if any), path and reason.
pub(crate) type Violation = (Option<(Section, usize)>, String, String);

/// Version-2 features used in a version-1 document.
pub(crate) fn v1_violations(snapshot: &Snapshot) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut v2_only = |entry: Option<(Section, usize)>, path: String| {
        found.push((entry, path, "needs schema version 2 (set `version: 2`)".to_owned()));
    };
    if !snapshot.secrets.is_empty() {
        v2_only(None, "secrets".into());
    }
    if !snapshot.policies.is_empty() {
        v2_only(None, "policies".into());
    }
    for (i, provider) in snapshot.providers.iter().enumerate() {
        let at = Some((Section::Providers, i));
        if provider.source().is_some() {
            v2_only(at, format!("providers[{i}].source"));
        }
        if matches!(
            provider,
            ProviderConfig::Anthropic(_)
                | ProviderConfig::Gemini(_)
                | ProviderConfig::Vertex(_)
                | ProviderConfig::AzureOpenAi(_)
        ) {
            v2_only(at, format!("providers[{i}].type: {}", provider.type_name()));
        }
        if matches!(provider, ProviderConfig::Bedrock(_)) {
            v2_only(at, format!("providers[{i}].type: bedrock"));
        }
        if let ProviderConfig::OpenAi(p) = provider {
            if p.allow_private_network {
                v2_only(at, format!("providers[{i}].allow_private_network"));
            }
            if provider.credentials().iter().any(|c| matches!(c, Credential::Secret(_))) {
                v2_only(at, format!("providers[{i}]: `secret` credentials"));
            }
        }
    }
    for (i, route) in snapshot.routes.iter().enumerate() {
        let at = Some((Section::Routes, i));
        if !route.policies.is_empty() {
            v2_only(at, format!("routes[{i}].policies"));
        }
        if route.default_max_tokens.is_some() {
            v2_only(at, format!("routes[{i}].default_max_tokens"));
        }
        if route.source.is_some() {
            v2_only(at, format!("routes[{i}].source"));
        }
        for (b, backend) in route.backends.iter().enumerate() {
            if backend.capabilities.is_some() {
                v2_only(at, format!("routes[{i}].backends[{b}].capabilities"));
            }
            if backend.price.is_some() {
                v2_only(at, format!("routes[{i}].backends[{b}].price"));
            }
        }
    }
    for (i, key) in snapshot.keys.iter().enumerate() {
        let at = Some((Section::Keys, i));
        for (field, used) in [
            ("labels", !key.labels.is_empty()),
            ("hashes", !key.hashes.is_empty()),
            ("policies", !key.policies.is_empty()),
            ("budget", key.budget.is_some()),
            ("source", key.source.is_some()),
        ] {
            if used {
                v2_only(at, format!("keys[{i}].{field}"));
            }
        }
    }
    found
}

impl Snapshot {
    /// The snapshot as a document of schema `version`, for a reader that understands no newer.
    ///
    /// Version 1 has no secrets section (values are inlined), no provenance, labels or
    /// policies, and one hash per key. What version 1 cannot express safely is refused rather
    /// than dropped: policies (an old gateway would not enforce them) and keys with several
    /// hashes or validity windows (an old gateway would accept a retired key).
    pub fn to_version(&self, version: u32) -> Result<Value, ConfigErrors> {
        let mut document =
            serde_json::to_value(self).map_err(|err| ConfigErrors::single("", err.to_string()))?;
        match version {
            2 => Ok(document),
            1 => {
                let mut problems = Vec::new();
                if !self.policies.is_empty() {
                    problems.push(ConfigError::document(
                        "policies",
                        "version 1 cannot carry rate-limit policies",
                    ));
                }
                for (i, key) in self.keys.iter().enumerate() {
                    let single = key.hash.is_some() as usize + key.hashes.len() == 1
                        && key.hashes.iter().all(|h| h.not_before.is_none() && h.expires_at.is_none());
                    if !single {
                        problems.push(ConfigError::document(
                            format!("keys[{i}].hashes"),
                            "version 1 has one hash per key, without a validity window",
                        ));
                    }
                }
                // A version-1 gateway knows neither the provider type nor the route settings.
                for (i, provider) in self.providers.iter().enumerate() {
                    if matches!(
                        provider,
                        ProviderConfig::Anthropic(_)
                            | ProviderConfig::Gemini(_)
                            | ProviderConfig::Vertex(_)
                            | ProviderConfig::AzureOpenAi(_)
                    ) {
                        let kind = provider.type_name();
                        problems.push(ConfigError::document(
                            format!("providers[{i}].type: {kind}"),
                            format!("version 1 has no {kind} providers"),
                        ));
                    }
                    if matches!(provider, ProviderConfig::Bedrock(_)) {
                        problems.push(ConfigError::document(
                            format!("providers[{i}].type: bedrock"),
                            "version 1 has no bedrock providers",
                        ));
                    }
                }
                for (i, route) in self.routes.iter().enumerate() {
                    if route.default_max_tokens.is_some() {
                        problems.push(ConfigError::document(
                            format!("routes[{i}].default_max_tokens"),
                            "version 1 has no per-route default_max_tokens",
                        ));
                    }
                    for (b, backend) in route.backends.iter().enumerate() {
                        if backend.capabilities.is_some() {
                            problems.push(ConfigError::document(
                                format!("routes[{i}].backends[{b}].capabilities"),
                                "version 1 has no backend capabilities",
                            ));
                        }
                    }
                }
                for (i, key) in self.keys.iter().enumerate() {
                    if key.budget.is_some() {
                        problems.push(ConfigError::document(
                            format!("keys[{i}].budget"),
                            "version 1 cannot carry budgets (an old gateway would not enforce them)",
                        ));
                    }
                }
                if !problems.is_empty() {
                    return Err(ConfigErrors(problems));
                }
                downgrade_to_v1(self, &mut document);
                Ok(document)
            }
            other => Err(ConfigErrors::single("version", format!("cannot write schema version {other}"))),
        }
    }
}

/// Rewrites a version-2 JSON document (already checked to be expressible) as version 1.
fn downgrade_to_v1(snapshot: &Snapshot, document: &mut Value) {
    let Some(root) = document.as_object_mut() else { return };
    root.insert("version".into(), Value::from(1));
    root.remove("secrets");
    root.remove("policies");
    for (provider, entry) in snapshot.providers.iter().zip(array(root, "providers")) {
        entry.remove("source");
        entry.remove("allow_private_network");
        let ProviderConfig::OpenAi(p) = provider else { continue };
        if let Some(credential) = &p.api_key {
            entry.insert("api_key".into(), inline(snapshot, credential));
        }
        if let Some(Value::Array(headers)) = entry.get_mut("headers") {
            for (header, config) in headers.iter_mut().zip(&p.headers) {
                if let Some(header) = header.as_object_mut() {
                    header.insert("value".into(), inline(snapshot, &config.value));
                }
            }
        }
    }
    for entry in array(root, "routes") {
        entry.remove("source");
        entry.remove("policies");
        // Prices only feed cost metrics and limits, which version 1 does not have.
        for backend in array(entry, "backends") {
            backend.remove("price");
        }
    }
    for (key, entry) in snapshot.keys.iter().zip(array(root, "keys")) {
        for field in ["id", "labels", "hashes", "policies", "source"] {
            entry.remove(field);
        }
        entry.insert("name".into(), Value::from(key.id.clone()));
        if let Some((hash, _, _)) = key.all_hashes().next() {
            entry.insert("hash".into(), Value::from(hash.0.clone()));
        }
    }
}

fn array<'a>(
    root: &'a mut Map<String, Value>,
    field: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    root.get_mut(field).and_then(Value::as_array_mut).into_iter().flatten().filter_map(Value::as_object_mut)
}

/// A credential with a `secret` reference replaced by its value.
fn inline(snapshot: &Snapshot, credential: &Credential) -> Value {
    let resolved = match credential {
        Credential::Secret(name) => match snapshot.secrets.get(name) {
            Some(value) => Credential::Value(value.clone()),
            None => credential.clone(),
        },
        other => other.clone(),
    };
    serde_json::to_value(resolved).unwrap_or(Value::Null)
}
