//! Switchboard's custom resources, group `switchboard.dev`, version `v1alpha1`: the Rust types the
//! operator reads, and the CRD YAML generated from them into `crds/yaml/` by the `crdgen` binary.
//!
//! Doc comments on spec fields are what `kubectl explain` shows, so they are written for the
//! people who write these objects, and `missing_docs` is denied here. Cross-field rules are CEL
//! (`x-kubernetes-validations`) so that `kubectl apply` rejects nonsense before the operator sees
//! it; the operator still re-checks what CEL cannot (Secrets, references, conflicts) and reports
//! it in status conditions ([`condition`]).

#![deny(missing_docs)]

pub mod common;
pub mod condition;
pub mod llm_provider;
pub mod model_route;
pub mod rate_limit_policy;
pub mod virtual_key;

pub use common::{Duration, InvalidDuration, LocalObjectRef, SecretKeyRef};
pub use llm_provider::{LlmProvider, LlmProviderSpec, LlmProviderStatus};
pub use model_route::{ModelRoute, ModelRouteSpec, ModelRouteStatus};
pub use rate_limit_policy::{RateLimitPolicy, RateLimitPolicySpec, RateLimitPolicyStatus};
pub use virtual_key::{VirtualKey, VirtualKeySpec, VirtualKeyStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The API group of every Switchboard kind.
pub const GROUP: &str = "switchboard.dev";
/// The API version of every Switchboard kind.
pub const VERSION: &str = "v1alpha1";

/// Every CRD, in a fixed order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    vec![LlmProvider::crd(), ModelRoute::crd(), VirtualKey::crd(), RateLimitPolicy::crd()]
}

/// The first line of every generated file: how to regenerate it, for whoever opens it.
pub const GENERATED_HEADER: &str =
    "# Generated from crds/src by `cargo run -p switchboard-crds --bin crdgen`. Do not edit.\n";

/// Every CRD as the file `crdgen` writes: (`<plural>.switchboard.dev.yaml`, contents).
pub fn rendered_crds() -> Result<Vec<(String, String)>, serde_yaml_ng::Error> {
    all_crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default());
            Ok((name, format!("{GENERATED_HEADER}{}", serde_yaml_ng::to_string(&crd)?)))
        })
        .collect()
}
