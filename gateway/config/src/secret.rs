//! Secret values carried by a pushed snapshot.
//!
//! The operator resolves Kubernetes Secrets and sends their values in one section of the snapshot,
//! referenced by name from credentials (`api_key: { secret: openai-key }`). Keeping them apart
//! means every other part of a snapshot can be logged, diffed and shown; this section is never
//! shown by `Debug`, and its values are trimmed (a Secret created with `echo` ends in a newline).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Secret values by name. Sorted, so a snapshot serializes the same way every time.
pub type Secrets = BTreeMap<String, SecretValue>;

/// A credential's value. `Debug` and `Display` never print it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a value, trimming surrounding whitespace.
    pub fn new(value: &str) -> Self {
        SecretValue(value.trim().to_owned())
    }

    /// The value itself, for the one place that puts it on the wire (a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(SecretValue::new(&value))
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}
