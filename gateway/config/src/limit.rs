//! Rate limits: how many requests and tokens a key or a route may use per window.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// A label for metrics and error messages.
    pub name: String,
    /// What the limit counts: one key, or one route (summed over every key).
    pub scope: LimitScope,
    /// Window length in seconds (fixed windows aligned to the Unix epoch).
    pub window_seconds: u64,
    /// Maximum requests per window.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Maximum tokens (prompt + completion, as reported by the upstream) per window.
    #[serde(default)]
    pub tokens: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum LimitScope {
    /// The name of a key in `keys`.
    Key(String),
    /// The public model name of a route in `routes`.
    Route(String),
}
