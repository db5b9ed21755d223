//! What the apiserver does to a custom resource before validating it, driven by the CRD's
//! structural openAPIV3Schema: prune fields the schema does not declare (reporting them, so a
//! `fieldValidation=Strict` request can be refused instead) and apply `default`s.
//!
//! Order as in apiextensions-apiserver: nulls on non-nullable fields are dropped, unknown fields
//! pruned, then defaults applied (also inside defaults that were just inserted).

use serde_json::{Map, Value};

/// Removes fields not declared in `schema`, and nulls where the schema does not allow them.
/// Returns the paths of removed unknown fields (`spec.foo`, `spec.backends[0].bar`).
pub(crate) fn prune(object: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = Vec::new();
    if let Value::Object(map) = object {
        // apiVersion, kind and metadata belong to the apiserver, not to the CRD's schema.
        for (key, value) in map.iter_mut() {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(property) = schema.get("properties").and_then(|p| p.get(key)) {
                prune_node(value, property, key, &mut removed);
            }
        }
        let declared = |key: &str| {
            matches!(key, "apiVersion" | "kind" | "metadata")
                || schema.get("properties").and_then(|p| p.get(key)).is_some()
        };
        removed.extend(map.keys().filter(|k| !declared(k)).cloned());
        map.retain(|k, _| declared(k));
    }
    removed
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name) == Some(&Value::Bool(true))
}

fn prune_node(value: &mut Value, schema: &Value, path: &str, removed: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            drop_disallowed_nulls(map, schema);
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                let keep_unknown = flag(schema, "x-kubernetes-preserve-unknown-fields");
                let mut unknown = Vec::new();
                for (key, child) in map.iter_mut() {
                    match properties.get(key) {
                        Some(s) => prune_node(child, s, &format!("{path}.{key}"), removed),
                        None if !keep_unknown => unknown.push(key.clone()),
                        None => {}
                    }
                }
                for key in unknown {
                    map.remove(&key);
                    removed.push(format!("{path}.{key}"));
                }
            } else if let Some(items) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for (key, child) in map.iter_mut() {
                    prune_node(child, items, &format!("{path}.{key}"), removed);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_node(item, item_schema, &format!("{path}[{i}]"), removed);
                }
            }
        }
        _ => {}
    }
}

/// A `null` for a field that is not `nullable` is treated as absent (and may then be defaulted).
fn drop_disallowed_nulls(map: &mut Map<String, Value>, schema: &Value) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else { return };
    map.retain(|key, value| !value.is_null() || properties.get(key).is_none_or(|s| flag(s, "nullable")));
}

/// Applies the schema's `default`s to absent fields, recursively.
pub(crate) fn apply_defaults(object: &mut Value, schema: &Value) {
    match object {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, property) in properties {
                    if let Some(default) = property.get("default")
                        && !map.contains_key(key)
                    {
                        map.insert(key.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(key) {
                        apply_defaults(child, property);
                    }
                }
            } else if let Some(items) = schema.get("additionalProperties").filter(|s| s.is_object()) {
                for child in map.values_mut() {
                    apply_defaults(child, items);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "weight": {"type": "integer", "default": 1},
                "timeouts": {"type": "object", "default": {}, "properties": {
                    "request": {"type": "string", "default": "600s"}}},
                "note": {"type": "string", "nullable": true},
                "backends": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                         "properties": {"a": {"type": "string"}}}}},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}})
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported_with_their_paths() {
        let mut object = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"weight": null, "note": null, "extra": 1,
                     "backends": [{"name": "a", "typo": true}],
                     "labels": {"k": "v"}, "free": {"b": 2}},
            "bogus": {}});
        let removed = prune(&mut object, &schema());
        assert_eq!(removed, ["spec.backends[0].typo", "spec.extra", "bogus"]);
        assert_eq!(
            object,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"note": null, "backends": [{"name": "a"}], "labels": {"k": "v"},
                     "free": {"b": 2}}})
        );
    }

    #[test]
    fn defaults_fill_absent_fields_including_inside_inserted_defaults() {
        let mut object = json!({"spec": {"backends": []}});
        apply_defaults(&mut object, &schema());
        assert_eq!(object["spec"]["weight"], 1);
        assert_eq!(object["spec"]["timeouts"], json!({"request": "600s"}));
        let mut explicit = json!({"spec": {"weight": 5, "timeouts": {"request": "1s"}}});
        apply_defaults(&mut explicit, &schema());
        assert_eq!(explicit["spec"], json!({"weight": 5, "timeouts": {"request": "1s"}}));
    }
}
