//! `RateLimitPolicy`: how much a key, a team, a route or a key on a route may use per window, and
//! how many dollars per UTC calendar day or month.
//!
//! Bound by reference (ModelRoute and VirtualKey `policyRefs`) and compiled by the operator into
//! the contract's `PolicyConfig`. `scope` says whose counter a request charges.

use crate::common::{Duration, POSITIVE_USD_RULE, USD_MAX_LENGTH, USD_PATTERN, duration_rule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// Limits on requests, tokens, concurrent requests or spend per window, and spend budgets per UTC
/// day or month. Applies to the requests of every ModelRoute and VirtualKey in the same namespace
/// that lists it in policyRefs.
#[expect(clippy::duplicated_attributes, reason = "every printcolumn(...) repeats type_ = \"string\"")]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "RateLimitPolicy",
    plural = "ratelimitpolicies",
    shortname = "rlp",
    category = "switchboard",
    namespaced,
    status = "RateLimitPolicyStatus",
    doc = "RateLimitPolicy limits requests, tokens, concurrency or spend per key, per team, per route or per key on a route.",
    printcolumn(name = "Scope", type_ = "string", json_path = ".spec.scope"),
    printcolumn(name = "Window", type_ = "string", json_path = ".spec.window"),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "Daily USD", type_ = "string", json_path = ".spec.limits.dailyUsd"),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Programmed")].status"#
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "has(self.window) || !(has(self.limits.requests) || has(self.limits.inputTokens) \
         || has(self.limits.outputTokens) || has(self.limits.totalTokens) || has(self.limits.usd))"
    )
    .message(
        "window is required for requests, token and usd limits (concurrentRequests, dailyUsd and \
         monthlyUsd need none)"
    )
    .field_path(".window")
)]
pub struct RateLimitPolicySpec {
    /// Whose counter a request charges. Key: one budget per VirtualKey, over every route it uses.
    /// Team: one budget per team (the VirtualKey's spec.team), shared by the team's keys; keys
    /// without a team are not charged. Route: one budget per ModelRoute, shared by all keys.
    /// KeyRoute: one budget per key on each route.
    pub scope: Scope,

    /// Length of the window for requests, token and usd limits; counters start over after each
    /// window. Required when requests, a token limit or usd is set (concurrentRequests, dailyUsd
    /// and monthlyUsd need none). Examples: 1m, 1h, 720h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(duration_rule(">= duration('1s')")).message("must be at least 1s"))]
    pub window: Option<Duration>,

    /// The limits; at least one must be set. A request over any of them is refused with 429.
    pub limits: Limits,

    /// Where counters live. Local (default): in each gateway replica, so the limit holds per
    /// replica. Redis: in Redis, so the limit holds across the fleet.
    #[serde(default)]
    pub mode: Mode,

    /// What a Redis-mode policy does when Redis cannot be reached. Open (default): let requests
    /// through, availability first. Closed: refuse them (503), the limit first. No effect with
    /// mode Local.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// Whose counter a request charges.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum Scope {
    /// One counter per VirtualKey.
    Key,
    /// One counter per team (VirtualKey spec.team); keys without a team are not charged.
    Team,
    /// One counter per ModelRoute, shared by every key.
    Route,
    /// One counter per key on each route.
    KeyRoute,
}

/// Where counters live.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum Mode {
    /// In each replica's memory.
    #[default]
    Local,
    /// In Redis, shared by the fleet.
    Redis,
}

/// What a Redis-mode policy does when Redis is unreachable.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
pub enum FailureMode {
    /// Let requests through.
    #[default]
    Open,
    /// Refuse requests.
    Closed,
}

/// The limits of a policy; unset ones do not limit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "has(self.requests) || has(self.inputTokens) || has(self.outputTokens) \
         || has(self.totalTokens) || has(self.concurrentRequests) || has(self.usd) \
         || has(self.dailyUsd) || has(self.monthlyUsd)"
    )
    .message("set at least one limit")
)]
pub struct Limits {
    /// Requests per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub requests: Option<i64>,

    /// Prompt tokens per window, as reported by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub input_tokens: Option<i64>,

    /// Completion tokens per window, as reported by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub output_tokens: Option<i64>,

    /// Prompt plus completion tokens per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub total_tokens: Option<i64>,

    /// Requests in flight at the same time (streams count until they end). Needs no window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrent_requests: Option<i64>,

    /// Spend per window in US dollars, as a decimal string with at most 6 decimals (exact, unlike
    /// a float), greater than 0. Example: "25.00"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    #[x_kube(validation = Rule::new(POSITIVE_USD_RULE).message("must be greater than 0"))]
    pub usd: Option<String>,

    /// Spend per UTC calendar day in US dollars (a budget: it starts over at 00:00 UTC, and needs
    /// no window), as a decimal string with at most 6 decimals, greater than 0. Example: "50"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    #[x_kube(validation = Rule::new(POSITIVE_USD_RULE).message("must be greater than 0"))]
    pub daily_usd: Option<String>,

    /// Spend per UTC calendar month in US dollars (starts over on the 1st at 00:00 UTC; needs no
    /// window), as a decimal string with at most 6 decimals, greater than 0. Example: "1000.00"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    #[x_kube(validation = Rule::new(POSITIVE_USD_RULE).message("must be greater than 0"))]
    pub monthly_usd: Option<String>,
}

/// What the operator observed about a RateLimitPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitPolicyStatus {
    /// Accepted and Programmed, with a reason and message each (see docs/crds.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation the status was computed from; older than metadata.generation while
    /// the operator has not yet seen the latest spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
