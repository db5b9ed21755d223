//! What the compile reads: the four kinds and the Secrets they reference, as plain values.
//!
//! The controller fills this from its watch caches; tests and `switchboard-operator compile`
//! fill it from YAML manifests, so both run the same compile.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use std::sync::Arc;
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};

/// Everything one compile looks at. Order does not matter: the compile sorts what it reads.
/// Objects are shared (`Arc`), as the watch caches hold them: a compile of 10,000 keys copies
/// no object.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub providers: Vec<Arc<LlmProvider>>,
    pub routes: Vec<Arc<ModelRoute>>,
    pub keys: Vec<Arc<VirtualKey>>,
    pub policies: Vec<Arc<RateLimitPolicy>>,
    pub secrets: Vec<Arc<Secret>>,
    /// The snapshot generation to stamp (the controller increments it on every change).
    pub generation: u64,
    /// When this compile happens: the `lastTransitionTime` of conditions whose status changes.
    pub now: Option<Time>,
    /// What the gateway replicas report, for `Programmed` (`None`: nobody is listening, e.g.
    /// `switchboard-operator compile`).
    pub fleet: Option<crate::compile::Fleet>,
}

/// Just enough of an object to tell its kind.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

impl Inputs {
    /// Adds every object of a multi-document YAML text (`kubectl apply -f` style). Objects of
    /// other Kubernetes kinds (a Namespace next to the resources) are skipped; an unknown
    /// `switchboard.dev` kind is an error, so a typo in `kind` is not silently ignored.
    pub fn add_yaml(&mut self, text: &str) -> Result<(), String> {
        for (index, document) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let value =
                serde_yaml_ng::Value::deserialize(document).map_err(|e| format!("document {index}: {e}"))?;
            if value.is_null() {
                continue;
            }
            let meta: TypeMeta =
                serde_yaml_ng::from_value(value.clone()).map_err(|e| format!("document {index}: {e}"))?;
            let parse_error = |e: serde_yaml_ng::Error| format!("document {index} ({}): {e}", meta.kind);
            match (meta.api_version.as_str(), meta.kind.as_str()) {
                ("switchboard.dev/v1alpha1", "LLMProvider") => {
                    self.providers.push(Arc::new(serde_yaml_ng::from_value(value).map_err(parse_error)?))
                }
                ("switchboard.dev/v1alpha1", "ModelRoute") => {
                    self.routes.push(Arc::new(serde_yaml_ng::from_value(value).map_err(parse_error)?))
                }
                ("switchboard.dev/v1alpha1", "VirtualKey") => {
                    self.keys.push(Arc::new(serde_yaml_ng::from_value(value).map_err(parse_error)?))
                }
                ("switchboard.dev/v1alpha1", "RateLimitPolicy") => {
                    self.policies.push(Arc::new(serde_yaml_ng::from_value(value).map_err(parse_error)?))
                }
                ("v1", "Secret") => {
                    let mut secret: Secret = serde_yaml_ng::from_value(value).map_err(parse_error)?;
                    // The API server merges `stringData` into `data` on write; do the same, so
                    // the compile only ever sees what it would read from a cluster.
                    if let Some(strings) = secret.string_data.take() {
                        let data = secret.data.get_or_insert_with(Default::default);
                        for (key, value) in strings {
                            data.insert(key, ByteString(value.into_bytes()));
                        }
                    }
                    self.secrets.push(Arc::new(secret));
                }
                (api_version, kind) if api_version.starts_with("switchboard.dev/") => {
                    return Err(format!("document {index}: unknown kind {api_version}/{kind}"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
