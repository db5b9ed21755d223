//! Provenance: which Kubernetes object an entry of a snapshot was compiled from.
//!
//! A hand-written file has none. The operator stamps every entry it emits, so a replica that
//! refuses an entry can say which object to fix, and the operator can put that reason on the
//! object's status.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The object an entry came from: enough to find it (`kubectl get <kind> -n <ns> <name>`) and to
/// tell whether a verdict is about its current generation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// `LLMProvider`, `ModelRoute`, `VirtualKey` or `RateLimitPolicy`.
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `metadata.generation` of the object when it was compiled.
    #[serde(default)]
    pub generation: i64,
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}
