//! Switchboard's CRDs as objects: installed when the server starts (unless
//! `Options::install_crds` is off) or by a client (`kubectl apply --server-side -f crds/yaml/`),
//! and deleted like any object. A custom kind is served while its CRD is stored.
//!
//! The server validates custom resources with the schemas compiled into it
//! (`switchboard_crds::all_crds()`, the same as `crds/yaml/`), so it accepts only those four
//! CRDs, unchanged: serving another name, or another schema under a known name, would be a lie.
//! A stored CRD is `Established` at once (a real apiserver takes a moment; clients wait for the
//! condition either way). Deleting a CRD deletes every object of its kind, as on a real cluster,
//! inside the request (like the namespace controller here, see `lifecycle.rs`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionSpec;
use serde_json::{Value, json};

use crate::discovery::OpenApi;
use crate::kinds::Kind;
use crate::status::{ApiError, Cause};
use crate::store::{Key, Store};

/// The status a real apiserver writes on a CRD once it serves it.
pub(crate) fn status(crd: &Value) -> Value {
    let condition =
        |type_: &str, reason: &str| json!({"type": type_, "status": "True", "reason": reason, "message": ""});
    let versions: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.get("name").cloned())
        .collect();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({})),
        "conditions": [condition("NamesAccepted", "NoConflicts"),
                       condition("Established", "InitialNamesAccepted")],
        "storedVersions": versions,
    })
}

fn name(object: &Value) -> &str {
    object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default()
}

impl Store {
    pub(crate) fn is_crd_kind(&self, kind: usize) -> bool {
        self.kinds[kind].group == "apiextensions.k8s.io"
    }

    /// A CRD about to be stored: one of the built-in four with its spec unchanged (else 422,
    /// naming what this server can serve), given the status a serving apiserver reports.
    pub(crate) fn admit_crd(&self, kind: &Kind, object: &mut Value) -> Result<(), ApiError> {
        let name = name(object).to_owned();
        let Some(builtin) = self.builtin_crds.iter().find(|c| self::name(c) == name) else {
            let known: Vec<String> =
                self.builtin_crds.iter().map(|c| format!("{:?}", self::name(c))).collect();
            let message = format!(
                "Unsupported value: {name:?}: this test API server serves only the CRDs built into it: {}",
                known.join(", ")
            );
            let cause = Cause { field: "metadata.name".into(), reason: "FieldValueNotSupported", message };
            return Err(ApiError::invalid(kind, &name, vec![cause]));
        };
        // Typed, so that `1` and `1.0` (how YAML numbers reach JSON varies by client) compare equal.
        let spec =
            |o: &Value| serde_json::from_value::<CustomResourceDefinitionSpec>(o.get("spec")?.clone()).ok();
        if spec(object).is_none() || spec(object) != spec(builtin) {
            let message = "Invalid value: \"object\": not the CRD built into this test API server \
                (crds/yaml/ of the same checkout): it validates with the schema compiled into it"
                .to_owned();
            let cause = Cause { field: "spec".into(), reason: "FieldValueInvalid", message };
            return Err(ApiError::invalid(kind, &name, vec![cause]));
        }
        object["status"] = status(builtin);
        Ok(())
    }

    /// Serves exactly the custom kinds whose CRD is stored, and rebuilds the OpenAPI documents
    /// when that changes.
    pub(crate) fn sync_served(&mut self) {
        let Some(crd_kind) = self.kind_index("apiextensions.k8s.io", "customresourcedefinitions") else {
            return;
        };
        let mut changed = false;
        for i in 0..self.kinds.len() {
            if !self.kinds[i].custom {
                continue;
            }
            let key: Key = (crd_kind, String::new(), self.kinds[i].crd_name());
            let served = self.objects.contains_key(&key);
            changed |= self.kinds[i].served != served;
            self.kinds[i].served = served;
        }
        if changed {
            self.openapi = OpenApi::new(&self.kinds, &self.validator);
        }
    }

    /// Before a CRD goes: every object of its kind goes (a DELETED event each, finalizers
    /// notwithstanding, as the apiserver's CRD cleanup ends up doing).
    pub(crate) fn remove_custom_objects(&mut self, crd_name: &str) {
        let Some(kind) = self.kinds.iter().position(|k| k.custom && k.crd_name() == crd_name) else {
            return;
        };
        let keys: Vec<Key> = self.objects.keys().filter(|(k, _, _)| *k == kind).cloned().collect();
        for key in keys {
            self.remove(&key);
        }
    }
}
