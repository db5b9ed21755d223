//! Server-side printing: what `kubectl get` asks for (`Accept: application/json;as=Table;
//! v=v1;g=meta.k8s.io`). NAME, then the kind's columns: a CRD's additionalPrinterColumns,
//! evaluated like apiextensions-apiserver's table convertor (the first JSONPath result only;
//! `date` cells as ages), or a few fixed columns for the built-ins.

use serde_json::{Value, json};

use crate::clock;
use crate::kinds::{Kind, Source};

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.key=="value")]`
    Filter(String, String),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let mut steps = Vec::new();
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            steps.push(Step::Field(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            steps.push(if inner == "*" {
                Step::All
            } else if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (key, value) = filter.split_once("==")?;
                Step::Filter(key.trim().to_owned(), value.trim().trim_matches(['"', '\'']).to_owned())
            } else {
                Step::Index(inner.parse().ok()?)
            });
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Every value `path` selects in `object`, in document order.
fn find<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else { return Vec::new() };
    let mut current = vec![object];
    for step in &steps {
        current = current
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                match step {
                    Step::Field(name) => v.get(name).into_iter().collect(),
                    Step::Index(i) => v.get(*i).into_iter().collect(),
                    Step::All => match v {
                        Value::Array(items) => items.iter().collect(),
                        Value::Object(map) => map.values().collect(),
                        _ => Vec::new(),
                    },
                    Step::Filter(key, want) => v
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|item| match item.get(key) {
                            Some(Value::String(s)) => s == want,
                            Some(other) => want.as_str() == other.to_string().as_str(),
                            None => false,
                        })
                        .collect(),
                }
            })
            .collect();
    }
    current
}

fn cell(kind_type: &str, source: &Source, object: &Value, now: i64) -> Value {
    let value = match source {
        Source::KeyCount(field) => {
            return json!(object.get(field).and_then(Value::as_object).map_or(0, |m| m.len()));
        }
        Source::Path(path) => match find(object, path).first() {
            Some(v) => (*v).clone(),
            None => return Value::Null,
        },
    };
    match (kind_type, &value) {
        ("date", Value::String(s)) => match clock::parse_rfc3339(s) {
            Some(t) => Value::String(clock::human_age(t, now)),
            None => Value::String("<invalid>".to_owned()),
        },
        ("string", Value::String(_)) => value,
        // A non-string in a string column prints as its JSON, as Go's jsonpath printer does.
        ("string", other) => Value::String(other.to_string()),
        ("integer" | "number" | "boolean", _) => value,
        _ => Value::Null,
    }
}

/// What a Table row carries besides its cells: `includeObject=None|Metadata|Object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Include {
    None,
    Metadata,
    Object,
}

/// A `meta.k8s.io/v1 Table` for some objects of one kind.
pub(crate) fn table(kind: &Kind, objects: &[&Value], resource_version: &str, include: Include) -> Value {
    let now = clock::now();
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    columns.extend(kind.columns.iter().map(
        |c| json!({"name": c.name, "type": c.type_, "format": "", "description": "", "priority": c.priority}),
    ));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![object.pointer("/metadata/name").cloned().unwrap_or(Value::Null)];
            cells.extend(kind.columns.iter().map(|c| cell(&c.type_, &c.source, object, now)));
            let mut row = json!({"cells": cells});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(object),
                Include::Object => row["object"] = (*object).clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `PartialObjectMetadata`: an object's metadata only (kube's `metadata_watcher`, Table rows).
pub(crate) fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printer_column_paths() {
        let object = json!({
            "spec": {"model": "chat", "backends": [{"providerRef": {"name": "a"}}, {"providerRef": {"name": "b"}}]},
            "status": {"conditions": [{"type": "Accepted", "status": "True"}, {"type": "Programmed", "status": "False"}]},
        });
        let values = |p: &str| find(&object, p).into_iter().cloned().collect::<Vec<_>>();
        assert_eq!(values(".spec.model"), [json!("chat")]);
        assert_eq!(values(".spec.backends[*].providerRef.name"), [json!("a"), json!("b")]);
        assert_eq!(values(".spec.backends[1].providerRef.name"), [json!("b")]);
        assert_eq!(values(r#".status.conditions[?(@.type=="Programmed")].status"#), [json!("False")]);
        assert!(values(".spec.missing").is_empty());
        assert_eq!(parse(".a[x"), None);
    }

    #[test]
    fn cells_are_typed_like_the_table_convertor() {
        let object =
            json!({"metadata": {"creationTimestamp": "2000-01-01T00:00:00Z"}, "n": 3, "l": ["x", "y"]});
        let path = |p: &str| Source::Path(p.to_owned());
        let year_2000 = clock::parse_rfc3339("2000-01-01T00:00:30Z").unwrap();
        assert_eq!(cell("date", &path(".metadata.creationTimestamp"), &object, year_2000), json!("30s"));
        assert_eq!(cell("string", &path(".l[*]"), &object, 0), json!("x"));
        assert_eq!(cell("string", &path(".n"), &object, 0), json!("3"));
        assert_eq!(cell("integer", &path(".n"), &object, 0), json!(3));
        assert_eq!(cell("string", &path(".missing"), &object, 0), Value::Null);
        assert_eq!(cell("string", &Source::KeyCount("metadata"), &object, 0), json!(1));
    }
}
