//! `VirtualKey`: a key callers present to the gateway instead of a provider's key.
//!
//! The key itself only ever lives in a Secret. The operator hashes it into the contract's
//! `KeyConfig` (the gateways only see SHA-256 hashes) and publishes a non-secret `keyId` in the
//! status, which is what logs, metrics and error messages show.

use crate::common::{
    LocalObjectRef, MODEL_NAME_PATTERN, OBJECT_NAME_PATTERN, POSITIVE_USD_RULE, SECRET_KEY_PATTERN,
    USD_MAX_LENGTH, USD_PATTERN,
};
use crate::rate_limit_policy::{FailureMode, Mode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A key callers send as "Authorization: Bearer <key>": which models it may use, until when,
/// which rate limits apply and how much it may spend. The key is read from (or generated into) a Secret.
#[expect(clippy::duplicated_attributes, reason = "every printcolumn(...) repeats type_ = \"string\"")]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "VirtualKey",
    plural = "virtualkeys",
    shortname = "vk",
    category = "switchboard",
    namespaced,
    status = "VirtualKeyStatus",
    doc = "VirtualKey is a gateway API key kept in a Secret, with its model allow-list, expiry, rate limits and budget.",
    printcolumn(name = "Key ID", type_ = "string", json_path = ".status.keyId"),
    printcolumn(name = "Team", type_ = "string", json_path = ".spec.team"),
    printcolumn(name = "Daily Budget", type_ = "string", json_path = ".spec.budget.dailyUsd"),
    printcolumn(name = "Spent Today", type_ = "string", json_path = ".status.spend.today"),
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
    // `string`, not `date`: kubectl shows a date column as an age, and a future time as <invalid>.
    printcolumn(name = "Expires", type_ = "string", json_path = ".spec.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new(
        "!has(self.rotation) || self.rotation.previousSecretRef.name != self.secretRef.name \
         || self.rotation.previousSecretRef.key != self.secretRef.key"
    )
    .message("must name a different Secret key than secretRef (the previous key, not the current one)")
    .field_path(".rotation.previousSecretRef")
)]
pub struct VirtualKeySpec {
    /// The Secret key that holds the virtual key, in the same namespace. If the Secret does not
    /// exist, the operator generates a strong random key into it (owned by this VirtualKey, so it
    /// is deleted with it); hand that Secret's value to the caller.
    pub secret_ref: KeySecretRef,

    /// Public model names (ModelRoute spec.model) this key may use. Omitted: every model. At most
    /// 256, each listed once. Example: [gpt-4o, gpt-4o-mini]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253), pattern(MODEL_NAME_PATTERN)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub models: Option<Vec<String>>,

    /// When the key stops working (RFC 3339). Omitted: never. Example: 2027-01-01T00:00:00Z
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,

    /// Refuse the key (401, as if unknown to the caller; the gateway log says why) without
    /// deleting it. Default false.
    #[serde(default)]
    pub disabled: bool,

    /// A key rotation in progress: the previous key keeps working until validUntil, so callers
    /// can switch to the new key (in secretRef) without downtime. Remove it once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,

    /// The team that owns the key, shown in `kubectl get` and attached to logs and metrics.
    /// A label value: up to 63 letters, digits, '-', '_' or '.'. Example: search-team
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(LABEL_VALUE_PATTERN))]
    pub team: Option<String>,

    /// Who to ask about the key: a person, an email address or a service. Up to 128 characters,
    /// no control characters. Example: alice@example.com
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128), pattern(r"^[^\p{Cc}]+$"))]
    pub owner: Option<String>,

    /// RateLimitPolicies in the same namespace that apply to this key's requests. At most 16,
    /// each named once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(validation = Rule::new("self.all(p, self.exists_one(q, q.name == p.name))").message("must not name a policy twice"))]
    pub policy_refs: Vec<LocalObjectRef>,

    /// The key's own spend limit in US dollars per UTC calendar day and month, priced with the
    /// route backends' price. A request is refused (429) once the day's or the month's spend has
    /// reached it; a request already admitted finishes, so spend can end slightly above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
}

/// A VirtualKey's spend limit per UTC day and month; at least one of the two is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.dailyUsd) || has(self.monthlyUsd)")
        .message("set dailyUsd, monthlyUsd or both")
)]
pub struct Budget {
    /// US dollars per UTC calendar day (starts over at 00:00 UTC), as a decimal string with at
    /// most 6 decimals, greater than 0. Example: "5.00"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    #[x_kube(validation = Rule::new(POSITIVE_USD_RULE).message("must be greater than 0"))]
    pub daily_usd: Option<String>,

    /// US dollars per UTC calendar month (starts over on the 1st at 00:00 UTC), as a decimal
    /// string with at most 6 decimals, greater than 0. Example: "100"
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = USD_MAX_LENGTH), pattern(USD_PATTERN))]
    #[x_kube(validation = Rule::new(POSITIVE_USD_RULE).message("must be greater than 0"))]
    pub monthly_usd: Option<String>,

    /// Where the spend is counted. Redis (default): once for the whole fleet, so the budget holds
    /// however many gateway replicas serve the key. Local: in each replica, so the key may spend
    /// the budget once per replica.
    #[serde(default = "redis_mode")]
    pub mode: Mode,

    /// What the gateway does when Redis cannot be reached. Open (default): let requests through,
    /// availability first. Closed: refuse them (503), the budget first. No effect with mode Local.
    #[serde(default)]
    pub failure_mode: FailureMode,
}

/// A budget is meant to hold across the fleet, unlike a RateLimitPolicy's per-replica default.
fn redis_mode() -> Mode {
    Mode::Redis
}

/// A Kubernetes label value, non-empty: metric labels and `kubectl get` columns stay readable.
const LABEL_VALUE_PATTERN: &str = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";

/// A key in a Secret in the same namespace, with `key` defaulting to "key".
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeySecretRef {
    /// Name of the Secret, in the same namespace as this VirtualKey. Example: search-team-key
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,

    /// Key within the Secret's data. Default "key".
    #[serde(default = "default_key")]
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub key: String,
}

fn default_key() -> String {
    "key".to_owned()
}

/// The previous key during a rotation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// The Secret key holding the previous key, in the same namespace. It must exist: the
    /// operator never generates a previous key.
    pub previous_secret_ref: KeySecretRef,

    /// Until when the previous key keeps working (RFC 3339). Example: 2026-12-31T00:00:00Z
    pub valid_until: Time,
}

/// A VirtualKey's spend, read from the counters the gateways keep in Redis. Amounts are decimal
/// strings of US dollars and include requests still in flight (a request is charged an estimate when
/// the gateway admits it and corrected to its exact cost when it ends), so they can also move down
/// slightly.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spend {
    /// The UTC day `today` counts. Example: 2026-12-02
    #[schemars(length(max = 10))]
    pub day: String,
    /// US dollars spent on `day`. Example: "0.42"
    #[schemars(length(max = 32))]
    pub today: String,
    /// The UTC month `thisMonth` counts. Example: 2026-12
    #[schemars(length(max = 7))]
    pub month: String,
    /// US dollars spent in `month`. Example: "3.10"
    #[schemars(length(max = 32))]
    pub this_month: String,
}

/// What the operator observed about a VirtualKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualKeyStatus {
    /// The public, non-secret id of the key: what the gateway's logs, metrics and error
    /// messages show. Never the key, nor enough of it to guess it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub key_id: Option<String>,

    /// What the key spent today and this month (UTC), for a key with a budget counted in Redis:
    /// read from the gateways' Redis counters, in US dollars, including requests still in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<Spend>,

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
