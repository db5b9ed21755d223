//! The four patch types, applied to a live object's JSON:
//!
//! - JSON merge patch (RFC 7386), `application/merge-patch+json`: kubectl's client-side apply of
//!   custom resources, `Patch::Merge`.
//! - JSON patch (RFC 6902), `application/json-patch+json`: kube-runtime's finalizer helper.
//!   Like the apiserver's library, a `test` of `null` passes on a missing path.
//! - Strategic merge patch, `application/strategic-merge-patch+json` (built-in kinds only):
//!   a merge patch that also understands the directives kubectl sends (`$patch`, `$retainKeys`,
//!   `$setElementOrder/…`, `$deleteFromPrimitiveList/…`) and merges the two metadata lists whose
//!   Go types declare a merge strategy (`finalizers` as a set, `ownerReferences` by `uid`). Every
//!   other list is replaced, which is what the built-ins served here declare.
//! - Server-side apply, `application/apply-patch+yaml`: simplified to a merge of the applied
//!   object into the live one (see `apply`).

use serde_json::{Map, Value};

use crate::status::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Server-side apply without managed fields: the applied configuration is merged into the live
/// object (lists replaced, `null` ignored rather than deleting). What a real apiserver does on
/// top — removing fields this manager applied before and no longer does, merging
/// `x-kubernetes-list-type: map` lists by key, refusing conflicts with other managers unless
/// `force` — is not modelled.
pub(crate) fn apply(target: &mut Value, applied: &Value) {
    let Value::Object(applied) = applied else {
        *target = applied.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in applied {
            if !value.is_null() {
                apply(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// RFC 6902 over a whole document; either every operation applies or the error says which not.
pub(crate) fn json_patch(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let operations = patch
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    let mut doc = target.clone();
    for operation in operations {
        let field = |name: &str| operation.get(name).and_then(Value::as_str);
        let op = field("op").ok_or_else(|| ApiError::bad_request("JSON patch operation has no \"op\""))?;
        let path =
            field("path").ok_or_else(|| ApiError::bad_request("JSON patch operation has no \"path\""))?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("{op} operation has no \"value\"")))
        };
        let from =
            || field("from").ok_or_else(|| ApiError::bad_request(format!("{op} operation has no \"from\"")));
        match op {
            "add" => add(&mut doc, path, value()?)?,
            "remove" => drop(remove(&mut doc, path)?),
            "replace" => {
                let slot = doc.pointer_mut(path).ok_or_else(|| missing(op, path))?;
                *slot = value()?;
            }
            "move" => {
                let moved = remove(&mut doc, from()?)?;
                add(&mut doc, path, moved)?;
            }
            "copy" => {
                let copied = doc.pointer(from()?).cloned().ok_or_else(|| missing(op, path))?;
                add(&mut doc, path, copied)?;
            }
            "test" => {
                let expected = value()?;
                // evanphx/json-patch (the apiserver's library) treats a missing path as null.
                let actual = doc.pointer(path).unwrap_or(&Value::Null);
                if *actual != expected {
                    return Err(ApiError::unprocessable(format!("testing value {path} failed: test failed")));
                }
            }
            other => return Err(ApiError::bad_request(format!("unexpected JSON patch operation {other:?}"))),
        }
    }
    *target = doc;
    Ok(())
}

fn missing(op: &str, path: &str) -> ApiError {
    ApiError::unprocessable(format!("{op} operation does not apply: doc is missing path: {path}"))
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits `/a/b/c` into the parent pointer `/a/b` and the last token `c`.
fn parent(path: &str) -> Result<(&str, String), ApiError> {
    let (parent, last) =
        path.rsplit_once('/').ok_or_else(|| ApiError::bad_request(format!("bad JSON pointer {path:?}")))?;
    Ok((parent, unescape(last)))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent_path, last) = parent(path)?;
    match doc.pointer_mut(parent_path) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index =
                if last == "-" { items.len() } else { last.parse().map_err(|_| missing("add", path))? };
            if index > items.len() {
                return Err(missing("add", path));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(missing("add", path)),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent_path, last) = parent(path)?;
    match doc.pointer_mut(parent_path) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(|| missing("remove", path)),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => Ok(items.remove(i)),
            _ => Err(missing("remove", path)),
        },
        _ => Err(missing("remove", path)),
    }
}

