//! `VirtualKey`: a key callers present to the gateway instead of a provider's key.
//!
//! The key itself only ever lives in a Secret. The operator hashes it into the contract's
//! `KeyConfig` (the gateways only see SHA-256 hashes) and publishes a non-secret `keyId` in the
//! status, which is what logs, metrics and error messages show.

use crate::common::{LocalObjectRef, MODEL_NAME_PATTERN, OBJECT_NAME_PATTERN, SECRET_KEY_PATTERN};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A key callers send as "Authorization: Bearer <key>": which models it may use, until when, and
/// which rate limits apply. The key is read from (or generated into) a Secret.
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
    doc = "VirtualKey is a gateway API key kept in a Secret, with its model allow-list, expiry and rate limits.",
    printcolumn(name = "Key ID", type_ = "string", json_path = ".status.keyId"),
    printcolumn(name = "Team", type_ = "string", json_path = ".spec.team"),
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

/// What the operator observed about a VirtualKey.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VirtualKeyStatus {
    /// The public, non-secret id of the key: what the gateway's logs, metrics and error
    /// messages show. Never the key, nor enough of it to guess it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub key_id: Option<String>,

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
