//! New virtual keys for VirtualKeys whose Secret does not exist.
//!
//! The compile only says which Secrets are missing ([`KeySecretToGenerate`]); the controller
//! calls [`new_key`] and creates [`KeySecretToGenerate::to_secret`], then the next compile picks
//! the key up like any other. The Secret is owned by its VirtualKey, so Kubernetes' garbage
//! collector deletes it with the key.

use crate::KeySecretToGenerate;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;
use std::fmt;

/// What generated keys start with: recognisable in a leaked-credential scan, and telling a
/// Switchboard key from a provider's at a glance.
pub const KEY_PREFIX: &str = "sk-sb-";

/// A new virtual key: [`KEY_PREFIX`] and 256 bits from the operating system's generator, in hex.
pub fn new_key() -> Result<NewKey, getrandom::Error> {
    let mut entropy = [0u8; 32];
    getrandom::fill(&mut entropy)?;
    Ok(NewKey::from_entropy(&entropy))
}

/// A generated key. `Debug` does not show it.
pub struct NewKey(String);

impl NewKey {
    pub fn from_entropy(entropy: &[u8; 32]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut key = String::with_capacity(KEY_PREFIX.len() + 64);
        key.push_str(KEY_PREFIX);
        for byte in entropy {
            key.push(char::from(HEX[usize::from(byte >> 4)]));
            key.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        NewKey(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewKey(<redacted>)")
    }
}

impl KeySecretToGenerate {
    /// The Secret holding `key`, owned by the VirtualKey.
    pub fn to_secret(&self, key: &NewKey) -> Secret {
        let owner = OwnerReference {
            api_version: format!("{}/{}", switchboard_crds::GROUP, switchboard_crds::VERSION),
            kind: self.owner.kind.clone(),
            name: self.owner.name.clone(),
            uid: self.owner.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let labels = BTreeMap::from([
            ("app.kubernetes.io/managed-by".to_owned(), "switchboard-operator".to_owned()),
            ("switchboard.dev/virtual-key".to_owned(), self.owner.name.clone()),
        ]);
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                owner_references: Some(vec![owner]),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".to_owned()),
            data: Some(BTreeMap::from([(self.key.clone(), ByteString(key.expose().as_bytes().to_vec()))])),
            ..Secret::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KEY_PREFIX, NewKey, new_key};

    #[test]
    fn keys_are_256_random_bits_in_hex_and_never_shown() {
        let (a, b) = (new_key().unwrap(), new_key().unwrap());
        assert_ne!(a.expose(), b.expose());
        let hex = a.expose().strip_prefix(KEY_PREFIX).unwrap();
        assert!(hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()), "{hex}");
        assert_eq!(format!("{a:?}"), "NewKey(<redacted>)");
        assert_eq!(NewKey::from_entropy(&[0xab; 32]).expose(), format!("{KEY_PREFIX}{}", "ab".repeat(32)));
    }
}
