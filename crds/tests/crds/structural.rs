//! Every generated schema is one a real apiserver accepts: structural (no CRD is refused at
//! install), bounded (CEL cost estimates stay within budget), with CEL rules that compile.
//!
//! Rules: <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema>

use serde_json::Value;
use switchboard_crds::all_crds;
use switchboard_test_apiserver::validate::{Error, openapi_schema, to_json_schema};

/// Keywords a structural schema forbids inside `anyOf`/`oneOf`/`allOf`/`not`: those branches
/// may only add validation, never shape or document the value.
const FORBIDDEN_IN_JUNCTORS: [&str; 5] =
    ["type", "default", "description", "nullable", "additionalProperties"];

fn walk(node: &Value, path: &str, in_junctor: bool, in_spec: bool, problems: &mut Vec<String>) {
    let Some(object) = node.as_object() else {
        problems.push(format!("{path}: schema is not an object"));
        return;
    };
    let flag = |name: &str| object.get(name) == Some(&Value::Bool(true));
    let type_ = object.get("type").and_then(Value::as_str);
    if object.contains_key("$ref") {
        problems.push(format!("{path}: $ref is not allowed"));
    }
    if in_junctor {
        for keyword in FORBIDDEN_IN_JUNCTORS {
            if object.contains_key(keyword) {
                problems.push(format!("{path}: {keyword} inside anyOf/oneOf/allOf/not"));
            }
        }
    } else if type_.is_none()
        && !flag("x-kubernetes-int-or-string")
        && !flag("x-kubernetes-preserve-unknown-fields")
    {
        problems.push(format!("{path}: no type"));
    }
    if object.contains_key("properties") && object.contains_key("additionalProperties") {
        problems.push(format!("{path}: properties and additionalProperties together"));
    }
    match type_ {
        Some("array") if !object.contains_key("items") => {
            problems.push(format!("{path}: array without items"))
        }
        Some("array") if in_spec && !object.contains_key("maxItems") => {
            problems.push(format!("{path}: array without maxItems (unbounded CEL cost)"))
        }
        Some("string")
            if in_spec
                && !object.contains_key("maxLength")
                && !object.contains_key("enum")
                && object.get("format").and_then(Value::as_str) != Some("date-time") =>
        {
            problems.push(format!("{path}: string without maxLength or enum (unbounded CEL cost)"))
        }
        _ => {}
    }
    // List-map keys must always be present, or the apiserver cannot merge items by key.
    if let Some(keys) = object.get("x-kubernetes-list-map-keys").and_then(Value::as_array) {
        let required = node.pointer("/items/required").and_then(Value::as_array);
        for key in keys {
            if !required.is_some_and(|r| r.contains(key)) {
                problems.push(format!("{path}: list-map key {key} is not required in items"));
            }
        }
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            let spec = in_spec || (path == "<root>" && name == "spec");
            walk(child, &format!("{path}.{name}"), in_junctor, spec, problems);
        }
    }
    for keyword in ["items", "additionalProperties"] {
        if let Some(child) = object.get(keyword).filter(|c| c.is_object()) {
            walk(child, &format!("{path}.{keyword}"), in_junctor, in_spec, problems);
        }
    }
    for keyword in ["allOf", "anyOf", "oneOf"] {
        for (i, child) in object.get(keyword).and_then(Value::as_array).into_iter().flatten().enumerate() {
            walk(child, &format!("{path}.{keyword}[{i}]"), true, in_spec, problems);
        }
    }
    if let Some(child) = object.get("not") {
        walk(child, &format!("{path}.not"), true, in_spec, problems);
    }
}

#[test]
fn every_schema_is_structural_and_bounded() -> Result<(), Error> {
    let mut problems = Vec::new();
    for crd in all_crds() {
        let mut found = Vec::new();
        walk(&openapi_schema(&crd)?, "<root>", false, false, &mut found);
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", crd.spec.names.kind)));
    }
    assert!(problems.is_empty(), "non-structural or unbounded schemas:\n{}", problems.join("\n"));
    Ok(())
}

#[test]
fn the_walk_catches_what_it_claims_to() {
    // The walk is itself code under test: each of these must be flagged.
    let cases = [
        (serde_json::json!({"properties": {"a": {"type": "string", "maxLength": 1}}}), "no type"),
        (serde_json::json!({"type": "object", "properties": {"a": {"$ref": "#/x"}}}), "$ref"),
        (
            serde_json::json!({"type": "object", "anyOf": [{"type": "string"}], "properties": {}}),
            "type inside anyOf",
        ),
        (serde_json::json!({"type": "array", "items": {"type": "integer"}}), "without maxItems"),
        (serde_json::json!({"type": "string"}), "without maxLength"),
        (
            serde_json::json!({"type": "array", "maxItems": 1, "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object", "properties": {}}}),
            "not required",
        ),
    ];
    for (schema, expected) in cases {
        let mut problems = Vec::new();
        walk(&schema, "x", false, true, &mut problems);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{schema} should be flagged with {expected:?}: {problems:?}"
        );
    }
}

