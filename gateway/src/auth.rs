//! Virtual keys: who is calling, and may they use this model.
//!
//! Keys are held only as SHA-256 digests. A presented key is hashed and looked up; the lookup
//! compares digests, never keys, and the final equality check is constant-time so the response
//! time says nothing about how close a guess was. Keys are never logged: [`Key`] carries a name.

use crate::error::GatewayError;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use switchboard_config::{KeyConfig, parse_rfc3339};

/// Which routes a key may use, by route index in the table.
#[derive(Debug)]
pub enum Allowed {
    All,
    Routes(Box<[bool]>),
}

/// A compiled virtual key.
pub struct Key {
    pub name: Arc<str>,
    digest: [u8; 32],
    allowed: Allowed,
    disabled: bool,
    expires_at: Option<i64>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Key {
    pub fn may_use(&self, route_index: usize) -> bool {
        match &self.allowed {
            Allowed::All => true,
            Allowed::Routes(allowed) => allowed.get(route_index).copied().unwrap_or(false),
        }
    }
}

/// Every key of one config, by digest.
#[derive(Default)]
pub struct KeyTable {
    by_digest: HashMap<[u8; 32], Key, BuildDigestHasher>,
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
    /// Builds the table. `route_index` maps a public model name to its route index; the config was
    /// validated, so every name and hash resolves (anything else is skipped defensively).
    pub fn compile(keys: &[KeyConfig], route_index: &dyn Fn(&str) -> Option<usize>, routes: usize) -> Self {
        let mut by_digest = HashMap::with_capacity_and_hasher(keys.len(), BuildDigestHasher);
        for key in keys {
            let Ok(digest) = key.hash.digest() else { continue };
            let allowed = match &key.models {
                None => Allowed::All,
                Some(models) if models.iter().any(|m| m == "*") => Allowed::All,
                Some(models) => {
                    let mut allowed = vec![false; routes];
                    for index in models.iter().filter_map(|m| route_index(m)) {
                        allowed[index] = true;
                    }
                    Allowed::Routes(allowed.into_boxed_slice())
                }
            };
            let expires_at = key.expires_at.as_deref().and_then(|t| parse_rfc3339(t).ok());
            by_digest.insert(
                digest,
                Key {
                    name: Arc::from(key.name.as_str()),
                    digest,
                    allowed,
                    disabled: key.disabled,
                    expires_at,
                },
            );
        }
        KeyTable { by_digest }
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Finds the caller's key from `Authorization: Bearer` or `x-api-key`.
    pub fn authenticate(&self, headers: &HeaderMap, now_unix: i64) -> Result<&Key, GatewayError> {
        let presented = presented_key(headers).ok_or(GatewayError::MissingKey)?;
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let key = self.by_digest.get(&digest).ok_or(GatewayError::InvalidKey)?;
        if !bool::from(key.digest.ct_eq(&digest)) {
            return Err(GatewayError::InvalidKey);
        }
        if key.disabled {
            return Err(GatewayError::KeyDisabled);
        }
        if key.expires_at.is_some_and(|at| now_unix >= at) {
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
    use switchboard_config::KeyHash;

    fn key(name: &str, secret: &str) -> KeyConfig {
        KeyConfig {
            name: name.into(),
            hash: KeyHash(hash_key(secret)),
            models: None,
            disabled: false,
            expires_at: None,
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
        let table = KeyTable::compile(&[key("a", "sk-a")], &|_| None, 0);
        assert_eq!(&*table.authenticate(&headers(&[("authorization", "Bearer sk-a")]), 0).unwrap().name, "a");
        assert_eq!(
            &*table.authenticate(&headers(&[("authorization", "bearer  sk-a ")]), 0).unwrap().name,
            "a"
        );
        assert_eq!(&*table.authenticate(&headers(&[("x-api-key", "sk-a")]), 0).unwrap().name, "a");
    }

    #[test]
    fn refuses_missing_unknown_disabled_and_expired_keys() {
        let mut disabled = key("d", "sk-d");
        disabled.disabled = true;
        let mut expired = key("e", "sk-e");
        expired.expires_at = Some("2026-01-01T00:00:00Z".into());
        let table = KeyTable::compile(&[key("a", "sk-a"), disabled, expired], &|_| None, 0);
        let now = parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
        let auth =
            |pairs: &[(&'static str, &str)]| table.authenticate(&headers(pairs), now).map(|k| k.name.clone());
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
        let table = KeyTable::compile(&[limited], &index, 2);
        let key = table.authenticate(&headers(&[("x-api-key", "sk-l")]), 0).unwrap();
        assert!(!key.may_use(0) && key.may_use(1));
    }

    #[test]
    fn debug_output_names_the_key_only() {
        let table = KeyTable::compile(&[key("team-a", "sk-secret")], &|_| None, 0);
        let key = table.authenticate(&headers(&[("x-api-key", "sk-secret")]), 0).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("team-a") && !shown.contains("sk-secret"), "{shown}");
    }
}
