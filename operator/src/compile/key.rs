//! VirtualKey → a snapshot key: the SHA-256 of the key in its Secret (the key itself never
//! enters the snapshot), a second hash during a rotation, and what it may use.

use super::status::{Kind, Verdicts};
use super::{
    Existing, KeySecretToGenerate, SecretIndex, SecretProblem, age_order, namespace, object_ref, qualified,
    resolve_policies, rfc3339,
};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use switchboard_config::{
    BudgetConfig, FailureMode, KeyConfig, KeyHashConfig, PolicyMode, Snapshot, hash_key,
};
use switchboard_crds::condition::Reason;
use switchboard_crds::rate_limit_policy as policy;
use switchboard_crds::virtual_key::{Budget, VirtualKey};

/// Compiles every key onto the routes and policies in `snapshot`; returns the Secrets to
/// generate for keys whose Secret does not exist.
pub(super) fn compile_all(
    keys: &[Arc<VirtualKey>],
    existing: &Existing,
    secrets: &SecretIndex<'_>,
    snapshot: &mut Snapshot,
    verdicts: &mut Verdicts,
) -> Vec<KeySecretToGenerate> {
    let serving_routes: HashSet<String> = snapshot.routes.iter().map(|r| r.model.clone()).collect();
    let serving_policies: HashSet<String> = snapshot.policies.iter().map(|p| p.name.clone()).collect();
    // Which key holds each digest: the older key keeps a key both Secrets hold.
    let mut holders: HashMap<[u8; 32], String> = HashMap::new();
    let mut generate = Vec::new();
    for key in age_order(keys, |k| &k.metadata) {
        let meta = &key.metadata;
        let ns = namespace(meta);
        let id = qualified(ns, meta.name.as_deref().unwrap_or_default());
        let spec = &key.spec;
        let reference = &spec.secret_ref;

        let secret = match secrets.value(ns, &reference.name, &reference.key) {
            Ok(secret) => secret,
            Err(SecretProblem::Missing) => {
                let owner = object_ref(Kind::VirtualKey, meta);
                generate.push(KeySecretToGenerate {
                    namespace: ns.to_owned(),
                    name: reference.name.clone(),
                    key: reference.key.clone(),
                    owner,
                });
                let message = format!("Secret {ns}/{} not found", reference.name);
                verdicts.unresolved(Kind::VirtualKey, meta, Reason::SecretNotFound, message);
                verdicts.pending(
                    Kind::VirtualKey,
                    meta,
                    format!("generating a key into Secret {ns}/{} (key {:?})", reference.name, reference.key),
                );
                continue;
            }
            Err(SecretProblem::Entry(message)) => {
                // The Secret exists: never overwrite what someone else put there.
                verdicts.unresolved(Kind::VirtualKey, meta, Reason::SecretNotFound, message);
                continue;
            }
        };
        let mut unresolved = Vec::new();
        let mut hashes = vec![KeyHashConfig { hash: hash_of(&secret), not_before: None, expires_at: None }];
        if let Some(rotation) = &spec.rotation {
            let previous = &rotation.previous_secret_ref;
            match secrets.value(ns, &previous.name, &previous.key) {
                Ok(old) => hashes.push(KeyHashConfig {
                    hash: hash_of(&old),
                    not_before: None,
                    expires_at: Some(rfc3339(&rotation.valid_until)),
                }),
                // The new key still works; only the old one is not honoured.
                Err(SecretProblem::Missing) => {
                    unresolved.push(format!("rotation: Secret {ns}/{} not found", previous.name))
                }
                Err(SecretProblem::Entry(message)) => unresolved.push(format!("rotation: {message}")),
            }
        }

        let digests: Vec<[u8; 32]> = hashes.iter().filter_map(|h| h.hash.digest().ok()).collect();
        if let Some(owner) = digests.iter().find_map(|d| holders.get(d)) {
            let message = format!(
                "the key in Secret {ns}/{} is already used by the older VirtualKey {owner}",
                reference.name
            );
            verdicts.conflict(Kind::VirtualKey, meta, message);
            continue;
        }
        for digest in digests {
            holders.insert(digest, id.clone());
        }

        if let Some(models) = &spec.models {
            for model in models {
                if model != "*" && !serving_routes.contains(model) {
                    unresolved
                        .push(format!("model {model:?} has no serving ModelRoute (the key cannot use it)"));
                }
            }
        }
        let (policies, missing) = resolve_policies(&spec.policy_refs, ns, &serving_policies, existing, "key");
        let missing_policy = !missing.is_empty();
        unresolved.extend(missing);
        if !unresolved.is_empty() {
            let reason = if unresolved.iter().any(|m| m.contains("Secret")) {
                Reason::SecretNotFound
            } else {
                Reason::RefNotFound
            };
            verdicts.unresolved(Kind::VirtualKey, meta, reason, unresolved.join("; "));
        }
        if missing_policy {
            continue;
        }
        let labels: BTreeMap<String, String> = [("team", &spec.team), ("owner", &spec.owner)]
            .into_iter()
            .filter_map(|(label, value)| Some((label.to_owned(), value.clone()?)))
            .collect();
        snapshot.keys.push(KeyConfig {
            id,
            labels,
            hash: None,
            hashes,
            models: spec.models.clone(),
            disabled: spec.disabled,
            expires_at: spec.expires_at.as_ref().map(rfc3339),
            policies,
            budget: spec.budget.as_ref().map(budget),
            source: Some(object_ref(Kind::VirtualKey, meta)),
        });
    }
    generate
}

/// The key's budget. Its amounts are checked by the contract (`Snapshot::accept`), which reports
/// them at `spec.budget.dailyUsd` and `spec.budget.monthlyUsd` (`status::spec_path`).
fn budget(budget: &Budget) -> BudgetConfig {
    BudgetConfig {
        daily_usd: budget.daily_usd.clone(),
        monthly_usd: budget.monthly_usd.clone(),
        mode: match budget.mode {
            policy::Mode::Local => PolicyMode::Local,
            policy::Mode::Redis => PolicyMode::Redis,
        },
        failure_mode: match budget.failure_mode {
            policy::FailureMode::Open => FailureMode::Open,
            policy::FailureMode::Closed => FailureMode::Closed,
        },
    }
}

fn hash_of(key: &str) -> switchboard_config::KeyHash {
    hash_key(&Sha256::digest(key.as_bytes()).into())
}
