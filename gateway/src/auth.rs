//! Virtual keys: who is calling, and may they use this model.
//!
//! Keys are held only as SHA-256 digests. A presented key is hashed and looked up; the lookup
//! compares digests, never keys, and the final equality check is constant-time so the response
//! time says nothing about how close a guess was. Keys are never logged: [`Key`] carries a name.

use crate::error::GatewayError;
use crate::limits::policy::Policy;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use switchboard_config::{KeyConfig, parse_rfc3339};

/// Which routes a key may use, by route index in the table.
#[derive(Debug, Clone)]
pub enum Allowed {
    All,
    /// Sorted route indices. Keys listing the same models share one list, so 10,000 keys on
    /// 1,000 routes cost a few lists, not a 1,000-entry map per key.
    Routes(Arc<[u32]>),
}

/// A compiled virtual key.
pub struct Key {
    /// The public id: what logs and metrics show. Never the key.
    pub id: Arc<str>,
    /// The `team` label: team-scoped policies count per team.
    pub team: Option<Arc<str>>,
    /// The policies this key's requests face (its own budget last), shared by keys that list
    /// the same ones.
    pub policies: Arc<[Arc<Policy>]>,
    allowed: Allowed,
    disabled: bool,
    expires_at: Option<i64>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Key {
    pub fn may_use(&self, route_index: usize) -> bool {
        match &self.allowed {
            Allowed::All => true,
            Allowed::Routes(allowed) => {
                u32::try_from(route_index).is_ok_and(|index| allowed.binary_search(&index).is_ok())
            }
        }
    }
}

/// One hash that authenticates as a key, valid within its own window (a rotation overlaps two).
struct Credential {
    key: Arc<Key>,
    digest: [u8; 32],
    not_before: Option<i64>,
    expires_at: Option<i64>,
}

/// Every key of one config, by digest.
#[derive(Default)]
pub struct KeyTable {
    by_digest: HashMap<[u8; 32], Credential, BuildDigestHasher>,
    keys: usize,
}

/// Hashes a SHA-256 digest by taking 8 of its bytes. A digest is already uniformly distributed,
/// so running SipHash over it again buys nothing; and the table's contents come from config, not
/// from callers, so there is no flooding to defend against.
#[derive(Default, Clone, Copy)]
struct BuildDigestHasher;

impl std::hash::BuildHasher for BuildDigestHasher {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(0)
    }
}

struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length (a usize, via write_usize) and then its bytes.
        for chunk in bytes.chunks(8).take(1) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_usize(&mut self, _length: usize) {}
}

impl KeyTable {
    /// Builds the table. `route_index` maps a public model name to its route index; names
    /// without a route (allowed in pushed snapshots: the route is not serving) allow nothing.
    /// The config was validated, so every hash and time parses (anything else is skipped).
    ///
    /// `policy` finds a compiled policy by name (every name resolves: validated).
    pub fn compile(
        keys: &[KeyConfig],
        route_index: &dyn Fn(&str) -> Option<usize>,
        policy: &dyn Fn(&str) -> Option<Arc<Policy>>,
    ) -> Self {
        let hashes = keys.iter().map(|k| k.all_hashes().count()).sum();
        let mut by_digest = HashMap::with_capacity_and_hasher(hashes, BuildDigestHasher);
        let mut shared_lists: HashMap<Vec<u32>, Arc<[u32]>> = HashMap::new();
        let mut shared_policies: HashMap<&[String], Arc<[Arc<Policy>]>> = HashMap::new();
        let time = |t: Option<&str>| t.and_then(|t| parse_rfc3339(t).ok());
        for config in keys {
            let allowed = match &config.models {
                None => Allowed::All,
                Some(models) if models.iter().any(|m| m == "*") => Allowed::All,
                Some(models) => {
                    let mut indices: Vec<u32> = models
                        .iter()
                        .filter_map(|m| route_index(m))
                        .filter_map(|i| u32::try_from(i).ok())
                        .collect();
                    indices.sort_unstable();
                    indices.dedup();
                    let list = shared_lists
                        .entry(indices)
                        .or_insert_with_key(|indices| Arc::from(indices.as_slice()));
                    Allowed::Routes(list.clone())
                }
            };
            let policies = match &config.budget {
                None => shared_policies
                    .entry(config.policies.as_slice())
                    .or_insert_with(|| config.policies.iter().filter_map(|name| policy(name)).collect())
                    .clone(),
                Some(budget) => {
                    let own = Arc::new(Policy::key_budget(budget));
                    config.policies.iter().filter_map(|name| policy(name)).chain([own]).collect()
                }
            };
            let key = Arc::new(Key {
                id: Arc::from(config.id.as_str()),
                team: config.team().map(Arc::from),
                policies,
                allowed,
                disabled: config.disabled,
                expires_at: time(config.expires_at.as_deref()),
            });
            for (hash, not_before, expires_at) in config.all_hashes() {
                let Ok(digest) = hash.digest() else { continue };
                let credential = Credential {
                    key: key.clone(),
                    digest,
                    not_before: time(not_before),
                    expires_at: time(expires_at),
                };
                by_digest.insert(digest, credential);
            }
        }
        KeyTable { by_digest, keys: keys.len() }
    }

