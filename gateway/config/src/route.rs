//! Routes: a public model name and the backends that serve it.

use crate::ObjectRef;
use serde::{Deserialize, Serialize};

/// A public model name callers use, mapped to one or more backends.
///
/// Backends with the lowest `priority` are tried first and share traffic by `weight`; higher
/// priorities are fallbacks, tried in order when every backend before them failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The name callers put in the request's `model` field.
    pub model: String,
    pub backends: Vec<BackendConfig>,
    /// Names of entries in `policies` that apply to every request on this route.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// `max_tokens` for backends that require one (Anthropic) when the client sent none;
    /// overrides the provider's `default_max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Name of a provider in `providers`.
    pub provider: String,
    /// The model id sent upstream; defaults to the route's public name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Share of traffic among backends of the same priority.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Lower is preferred; higher priorities are fallbacks.
    #[serde(default)]
    pub priority: u32,
}

fn default_weight() -> u32 {
    1
}