/// Strategic merge patch for the built-in kinds served here (see the module comment).
pub(crate) fn strategic(target: &mut Value, patch: &Value, path: &str) -> Result<(), ApiError> {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut replaced = patch.clone();
            replaced.remove("$patch");
            *target = Value::Object(replaced);
            return Ok(());
        }
        Some("delete") => {
            *target = Value::Null;
            return Ok(());
        }
        Some(other) => return Err(ApiError::bad_request(format!("unknown patch directive {other:?}"))),
        None => {}
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else { return Ok(()) };
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(gone)) = (map.get_mut(list), value.as_array()) {
                items.retain(|item| !gone.contains(item));
            }
            continue;
        }
        // Ordering hints and the retained-key list are handled after the merge or not at all.
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if value.is_null() {
            map.remove(key);
            continue;
        }
        let child_path = format!("{path}.{key}");
        match (child_path.as_str(), value) {
            (".metadata.finalizers", Value::Array(added)) => {
                let items = map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = items {
                    for item in added {
                        if !items.contains(item) {
                            items.push(item.clone());
                        }
                    }
                }
            }
            (".metadata.ownerReferences", Value::Array(refs)) => {
                let items = map.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(items) = items {
                    merge_by_key(items, refs, "uid")?;
                }
            }
            (_, Value::Object(_)) => {
                let slot = map.entry(key.clone()).or_insert(Value::Null);
                strategic(slot, value, &child_path)?;
                if slot.is_null() {
                    map.remove(key);
                }
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(Value::Array(retain)) = patch.get("$retainKeys") {
        map.retain(|k, _| retain.iter().any(|r| r.as_str() == Some(k)));
    }
    Ok(())
}

fn merge_by_key(items: &mut Vec<Value>, patch: &[Value], key: &str) -> Result<(), ApiError> {
    for entry in patch {
        let id = entry.get(key).cloned().ok_or_else(|| {
            ApiError::bad_request(format!("map: {entry} does not contain declared merge key: {key}"))
        })?;
        let position = items.iter().position(|item| item.get(key) == Some(&id));
        let delete = entry.get("$patch").and_then(Value::as_str) == Some("delete");
        match (position, delete) {
            (Some(i), true) => drop(items.remove(i)),
            (None, true) => {}
            (Some(i), false) => strategic(&mut items[i], entry, "")?,
            (None, false) => items.push(entry.clone()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge(&mut doc, &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}}));
        assert_eq!(doc, json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}}));
    }

    #[test]
    fn json_patch_applies_all_operations_or_none() {
        let mut doc = json!({"metadata": {"finalizers": ["a"]}, "spec": {"x": 1}});
        let ok = json!([
            {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
            {"op": "replace", "path": "/spec/x", "value": 2},
            {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
            {"op": "move", "from": "/spec/y", "path": "/spec/z"},
            {"op": "test", "path": "/metadata/labels", "value": null},
        ]);
        json_patch(&mut doc, &ok).unwrap();
        assert_eq!(doc, json!({"metadata": {"finalizers": ["b"]}, "spec": {"x": 2, "z": 2}}));
        let failing = json!([
            {"op": "replace", "path": "/spec/x", "value": 3},
            {"op": "test", "path": "/metadata/finalizers/0", "value": "a"},
        ]);
        let error = json_patch(&mut doc, &failing).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (422, "testing value /metadata/finalizers/0 failed: test failed")
        );
        assert_eq!(doc["spec"]["x"], 2, "a failed patch changes nothing");
        assert_eq!(json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])).unwrap_err().code, 422);
    }

    #[test]
    fn strategic_merge_understands_kubectl_directives() {
        let mut doc = json!({
            "metadata": {"finalizers": ["a"], "ownerReferences": [{"uid": "1", "name": "x"}],
                         "labels": {"keep": "1", "drop": "2"}},
            "data": {"k": "v", "old": "o"},
            "spec": {"finalizers": ["kubernetes"]},
        });
        let patch = json!({
            "metadata": {"finalizers": ["b", "a"], "ownerReferences": [{"uid": "2", "name": "y"}],
                         "labels": {"drop": null}},
            "data": {"$retainKeys": ["k", "new"], "new": "n"},
            "$setElementOrder/spec": [],
            "spec": {"$deleteFromPrimitiveList/finalizers": ["kubernetes"]},
        });
        strategic(&mut doc, &patch, "").unwrap();
        assert_eq!(
            doc,
            json!({
                "metadata": {"finalizers": ["a", "b"],
                             "ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}],
                             "labels": {"keep": "1"}},
                "data": {"k": "v", "new": "n"},
                "spec": {"finalizers": []},
            })
        );
        strategic(
            &mut doc,
            &json!({"metadata": {"ownerReferences": [{"uid": "1", "$patch": "delete"}]},
                                    "data": {"$patch": "replace", "only": "this"}}),
            "",
        )
        .unwrap();
        assert_eq!(doc["metadata"]["ownerReferences"], json!([{"uid": "2", "name": "y"}]));
        assert_eq!(doc["data"], json!({"only": "this"}));
    }

    #[test]
    fn apply_merges_without_deleting() {
        let mut doc = json!({"spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}, "x": [1, 2]});
        apply(&mut doc, &json!({"spec": {"holderIdentity": "b", "renewTime": null}, "x": [3]}));
        assert_eq!(doc, json!({"spec": {"holderIdentity": "b", "leaseDurationSeconds": 15}, "x": [3]}));
    }
}
