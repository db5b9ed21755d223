//! `ModelRoute`: a public model name and the backends that serve it.
//!
//! Compiled by the operator into the contract's `RouteConfig`: backends of the lowest priority
//! share traffic by weight; higher priorities are fallback tiers, tried in order when every
//! backend of the tier before has failed.

use crate::common::{LocalObjectRef, MODEL_NAME_PATTERN, USD_MAX_LENGTH, USD_PATTERN};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A public model name callers put in a request's "model" field, and the backends (LLMProviders in
/// the same namespace, each with an upstream model id) that serve it, with weights and fallbacks.
#[expect(clippy::duplicated_attributes, reason = "every printcolumn(...) repeats type_ = \"string\"")]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "ModelRoute",
    plural = "modelroutes",
    shortname = "mr",
    category = "switchboard",
    namespaced,
    status = "ModelRouteStatus",
    doc = "ModelRoute maps a public model name to weighted backends with fallback tiers.",
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model"),
    printcolumn(name = "Providers", type_ = "string", json_path = ".spec.backends[*].providerRef.name"),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Accepted")].status"#
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Programmed")].status"#
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    // An omitted backend model means the public name, so compare the effective ids.
    validation = Rule::new(
        "self.backends.all(b, self.backends.exists_one(c, c.providerRef.name == b.providerRef.name \
         && (has(c.model) ? c.model : self.model) == (has(b.model) ? b.model : self.model)))"
    )
    .message("each backend must be a different pair of providerRef and model")
    .field_path(".backends")
)]
pub struct ModelRouteSpec {
    /// The public model name: what callers put in the request's "model" field and what
    /// GET /v1/models lists. 1 to 253 characters without spaces or control characters. One
    /// ModelRoute per name across the gateway; a second one is refused with reason Conflict.
    /// Example: gpt-4o
    #[schemars(length(min = 1, max = 253), pattern(MODEL_NAME_PATTERN))]
    pub model: String,

    /// Where requests for this model go. Backends with the lowest priority share the traffic by
    /// weight; when all of them fail (connection error, timeout, 5xx, 429), the next priority is
    /// tried. 1 to 64 backends.
    #[schemars(length(min = 1, max = 64))]
    pub backends: Vec<Backend>,

    /// RateLimitPolicies in the same namespace that apply to every request on this route. At most
    /// 16, each named once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("must not name a policy twice"))]
    pub policy_refs: Vec<LocalObjectRef>,

    /// max_tokens for backends that require one (Anthropic) when the request sets none;
    /// overrides the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub default_max_tokens: Option<i32>,

    /// How a backend is picked among those of the same priority: Weighted (default; by weight,
    /// in a smooth round-robin) or Latency (the faster of two picked at random, by a
    /// peak-sensitive average of each backend's time to answer, or to the first event of a
    /// stream, times its requests in flight; weights are ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancing: Option<Balancing>,

    /// Retries of attempts that failed for the backend's sake (connection error, timeout, 429,
    /// 5xx, 529; never another 4xx, never after a stream's first event reached the client), each
    /// to the next backend. Omitted: 3 attempts (or one per backend when there are more), with
    /// retries at most 20% of requests plus 1 per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Retries>,

    /// Time limits for this route's requests. They tighten the providers' timeoutMs (the
    /// shorter applies); totalMs bounds the whole request, retries and stream included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// How backends of one priority share traffic.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum Balancing {
    /// By weight, in a smooth round-robin order.
    #[default]
    Weighted,
    /// The faster of two random picks (power of two choices over a latency average).
    Latency,
}

/// When failed attempts are retried, and how often.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Attempts per request, the first included, 1 to 10 (1: no retries). Default: 3, or the
    /// number of backends when there are more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: Option<i32>,
    /// Retries as a share of the route's requests over the last 10 seconds, 0 to 100 percent.
    /// Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub budget_percent: Option<i32>,
    /// Retries always allowed per second, whatever the share, 0 to 1000. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub min_per_second: Option<i32>,
}

/// A route's time limits, each in milliseconds from 1 to 86400000 (a day).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// Until an attempt has answered (a stream: its first event); past it the next backend is
    /// tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub first_byte_ms: Option<i64>,
    /// The longest silence between two events of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub idle_ms: Option<i64>,
    /// The whole request, retries and a stream's last event included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86_400_000))]
    pub total_ms: Option<i64>,
}

/// One upstream for a route: a provider and the model id it knows.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// The LLMProvider to send requests to, in the same namespace (cross-namespace references are
    /// not supported in v1alpha1).
    pub provider_ref: LocalObjectRef,

    /// The model id sent upstream, when it differs from the public name. Default: the route's
    /// model. Example: gpt-4o-2024-08-06, or meta-llama/Llama-3.1-8B-Instruct for vLLM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(MODEL_NAME_PATTERN))]
    pub model: Option<String>,

    /// Share of traffic among the backends of the same priority, 1 to 10000. Default 1. Example:
    /// weights 9 and 1 send about 90% and 10%.
    #[serde(default = "default_weight")]
    #[schemars(range(min = 1, max = 10000))]
    pub weight: i32,

    /// Fallback tier, 0 to 100; lower is tried first. Default 0. Backends with priority 1 only get
    /// requests that every priority-0 backend failed.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub priority: i32,

    /// What this backend's model can do, where it is less than its provider type can (a vLLM
    /// model without tool parsing, a text-only model, a smaller context window). Omitted fields
    /// keep the provider type's value. A request that needs what a backend lacks skips it; when no
    /// backend of the route can serve it, the caller gets a 400 naming the capability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<BackendCapabilities>,

    /// What this backend's tokens cost, in US dollars per million tokens: the basis of cost
    /// metrics, RateLimitPolicy usd, dailyUsd and monthlyUsd limits, and VirtualKey budgets.
    /// Omitted: requests on this backend cost nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
}

/// Prices in US dollars per million tokens, each a decimal string with at most 6 decimals (exact,
/// unlike a float); "0" is a price (a free model). An unset input or output price is 0; cached
/// prompt tokens are charged at cacheRead and cacheWrite when set, else at input.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Price {
    /// US dollars per million prompt tokens (those not read from or written to a cache).
    /// Example: "2.50"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    pub input: Option<String>,
    /// US dollars per million generated tokens, reasoning tokens included. Example: "10.00"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    pub output: Option<String>,
    /// US dollars per million prompt tokens read from the provider's prompt cache. Default: the
    /// input price. Example: "1.25"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    pub cache_read: Option<String>,
    /// US dollars per million prompt tokens written to the provider's prompt cache. Default: the
    /// input price. Example: "3.75"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    pub cache_write: Option<String>,
}

/// A model's capabilities, each left out to keep the provider type's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendCapabilities {
    /// Streamed answers (stream: true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<bool>,
    /// Tool (function) calling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<bool>,
    /// Images in the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision: Option<bool>,
    /// response_format json_object and json_schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_mode: Option<bool>,
    /// The /v1/embeddings API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings: Option<bool>,
    /// The context window in tokens, 1 to 100000000. A request whose prompt (estimated from below)
    /// plus max_tokens cannot fit is refused with 400 instead of being sent. Example: 8192.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100_000_000))]
    pub context_length: Option<i32>,
}

fn default_weight() -> i32 {
    1
}

/// What the operator observed about a ModelRoute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelRouteStatus {
    /// Accepted, ResolvedRefs and Programmed, with a reason and message each (see docs/crds.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation the status was computed from; older than metadata.generation while
    /// the operator has not yet seen the latest spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
