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
    /// What this backend's model can do, where it is less than its provider type can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilitiesConfig>,
    /// What this backend's tokens cost: the basis of cost metrics, `usd` limits and budgets. A
    /// backend without a price costs nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceConfig>,
}

/// Prices in US dollars per million tokens, as decimal strings with at most 6 decimals
/// (`"2.50"`): exact, unlike floats. Cached prompt tokens are charged at `cache_read` and
/// `cache_write` when set, else at `input`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Per million prompt tokens not read from or written to a cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Per million generated tokens, reasoning included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Per million prompt tokens read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<String>,
    /// Per million prompt tokens written to the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<String>,
}

/// A model's capabilities where they are narrower than its provider type's: a vLLM model served
/// without tool parsing, a text-only model, a smaller context window. A field left out keeps the
/// provider type's value (everything, except what its API lacks, such as embeddings on
/// Anthropic). A request that needs what a backend lacks skips that backend; when no backend of
/// the route can serve it, the caller gets a 400 naming the capability.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilitiesConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Images in the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// `response_format` `json_object` and `json_schema`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_mode: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<bool>,
    /// The context window in tokens: a request whose prompt (estimated from below) plus
    /// `max_tokens` cannot fit is not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
}

fn default_weight() -> u32 {
    1
}
