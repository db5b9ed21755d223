//! Discovery and OpenAPI: what clients read before they touch a resource.
//!
//! - `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`: the legacy
//!   discovery documents (APIVersions, APIGroupList, APIGroup, APIResourceList). kubectl asks
//!   for aggregated discovery (`as=APIGroupDiscoveryList`) first and falls back to these when the
//!   answer is plain `application/json`; kube's `Discovery` reads them directly.
//! - `/version`: a 1.36 server, so kubectl 1.36 prints no skew warning.
//! - `/openapi/v3` and `/openapi/v3/<group version>`: one PATCH operation per kind that lists
//!   the `fieldValidation` parameter, which is how kubectl decides the server validates fields
//!   itself (it then sends `fieldValidation=Strict` instead of validating client-side), and the
//!   custom resources' schemas with their GVK, which `kubectl explain` reads. `/openapi/v2` is
//!   not served.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::kinds::Kind;
use crate::validate::Validator;

/// Group versions in the order discovery lists them, each with its served kinds.
fn group_versions(kinds: &[Kind]) -> BTreeMap<(String, String), Vec<&Kind>> {
    let mut out: BTreeMap<(String, String), Vec<&Kind>> = BTreeMap::new();
    for kind in kinds.iter().filter(|k| k.served) {
        out.entry((kind.group.clone(), kind.version.clone())).or_default().push(kind);
    }
    out
}

pub(crate) fn version() -> Value {
    json!({
        "major": "1", "minor": "36",
        "emulationMajor": "1", "emulationMinor": "36",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "35",
        "gitVersion": "v1.36.0-switchboard-test", "gitCommit": "", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.25.0", "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({"name": group, "versions": versions, "preferredVersion": versions.first()})
}

pub(crate) fn groups(kinds: &[Kind]) -> Value {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for kind in kinds.iter().filter(|k| k.served && !k.group.is_empty()) {
        let versions = by_group.entry(&kind.group).or_default();
        if !versions.contains(&kind.version.as_str()) {
            versions.push(&kind.version);
        }
    }
    let groups: Vec<Value> = by_group.iter().map(|(g, vs)| api_group(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn group(kinds: &[Kind], group: &str) -> Option<Value> {
    let mut versions: Vec<&str> = Vec::new();
    for kind in kinds.iter().filter(|k| k.served && k.group == group && !group.is_empty()) {
        if !versions.contains(&kind.version.as_str()) {
            versions.push(&kind.version);
        }
    }
    if versions.is_empty() {
        return None;
    }
    let mut value = api_group(group, &versions);
    value["kind"] = json!("APIGroup");
    value["apiVersion"] = json!("v1");
    Some(value)
}

pub(crate) fn resources(kinds: &[Kind], group: &str, version: &str) -> Option<Value> {
    let kinds = group_versions(kinds).remove(&(group.to_owned(), version.to_owned()))?;
    let mut resources = Vec::new();
    for kind in kinds {
        resources.push(json!({
            "name": kind.plural,
            "singularName": kind.singular,
            "namespaced": kind.namespaced,
            "kind": kind.kind,
            "verbs": kind.verbs(),
            "shortNames": kind.short_names,
            "categories": kind.categories,
        }));
        if kind.status {
            resources.push(json!({
                "name": format!("{}/status", kind.plural),
                "singularName": "",
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// `api/v1`, `apis/<group>/<version>`: the keys of the OpenAPI v3 root.
fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// FNV-1a: a stable content hash for the `?hash=` kubectl caches OpenAPI documents by.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The OpenAPI v3 documents of the served kinds: the root (`/openapi/v3`) and one per group
/// version.
pub(crate) struct OpenApi {
    pub root: Value,
    pub documents: BTreeMap<String, Value>,
}

impl OpenApi {
    pub fn new(kinds: &[Kind], validator: &Validator) -> Self {
        let mut documents = BTreeMap::new();
        let mut paths = serde_json::Map::new();
        for ((group, version), kinds) in group_versions(kinds) {
            let document = document(&kinds, validator);
            let hash = fnv(document.to_string().as_bytes());
            let path = openapi_path(&group, &version);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}),
            );
            documents.insert(path, document);
        }
        Self { root: json!({"paths": paths}), documents }
    }
}

/// `dev.switchboard.v1alpha1.LLMProvider`, `io.k8s.api.core.v1.Secret`: component names.
fn schema_name(kind: &Kind) -> String {
    let group = if kind.group.is_empty() {
        "io.k8s.api.core".to_owned()
    } else {
        kind.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{group}.{}.{}", kind.version, kind.kind)
}

fn document(kinds: &[&Kind], validator: &Validator) -> Value {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for kind in kinds {
        let gvk = json!({"group": kind.group, "version": kind.version, "kind": kind.kind});
        let name = schema_name(kind);
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let ok =
            json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let mut content = serde_json::Map::new();
        for media in
            ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]
        {
            content.insert(media.to_owned(), json!({"schema": {"type": "object"}}));
        }
        let operation = |action: &str, extra: Value| {
            let mut op = json!({
                "operationId": format!("{action}{}", kind.kind),
                "responses": ok,
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            });
            if let (Some(op), Some(extra)) = (op.as_object_mut(), extra.as_object()) {
                op.extend(extra.clone());
            }
            op
        };
        let mut item = json!({"get": operation("get", json!({}))});
        let params = ["dryRun", "fieldManager", "fieldValidation", "force"].map(query);
        item["patch"] =
            operation("patch", json!({"parameters": params, "requestBody": {"content": content}}));
        item["put"] = operation("put", json!({"parameters": params[..3]}));
        item["delete"] = operation("delete", json!({}));
        let namespace = if kind.namespaced { "namespaces/{namespace}/" } else { "" };
        paths.insert(format!("{}/{namespace}{}/{{name}}", kind.prefix(), kind.plural), item);
        let mut schema = match validator.schema(&kind.kind).filter(|_| kind.custom) {
            Some(schema) => schema.clone(),
            None => json!({"type": "object"}),
        };
        if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            properties.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            properties.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            properties.insert(
                "metadata".into(),
                json!({"type": "object", "description": "Standard object's metadata."}),
            );
        }
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(name, schema);
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.36.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}
