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

/// Written as a map with exactly one field: `{ key: team-a }` or `{ route: gpt-4o }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ScopeFields", into = "ScopeFields")]
pub enum LimitScope {
    /// The name of a key in `keys`.
    Key(String),
    /// The public model name of a route in `routes`.
    Route(String),
}

/// The YAML/JSON shape of [`LimitScope`]. YAML libraries want enums as `!tags`; a one-field map
/// is what people write and what a CRD schema can express.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    route: Option<String>,
}

impl TryFrom<ScopeFields> for LimitScope {
    type Error = &'static str;

    fn try_from(fields: ScopeFields) -> Result<Self, Self::Error> {
        match (fields.key, fields.route) {
            (Some(key), None) => Ok(LimitScope::Key(key)),
            (None, Some(route)) => Ok(LimitScope::Route(route)),
            _ => Err("set exactly one of `key` or `route`"),
        }
    }
}

impl From<LimitScope> for ScopeFields {
    fn from(scope: LimitScope) -> Self {
        match scope {
            LimitScope::Key(key) => ScopeFields { key: Some(key), route: None },
            LimitScope::Route(route) => ScopeFields { key: None, route: Some(route) },
        }
    }
}
