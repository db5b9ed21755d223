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
    /// How a backend is picked among those of the same priority.
    #[serde(default, skip_serializing_if = "Balancing::is_default")]
    pub balancing: Balancing,
    /// When a failed attempt is tried again on another backend, and how often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryConfig>,
    /// Time limits for this route's requests, overriding its providers' `timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<RouteTimeouts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ObjectRef>,
}

/// How traffic is shared among the backends of one priority tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Balancing {
    /// In proportion to `weight`, in a smooth round-robin order.
    #[default]
    Weighted,
    /// The faster of two backends picked at random ("power of two choices"), by a peak-sensitive
    /// moving average of each backend's time to answer (to the first token, for streams) times
    /// its attempts in flight. Weights are ignored.
    Latency,
}

impl Balancing {
    fn is_default(&self) -> bool {
        *self == Balancing::Weighted
    }
}

/// Retries of failed attempts: connection errors, timeouts, 429, 5xx and 529 (never another 4xx,
/// never after the first byte of an answer reached the client). A retry goes to the next backend
/// in the route's order, back to the first when the route has fewer backends than attempts.
///
/// The budget keeps a total outage from multiplying load: over the last 10 seconds, retries may
/// be at most `budget_percent` of the route's requests plus `min_per_second` per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first included (1: no retries). Default: 3, or the number of
    /// backends when the route has more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Retries as a share of requests, in percent.
    #[serde(default = "default_budget_percent")]
    pub budget_percent: u32,
    /// Retries always allowed per second, whatever the share.
    #[serde(default = "default_min_retries_per_second")]
    pub min_per_second: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: None,
            budget_percent: default_budget_percent(),
            min_per_second: default_min_retries_per_second(),
        }
    }
}

fn default_budget_percent() -> u32 {
    20
}

fn default_min_retries_per_second() -> u32 {
    1
}

/// A route's time limits. They tighten its providers' own (`timeout_ms`, which bounds connecting,
/// the answer and the silence in a stream): where both apply, the shorter one does. Left out, the
/// provider's applies, and the total is bounded only by the gateway's `--request-deadline-ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTimeouts {
    /// Until an attempt has answered: the complete answer, or a stream's first event. An attempt
    /// that runs out moves on to the next backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_ms: Option<u64>,
    /// The longest silence between two events of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_ms: Option<u64>,
    /// The whole request, retries and a stream's last event included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<u64>,
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