    /// Every key's id.
    pub fn ids(&self) -> std::collections::HashSet<&str> {
        self.by_digest.values().map(|credential| &*credential.key.id).collect()
    }

    /// How many keys (not hashes) the table holds.
    pub fn len(&self) -> usize {
        self.keys
    }

    pub fn is_empty(&self) -> bool {
        self.keys == 0
    }

    /// Finds the caller's key from `Authorization: Bearer` or `x-api-key`.
    pub fn authenticate(&self, headers: &HeaderMap, now_unix: i64) -> Result<&Key, GatewayError> {
        let presented = presented_key(headers).ok_or(GatewayError::MissingKey)?;
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let credential = self.by_digest.get(&digest).ok_or(GatewayError::InvalidKey)?;
        if !bool::from(credential.digest.ct_eq(&digest)) {
            return Err(GatewayError::InvalidKey);
        }
        // A hash before its window is not a key yet: as good as unknown.
        if credential.not_before.is_some_and(|at| now_unix < at) {
            return Err(GatewayError::InvalidKey);
        }
        let key = &*credential.key;
        if key.disabled {
            return Err(GatewayError::KeyDisabled);
        }
        let expired = |at: Option<i64>| at.is_some_and(|at| now_unix >= at);
        if expired(key.expires_at) || expired(credential.expires_at) {
            return Err(GatewayError::KeyExpired);
        }
        Ok(key)
    }
}

/// The key bytes a client sent, if any: `Authorization: Bearer <key>` (OpenAI's SDKs) or
/// `x-api-key: <key>` (Anthropic's). A bearer token wins when both are present; another
/// `Authorization` scheme is ignored rather than taken for a key.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|value| {
        let bytes = value.as_bytes();
        let scheme = bytes.get(..7)?;
        scheme.eq_ignore_ascii_case(b"bearer ").then(|| bytes[7..].trim_ascii())
    });
    let token = bearer
        .filter(|token| !token.is_empty())
        .or_else(|| headers.get("x-api-key").map(|value| value.as_bytes().trim_ascii()))?;
    (!token.is_empty()).then_some(token)
}