/// Every `x-kubernetes-validations` rule in a schema, with the schema node it sits on.
pub fn cel_rules(node: &Value, out: &mut Vec<(String, Value)>) {
    let Some(object) = node.as_object() else { return };
    for rule in object.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten() {
        if let Some(text) = rule.get("rule").and_then(Value::as_str) {
            out.push((text.to_owned(), node.clone()));
        }
    }
    for child in object.get("properties").and_then(Value::as_object).into_iter().flat_map(|p| p.values()) {
        cel_rules(child, out);
    }
    if let Some(items) = object.get("items") {
        cel_rules(items, out);
    }
}

#[test]
fn every_cel_rule_compiles_and_passes_static_analysis() -> Result<(), Error> {
    // Only the cost half of kube-cel's analysis: its scope check (0.8) mistakes the variables of
    // macros such as `self.all(h, ...)` for undeclared ones.
    use kube::core::cel::{compile_schema, estimate_rule_cost};
    let mut problems = Vec::new();
    for crd in all_crds() {
        let mut rules = Vec::new();
        cel_rules(&openapi_schema(&crd)?, &mut rules);
        for (rule, node) in rules {
            let compiled = compile_schema(&node);
            for error in compiled.compilation_errors() {
                problems.push(format!("{}: {rule}: {error}", crd.spec.names.kind));
            }
            for warning in estimate_rule_cost(&rule, &compiled) {
                problems.push(format!("{}: {rule}: {}", crd.spec.names.kind, warning.message));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn defaults_are_valid_values_of_their_own_schema() -> Result<(), Error> {
    // The apiserver refuses a CRD whose defaults do not validate against the schema they sit on.
    fn check(node: &Value, path: &str, problems: &mut Vec<String>) {
        let Some(object) = node.as_object() else { return };
        if let Some(default) = object.get("default") {
            match jsonschema::draft4::new(&to_json_schema(node)) {
                Ok(validator) => {
                    for error in validator.iter_errors(default) {
                        problems.push(format!("{path}: default {default}: {error}"));
                    }
                }
                Err(error) => problems.push(format!("{path}: {error}")),
            }
        }
        for (name, child) in object.get("properties").and_then(Value::as_object).into_iter().flatten() {
            check(child, &format!("{path}.{name}"), problems);
        }
        if let Some(items) = object.get("items") {
            check(items, &format!("{path}[]"), problems);
        }
    }
    let mut problems = Vec::new();
    for crd in all_crds() {
        check(&openapi_schema(&crd)?, &crd.spec.names.kind, &mut problems);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn printer_columns_point_at_fields_that_exist() -> Result<(), Error> {
    // A JSONPath into a field that does not exist prints an empty column forever, silently.
    let mut problems = Vec::new();
    for crd in all_crds() {
        let schema = openapi_schema(&crd)?;
        let version = crd.spec.versions.first().ok_or("no version")?;
        for column in version.additional_printer_columns.iter().flatten() {
            // metadata is ObjectMeta, which the apiserver owns and the CRD schema leaves out.
            if column.json_path.starts_with(".metadata.") {
                continue;
            }
            let mut node = &schema;
            for (name, indexed) in json_path_fields(&column.json_path) {
                let Some(child) = node.pointer(&format!("/properties/{name}")) else {
                    problems
                        .push(format!("{}: column {}: no field {name:?}", crd.spec.names.kind, column.name));
                    break;
                };
                node = if indexed { child.get("items").unwrap_or(child) } else { child };
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// The field names along a simple JSONPath, each with whether it is indexed (`[*]`, `[0]` or a
/// filter `[?(...)]`, whose own dots are not fields): `.a.b[?(@.x=="y")].c` → a, b (indexed), c.
fn json_path_fields(path: &str) -> Vec<(String, bool)> {
    fn flush(current: &mut String, indexed: bool, fields: &mut Vec<(String, bool)>) {
        if !current.is_empty() {
            fields.push((std::mem::take(current), indexed));
        }
    }
    let mut fields = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in path.chars() {
        match c {
            '[' => {
                if depth == 0 {
                    flush(&mut current, true, &mut fields);
                }
                depth += 1;
            }
            ']' => depth -= 1,
            '.' if depth == 0 => flush(&mut current, false, &mut fields),
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    flush(&mut current, false, &mut fields);
    fields
}

#[test]
fn json_path_fields_skip_filters() {
    let fields = json_path_fields(r#".status.conditions[?(@.type=="Accepted")].status"#);
    let expected = [("status", false), ("conditions", true), ("status", false)];
    assert_eq!(fields, expected.map(|(n, i)| (n.to_owned(), i)));
}
