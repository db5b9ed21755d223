//! Virtual keys: what callers present instead of a provider's key. Only hashes live in config.

use crate::{BudgetConfig, ObjectRef};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A virtual key as the config knows it: a public id for logs and metrics, the SHA-256 of the
/// secret (several during a rotation), and what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A public, non-secret id (e.g. the team): what logs, metrics, errors and statuses show.
    /// Version 1 files call it `name`.
    #[serde(alias = "name")]
    pub id: String,
    /// Free-form labels such as `team` and `owner`, for people reading statuses and logs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Shorthand for a key with one hash and no validity window: `sha256:` and 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<KeyHash>,
    /// Every hash that authenticates as this key, each valid within its own window: a rotation
    /// lists the new key and the old one until its `expires_at`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<KeyHashConfig>,
    /// Public model names this key may use; omitted means every model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    /// A disabled key is refused with 401, as if unknown to the caller, but says why in the log.
    #[serde(default)]
    pub disabled: bool,
    /// RFC 3339 instant after which the key (every hash of it) is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Names of entries in `policies` that apply to this key's requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// The key's own spend limit per UTC day and month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

impl KeyConfig {
    /// The label that names the key's team: team-scoped policies charge one counter per team.
    pub const TEAM_LABEL: &'static str = "team";

    pub fn team(&self) -> Option<&str> {
        self.labels.get(Self::TEAM_LABEL).map(String::as_str)
    }

    /// Every hash of the key with its validity window, the `hash` shorthand included.
    pub fn all_hashes(&self) -> impl Iterator<Item = (&KeyHash, Option<&str>, Option<&str>)> {
        let shorthand = self.hash.iter().map(|hash| (hash, None, None));
        shorthand
            .chain(self.hashes.iter().map(|h| (&h.hash, h.not_before.as_deref(), h.expires_at.as_deref())))
    }
}

/// One hash of a key and when it is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHashConfig {
    pub hash: KeyHash,
    /// RFC 3339 instant before which this hash is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// RFC 3339 instant from which this hash is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The `sha256:<hex>` text form of a key hash. Parsed into bytes by the validator.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyHash(pub String);

impl KeyHash {
    pub const PREFIX: &'static str = "sha256:";

    /// The 32 digest bytes, or why the text is not a hash.
    pub fn digest(&self) -> Result<[u8; 32], String> {
        let hex = self.0.strip_prefix(Self::PREFIX).ok_or_else(|| {
            format!("must start with \"{}\" (store the hash of a key, never the key)", Self::PREFIX)
        })?;
        if hex.len() != 64 {
            return Err(format!("expected 64 hex digits after \"sha256:\", found {}", hex.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]);
            let lo = hex_value(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
                _ => return Err("contains a character that is not a hex digit".to_owned()),
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A hash is not the key, but there is no reason to spread it around either.
        f.write_str("KeyHash(..)")
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Formats a 32-byte digest in the config's `sha256:<hex>` form. The hashing itself lives in the
/// gateway (it owns the crypto dependency); this keeps the text form in one place.
pub fn hash_key(digest: &[u8; 32]) -> KeyHash {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(KeyHash::PREFIX.len() + 64);
    text.push_str(KeyHash::PREFIX);
    for byte in digest {
        text.push(HEX[usize::from(byte >> 4)] as char);
        text.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    KeyHash(text)
}