/// SHA-256 of a key in the config's `sha256:<hex>` form (used by `switchboard-gateway hash-key`).
pub fn hash_key(key: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    switchboard_config::hash_key(&digest).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_config::{KeyHash, KeyHashConfig};

    fn key(id: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            id: id.into(),
            labels: Default::default(),
            hash: Some(KeyHash(hash_key(secret))),
            hashes: Vec::new(),
            models: None,
            disabled: false,
            expires_at: None,
            policies: Vec::new(),
            budget: None,
            source: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn accepts_bearer_and_x_api_key() {
        let table = KeyTable::compile(&[key("a", "sk-a")], &|_| None, &|_| None);
        assert_eq!(&*table.authenticate(&headers(&[("authorization", "Bearer sk-a")]), 0).unwrap().id, "a");
        assert_eq!(&*table.authenticate(&headers(&[("authorization", "bearer  sk-a ")]), 0).unwrap().id, "a");
        assert_eq!(&*table.authenticate(&headers(&[("x-api-key", "sk-a")]), 0).unwrap().id, "a");
    }

    #[test]
    fn refuses_missing_unknown_disabled_and_expired_keys() {
        let mut disabled = key("d", "sk-d");
        disabled.disabled = true;
        let mut expired = key("e", "sk-e");
        expired.expires_at = Some("2026-01-01T00:00:00Z".into());
        let table = KeyTable::compile(&[key("a", "sk-a"), disabled, expired], &|_| None, &|_| None);
        let now = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        let auth =
            |pairs: &[(&'static str, &str)]| table.authenticate(&headers(pairs), now).map(|k| k.id.clone());
        assert!(matches!(auth(&[]), Err(GatewayError::MissingKey)));
        assert!(matches!(auth(&[("authorization", "Basic sk-a")]), Err(GatewayError::MissingKey)));
        let both = [("authorization", "Basic dXNlcg=="), ("x-api-key", "sk-a")];
        assert!(auth(&both).is_ok(), "another scheme does not hide x-api-key");
        assert!(matches!(auth(&[("authorization", "Bearer sk-b")]), Err(GatewayError::InvalidKey)));
        assert!(matches!(auth(&[("authorization", "Bearer sk-d")]), Err(GatewayError::KeyDisabled)));
        assert!(matches!(auth(&[("authorization", "Bearer sk-e")]), Err(GatewayError::KeyExpired)));
        let before = parse_rfc3339("2025-06-01T00:00:00Z").unwrap();
        assert!(table.authenticate(&headers(&[("authorization", "Bearer sk-e")]), before).is_ok());
    }

    #[test]
    fn model_allow_lists_compile_to_route_indices() {
        let mut limited = key("l", "sk-l");
        limited.models = Some(vec!["b".into()]);
        let index = |m: &str| ["a", "b"].iter().position(|r| *r == m);
        let table = KeyTable::compile(&[limited], &index, &|_| None);
        let key = table.authenticate(&headers(&[("x-api-key", "sk-l")]), 0).unwrap();
        assert!(!key.may_use(0) && key.may_use(1));
    }

    #[test]
    fn a_rotation_accepts_both_hashes_each_within_its_window() {
        let mut rotated = key("team", "sk-new");
        rotated.hash = None;
        rotated.hashes = vec![
            KeyHashConfig { hash: KeyHash(hash_key("sk-new")), not_before: None, expires_at: None },
            KeyHashConfig {
                hash: KeyHash(hash_key("sk-old")),
                not_before: None,
                expires_at: Some("2026-06-01T00:00:00Z".into()),
            },
            KeyHashConfig {
                hash: KeyHash(hash_key("sk-next")),
                not_before: Some("2026-07-01T00:00:00Z".into()),
                expires_at: None,
            },
        ];
        let table = KeyTable::compile(&[rotated], &|_| None, &|_| None);
        assert_eq!(table.len(), 1);
        let at = |key: &str, time: &str| {
            let now = parse_rfc3339(time).unwrap();
            table.authenticate(&headers(&[("x-api-key", key)]), now).map(|k| k.id.to_string())
        };
        assert_eq!(at("sk-old", "2026-05-31T23:59:59Z").unwrap(), "team");
        assert!(matches!(at("sk-old", "2026-06-01T00:00:00Z"), Err(GatewayError::KeyExpired)));
        assert_eq!(at("sk-new", "2026-06-01T00:00:00Z").unwrap(), "team");
        assert!(matches!(at("sk-next", "2026-06-30T00:00:00Z"), Err(GatewayError::InvalidKey)));
        assert_eq!(at("sk-next", "2026-07-01T00:00:00Z").unwrap(), "team");
    }

    #[test]
    fn keys_with_the_same_models_share_one_list() {
        let mut keys = Vec::new();
        for i in 0..100 {
            let mut k = key(&format!("k{i}"), &format!("sk-{i}"));
            k.models = Some(vec!["b".into(), "a".into(), "gone".into()]);
            keys.push(k);
        }
        let index = |m: &str| ["a", "b"].iter().position(|r| *r == m);
        let table = KeyTable::compile(&keys, &index, &|_| None);
        let lists: Vec<Arc<[u32]>> = table
            .by_digest
            .values()
            .map(|c| match &c.key.allowed {
                Allowed::Routes(list) => list.clone(),
                Allowed::All => Arc::from(Vec::new()),
            })
            .collect();
        assert_eq!(&*lists[0], &[0, 1], "sorted, and the model without a route allows nothing");
        assert!(lists.iter().all(|l| Arc::ptr_eq(l, &lists[0])));
    }

    #[test]
    fn debug_output_names_the_key_only() {
        let table = KeyTable::compile(&[key("team-a", "sk-secret")], &|_| None, &|_| None);
        let key = table.authenticate(&headers(&[("x-api-key", "sk-secret")]), 0).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("team-a") && !shown.contains("sk-secret"), "{shown}");
    }
}
