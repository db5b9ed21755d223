//! Virtual keys: what callers present instead of a provider's key. Only hashes live in config.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A virtual key as the config knows it: a name for logs and metrics, the SHA-256 of the secret,
/// and what it may do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A non-secret label (e.g. the team), used in logs and limits.
    pub name: String,
    /// `sha256:` followed by 64 lowercase hex digits of the SHA-256 of the key.
    pub hash: KeyHash,
    /// Public model names this key may use; omitted means every model.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// A disabled key is refused with 401, as if unknown to the caller, but says why in the log.
    #[serde(default)]
    pub disabled: bool,
    /// RFC 3339 instant after which the key is refused.
    #[serde(default)]
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
