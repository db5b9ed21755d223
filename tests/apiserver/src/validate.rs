//! What a Kubernetes apiserver would say about a Switchboard custom resource: the
//! openAPIV3Schema checks (with unknown fields as errors, as `kubectl apply --validate=strict`
//! gets them) and then the CEL rules. The crds tests and this crate's server share it, so a
//! fixture the crds tests refuse is one the test API server refuses the same way.
//!
//! The schema half uses the `jsonschema` crate, after a translation of the Kubernetes dialect of
//! OpenAPI v3 into plain JSON Schema draft 4 ([`to_json_schema`]): `nullable` becomes a `null`
//! type, objects with properties get `additionalProperties: false` (the apiserver prunes or, with
//! strict field validation, rejects unknown fields), and `x-kubernetes-list-type: set` becomes
//! `uniqueItems`. Every other keyword our CRDs use (type, required, enum, minimum/maximum,
//! minLength/maxLength, pattern, minItems/maxItems, format date-time) means the same in both.
//! The CEL half is kube-cel, which kube's own `validate_cel()` uses; like the apiserver, it applies
//! schema defaults before evaluating rules.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use switchboard_crds::{GROUP, VERSION, all_crds};

/// One rejection: where and why, as the apiserver words its field errors, and for CEL failures
/// the rule, so tests can prove each rule is exercised.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub path: String,
    pub message: String,
    pub rule: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

struct Kind {
    schema: jsonschema::Validator,
    /// The openAPIV3Schema as generated: CEL rules are evaluated against it.
    openapi: Value,
}

/// Validators for every Switchboard kind.
pub struct Validator {
    kinds: BTreeMap<String, Kind>,
    cel: kube::core::cel::Validator,
}

pub type Error = Box<dyn std::error::Error + Send + Sync>;

impl Validator {
    pub fn new() -> Result<Self, Error> {
        let mut kinds = BTreeMap::new();
        for crd in all_crds() {
            let openapi = openapi_schema(&crd)?;
            // The apiserver declares these three on every kind itself (and checks metadata as
            // ObjectMeta), so the generated schema leaves them out.
            let mut root = openapi.clone();
            if let Some(Value::Object(properties)) = root.get_mut("properties") {
                properties.insert("apiVersion".into(), json!({"type": "string"}));
                properties.insert("kind".into(), json!({"type": "string"}));
                properties.insert("metadata".into(), json!({"type": "object"}));
            }
            let schema = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft4)
                .should_validate_formats(true)
                .build(&to_json_schema(&root))
                .map_err(|e| format!("{}: schema does not compile: {e}", crd.spec.names.kind))?;
            kinds.insert(crd.spec.names.kind.clone(), Kind { schema, openapi });
        }
        Ok(Self { kinds, cel: kube::core::cel::Validator::new() })
    }

    /// The openAPIV3Schema of a Switchboard kind, as generated (for pruning and defaulting).
    pub fn schema(&self, kind: &str) -> Option<&Value> {
        self.kinds.get(kind).map(|k| &k.openapi)
    }

    /// The problems with one object of a Switchboard kind, or `None` for any other kind (a Secret
    /// in an example file).
    pub fn validate(&self, object: &Value) -> Option<Vec<Problem>> {
        let kind = object.get("kind").and_then(Value::as_str)?;
        let api_version = object.get("apiVersion").and_then(Value::as_str)?;
        if api_version != format!("{GROUP}/{VERSION}") {
            return if api_version.starts_with(GROUP) {
                Some(vec![problem("apiVersion", format!("unknown version {api_version:?}"))])
            } else {
                None
            };
        }
        let Some(schema) = self.kinds.get(kind) else {
            return Some(vec![problem("kind", format!("no kind {kind:?} in {GROUP}/{VERSION}"))]);
        };
        let errors: Vec<_> = schema.schema.iter_errors(object).collect();
        let mut problems: Vec<Problem> = errors.iter().map(schema_problem).collect();
        // Like the apiserver (apiextensions-apiserver's hasBlockingErr), skip CEL when a value has
        // the wrong type, a missing required field, a value outside its enum or over its length or
        // item bound: rules would run on values they were not written for.
        if errors.iter().any(blocks_cel) {
            problems.push(problem("<nil>", NOT_CHECKED.to_owned()));
        } else if let Err(errors) = self.cel.validate(&schema.openapi, object, None) {
            problems.extend(errors.into_iter().map(|e| Problem {
                path: e.field_path.clone(),
                message: e.message.clone(),
                rule: Some(e.rule.clone()).filter(|r| !r.is_empty()),
            }));
        }
        Some(problems)
    }
}

/// The apiserver's words when it skipped CEL rules.
pub const NOT_CHECKED: &str = "some validation rules were not checked because the object was invalid; \
     correct the existing errors to complete validation";

fn blocks_cel(error: &jsonschema::ValidationError<'_>) -> bool {
    use jsonschema::error::ValidationErrorKind as K;
    matches!(
        error.kind(),
        K::Type { .. }
            | K::Required { .. }
            | K::Enum { .. }
            | K::MaxLength { .. }
            | K::MaxItems { .. }
            | K::MaxProperties { .. }
    )
}

fn problem(path: &str, message: String) -> Problem {
    Problem { path: path.to_owned(), message, rule: None }
}

/// The openAPIV3Schema of a CRD's only version, as JSON.
pub fn openapi_schema(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Result<Value, Error> {
    let version = crd.spec.versions.first().ok_or("CRD has no version")?;
    let schema =
        version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).ok_or("no openAPIV3Schema")?;
    Ok(serde_json::to_value(schema)?)
}

/// Translates a structural Kubernetes schema into JSON Schema draft 4 with the same meaning.
pub fn to_json_schema(node: &Value) -> Value {
    let Some(object) = node.as_object() else { return node.clone() };
    let mut out = Map::new();
    for (keyword, value) in object {
        let translated = match keyword.as_str() {
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|props| props.iter().map(|(k, v)| (k.clone(), to_json_schema(v))).collect())
                    .unwrap_or_default(),
            ),
            "items" | "additionalProperties" | "not" => to_json_schema(value),
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value.as_array().map(|a| a.iter().map(to_json_schema).collect()).unwrap_or_default(),
            ),
            // CEL is checked separately, against the original schema; descriptions and
            // defaults change nothing about validity.
            "x-kubernetes-validations" | "description" | "default" => continue,
            _ => value.clone(),
        };
        out.insert(keyword.clone(), translated);
    }
    if object.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(type_)) = out.get("type")
    {
        let types = Value::Array(vec![Value::String(type_.clone()), Value::String("null".into())]);
        out.insert("type".into(), types);
    }
    let preserves_unknown = object.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if object.contains_key("properties") && !preserves_unknown {
        out.insert("additionalProperties".into(), Value::Bool(false));
    }
    if object.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        out.insert("uniqueItems".into(), Value::Bool(true));
    }
    Value::Object(out)
}

/// Words a JSON Schema error the way the apiserver reports field errors: a dotted path with
/// `[index]`, then what is wrong. An unknown field is reported at the field itself, as strict
/// field validation does.
fn schema_problem(error: &jsonschema::ValidationError<'_>) -> Problem {
    let path = dotted(error.instance_path());
    if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } = error.kind() {
        let fields: Vec<String> = unexpected.iter().map(|f| join(&path, f)).collect();
        return problem(&fields.join(", "), "field not declared in schema".to_owned());
    }
    // Our nullable translation makes every optional field's type a list with "null" in it;
    // name only the real type, as the apiserver does ("must be of type object").
    if let jsonschema::error::ValidationErrorKind::Type { kind } = error.kind() {
        let types: Vec<String> = match kind {
            jsonschema::error::TypeKind::Single(t) => vec![t.to_string()],
            jsonschema::error::TypeKind::Multiple(set) => {
                set.iter().filter(|t| *t != jsonschema::JsonType::Null).map(|t| t.to_string()).collect()
            }
        };
        return problem(&path, format!("must be of type {}", types.join(" or ")));
    }
    problem(&path, error.to_string())
}

fn dotted(location: &jsonschema::paths::Location) -> String {
    let mut path = String::new();
    for segment in location.segments() {
        match segment {
            jsonschema::paths::LocationSegment::Property(name) => path = join(&path, &name),
            jsonschema::paths::LocationSegment::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

/// Every YAML document in a file, as JSON values (empty documents skipped).
pub fn documents(text: &str) -> Result<Vec<Value>, Error> {
    use serde::Deserialize;
    let mut out = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}
