//! JSON Schema (what OpenAI clients send) → Gemini's `Schema` object, an OpenAPI 3.0 subset.
//!
//! Reference: <https://ai.google.dev/api/caching#Schema>. The Gemini API parses a schema into a
//! proto and refuses every field it does not know (`Unknown name "additionalProperties"`), so
//! the conversion keeps a list of known fields and decides for each other keyword:
//! - converted: `type` (upper case; `["x", "null"]` → `x` + `nullable`), `const` → `enum`
//!   `[value]`, `oneOf` → `anyOf` (the model answers one alternative either way), `anyOf` with a
//!   `{"type": "null"}` alternative → `nullable`, a single-schema `allOf` merged into its parent,
//!   local `$ref`s (`#/$defs/…`, `#/definitions/…`) inlined;
//! - dropped (constraints the model is told nothing about, the answer is still valid JSON):
//!   `additionalProperties`, `$schema`, `$id`, `$comment`, `$defs`, `definitions`, `examples`,
//!   `patternProperties`, `multipleOf`, `exclusiveMinimum`/`exclusiveMaximum`, `uniqueItems`,
//!   `not`, `if`/`then`/`else` and any other unknown keyword, and `format`s Gemini refuses
//!   (it takes `enum` and `date-time` for strings, `float`/`double`, `int32`/`int64`);
//!   `required` names that are not properties;
//! - refused, with the schema path: what Gemini cannot express and dropping would change the
//!   meaning: a schema without a type (any value), an object without properties (a map), an
//!   array without `items`, tuple `items`, a `null`-only type, several non-null types,
//!   non-string `enum`/`const` values, `allOf` of several schemas, remote or recursive `$ref`s,
//!   `$ref`s that expand the schema more than 8 times its size.

use serde_json::{Map, Value};

/// Nesting deeper than this is refused (Gemini limits nesting too).
const MAX_DEPTH: usize = 48;

/// How much inlining `$ref`s may add to a schema: this many times its own size (see
/// [`weight`]), and at least [`MIN_REF_BUDGET`]. Refusing only recursion is not enough: a chain
/// of definitions each using the next twice doubles at every link, so a few hundred bytes
/// would expand into gigabytes.
const REF_EXPANSION: usize = 8;
const MIN_REF_BUDGET: usize = 256 * 1024;

/// Keywords copied as they are (the values are checked where Gemini is strict).
const KEPT_STRINGS: [&str; 3] = ["title", "description", "pattern"];
const KEPT_COUNTS: [&str; 6] =
    ["minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"];
const KEPT_NUMBERS: [&str; 2] = ["minimum", "maximum"];

/// Converts a root schema. `Ok(None)`: the schema asks for an object without properties (or is
/// empty), which Gemini takes as "no schema" (a function without parameters).
pub(super) fn convert_root(schema: &Value, path: &str) -> Result<Option<Value>, String> {
    if schema.is_null() || schema.as_object().is_some_and(|o| no_properties_object(o) || o.is_empty()) {
        return Ok(None);
    }
    let budget = weight(schema).saturating_mul(REF_EXPANSION).max(MIN_REF_BUDGET);
    let mut converter = Converter { root: schema, refs: Vec::new(), budget };
    converter.node(schema, path, 0).map(|node| Some(Value::Object(node)))
}

/// `{"type": "object"}` with no (or empty) `properties` and nothing else that gives it a shape.
fn no_properties_object(o: &Map<String, Value>) -> bool {
    o.get("type").and_then(Value::as_str) == Some("object")
        && o.get("properties").and_then(Value::as_object).is_none_or(Map::is_empty)
        && !["anyOf", "oneOf", "allOf", "$ref"].iter().any(|k| o.contains_key(*k))
}

struct Converter<'a> {
    root: &'a Value,
    /// The `$ref`s being inlined (a repeat is recursion).
    refs: Vec<String>,
    /// What inlining may still copy, in [`weight`] units.
    budget: usize,
}

impl Converter<'_> {
    fn node(&mut self, schema: &Value, path: &str, depth: usize) -> Result<Map<String, Value>, String> {
        if depth > MAX_DEPTH {
            return Err(format!("{path}: the schema is nested too deeply"));
        }
        let Some(s) = schema.as_object() else {
            return Err(format!("{path}: a schema must be an object"));
        };
        if let Some(reference) = s.get("$ref") {
            return self.reference(reference, s, path, depth);
        }
        if let Some(all_of) = s.get("allOf") {
            return self.all_of(all_of, s, path, depth);
        }
        let mut out = Map::new();
        let mut nullable = s.get("nullable").and_then(Value::as_bool).unwrap_or(false);

        // The type, or the alternatives.
        let mut ty = match s.get("type") {
            None => None,
            Some(Value::String(t)) if t == "null" => {
                return Err(format!(
                    "{path}.type: a schema of type null alone is not supported by this backend"
                ));
            }
            Some(Value::String(t)) => Some(gemini_type(t, path)?),
            Some(Value::Array(types)) => {
                let mut kept = Vec::new();
                for t in types {
                    match t.as_str() {
                        Some("null") => nullable = true,
                        Some(t) => kept.push(t),
                        None => return Err(format!("{path}.type: not a type name")),
                    }
                }
                match kept.as_slice() {
                    [one] => Some(gemini_type(one, path)?),
                    _ => {
                        return Err(format!(
                            "{path}.type: a list of several types is not supported by this backend (use anyOf)"
                        ));
                    }
                }
            }
            Some(_) => return Err(format!("{path}.type: not a type name")),
        };
        let alternatives = match (s.get("anyOf"), s.get("oneOf")) {
            (Some(_), Some(_)) => {
                return Err(format!("{path}: anyOf and oneOf together are not supported by this backend"));
            }
            (Some(list), None) => Some(("anyOf", list)),
            (None, Some(list)) => Some(("oneOf", list)),
            (None, None) => None,
        };
        if let Some((keyword, list)) = alternatives {
            let Some(list) = list.as_array() else { return Err(format!("{path}.{keyword}: not a list")) };
            let mut converted = Vec::with_capacity(list.len());
            for (i, alternative) in list.iter().enumerate() {
                if alternative.get("type").and_then(Value::as_str) == Some("null") {
                    nullable = true;
                    continue;
                }
                converted.push(Value::Object(self.node(
                    alternative,
                    &format!("{path}.{keyword}[{i}]"),
                    depth + 1,
                )?));
            }
            match converted.len() {
                0 => return Err(format!("{path}.{keyword}: no alternative other than null")),
                // `anyOf: [X, {"type": "null"}]` (an optional field): X, nullable.
                1 if ty.is_none() => {
                    if let Some(Value::Object(only)) = converted.pop() {
                        out = only;
                        ty = out.get("type").and_then(Value::as_str).map(str::to_owned);
                    }
                }
                _ => {
                    out.insert("anyOf".into(), Value::Array(converted));
                }
            }
        }

        // Enum values: Gemini's `enum` is a list of strings.
        let mut values = None;
        if let Some(value) = s.get("const") {
            values = Some(vec![enum_value(value, &format!("{path}.const"))?]);
        } else if let Some(list) = s.get("enum") {
            let Some(list) = list.as_array() else { return Err(format!("{path}.enum: not a list")) };
            let mut strings = Vec::with_capacity(list.len());
            for (i, value) in list.iter().enumerate() {
                if value.is_null() {
                    nullable = true;
                    continue;
                }
                strings.push(enum_value(value, &format!("{path}.enum[{i}]"))?);
            }
            values = Some(strings);
        }

        // No type: inferred where the schema says what it is.
        if ty.is_none() && !out.contains_key("anyOf") {
            ty = if s.contains_key("properties") {
                Some("OBJECT".into())
            } else if s.contains_key("items") {
                Some("ARRAY".into())
            } else if values.is_some() {
                Some("STRING".into())
            } else {
                return Err(format!(
                    "{path}: a schema without a type (any value) is not supported by this backend"
                ));
            };
        }
        if let Some(ty) = &ty {
            out.insert("type".into(), Value::String(ty.clone()));
        }
        if let Some(values) = values {
            if ty.as_deref() != Some("STRING") {
                return Err(format!("{path}.enum: this backend accepts enum values for strings only"));
            }
            out.insert("enum".into(), Value::Array(values.into_iter().map(Value::String).collect()));
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }

        for key in KEPT_STRINGS {
            if let Some(Value::String(text)) = s.get(key) {
                out.insert(key.into(), Value::String(text.clone()));
            }
        }
        for key in KEPT_COUNTS {
            if let Some(count) = s.get(key).and_then(Value::as_u64) {
                out.insert(key.into(), count.into());
            }
        }
        for key in KEPT_NUMBERS {
            if let Some(number @ Value::Number(_)) = s.get(key) {
                out.insert(key.into(), number.clone());
            }
        }
        if let (Some(Value::String(format)), Some(ty)) = (s.get("format"), ty.as_deref())
            && supported_format(ty, format)
        {
            out.insert("format".into(), Value::String(format.clone()));
        }
        if let Some(default) = s.get("default") {
            out.insert("default".into(), default.clone());
        }

        match ty.as_deref() {
            // Keys taken from an inlined alternative already converted.
            Some("OBJECT") if !s.contains_key("properties") && out.contains_key("properties") => {}
            Some("OBJECT") => {
                let properties = s.get("properties").and_then(Value::as_object).filter(|p| !p.is_empty());
                let Some(properties) = properties else {
                    return Err(format!(
                        "{path}: an object without properties (a map) is not supported by this backend"
                    ));
                };
                let mut converted = Map::new();
                for (name, property) in properties {
                    converted.insert(
                        name.clone(),
                        Value::Object(self.node(
                            property,
                            &format!("{path}.properties.{name}"),
                            depth + 1,
                        )?),
                    );
                }
                let required: Vec<Value> = s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|name| name.as_str().is_some_and(|n| properties.contains_key(n)))
                    .cloned()
                    .collect();
                out.insert("properties".into(), Value::Object(converted));
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            Some("ARRAY") => match s.get("items") {
                Some(items @ Value::Object(_)) => {
                    out.insert(
                        "items".into(),
                        Value::Object(self.node(items, &format!("{path}.items"), depth + 1)?),
                    );
                }
                Some(_) => {
                    return Err(format!("{path}.items: tuple items are not supported by this backend"));
                }
                // Keys taken from an inlined alternative already converted.
                None if out.contains_key("items") => {}
                None => {
                    return Err(format!("{path}: an array without items is not supported by this backend"));
                }
            },
            _ => {}
        }
        Ok(out)
    }

    /// A local `$ref`, inlined; keywords next to it (a description) apply over the target's.
    fn reference(
        &mut self,
        reference: &Value,
        s: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, String> {
        let reference = reference.as_str().unwrap_or_default();
        let local = reference.starts_with("#/$defs/") || reference.starts_with("#/definitions/");
        let target = if local { self.root.pointer(&reference[1..]) } else { None };
        let Some(target) = target else {
            return Err(format!(
                "{path}.$ref: only references to #/$defs or #/definitions of this schema are supported by this backend ({reference})"
            ));
        };
        if self.refs.iter().any(|r| r == reference) {
            return Err(format!(
                "{path}.$ref: a recursive schema ({reference}) is not supported by this backend"
            ));
        }
        let Some(budget) = self.budget.checked_sub(weight(target)) else {
            return Err(format!(
                "{path}.$ref: the references expand the schema more than {REF_EXPANSION} times its size, which is not supported by this backend"
            ));
        };
        self.budget = budget;
        let mut merged = target.clone();
        if let Value::Object(merged) = &mut merged {
            for (key, value) in s {
                if key != "$ref" {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        self.refs.push(reference.to_owned());
        let result = self.node(&merged, path, depth + 1);
        self.refs.pop();
        result
    }

    /// `allOf` of one schema: that schema with the keywords next to it.
    fn all_of(
        &mut self,
        all_of: &Value,
        s: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Map<String, Value>, String> {
        let Some([only]) = all_of.as_array().map(Vec::as_slice) else {
            return Err(format!("{path}.allOf: allOf of several schemas is not supported by this backend"));
        };
        let Value::Object(only) = only else {
            return Err(format!("{path}.allOf[0]: a schema must be an object"));
        };
        let mut merged = only.clone();
        for (key, value) in s {
            if key != "allOf" {
                merged.insert(key.clone(), value.clone());
            }
        }
        self.node(&Value::Object(merged), path, depth + 1)
    }
}

/// About the size of `value` as JSON text: what copying it costs.
fn weight(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(weight).fold(2, usize::saturating_add),
        Value::Object(members) => {
            members.iter().map(|(key, value)| key.len() + 3 + weight(value)).fold(2, usize::saturating_add)
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
    }
}

fn gemini_type(name: &str, path: &str) -> Result<String, String> {
    match name {
        "string" | "number" | "integer" | "boolean" | "array" | "object" => Ok(name.to_ascii_uppercase()),
        _ => Err(format!("{path}.type: unknown type {name}")),
    }
}

fn enum_value(value: &Value, path: &str) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        _ => Err(format!("{path}: this backend accepts enum values for strings only ({value})")),
    }
}

/// The formats Gemini accepts per type (it refuses the request for any other).
fn supported_format(ty: &str, format: &str) -> bool {
    matches!(
        (ty, format),
        ("STRING", "enum" | "date-time") | ("NUMBER", "float" | "double") | ("INTEGER", "int32" | "int64")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn convert(schema: Value) -> Result<Option<Value>, String> {
        convert_root(&schema, "s")
    }

    #[test]
    fn types_are_upper_case_and_known_keywords_kept() {
        let out = convert(json!({
            "type": "object",
            "title": "T",
            "description": "a thing",
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 9, "pattern": "^a", "format": "date-time"},
                "n": {"type": "integer", "minimum": 0, "maximum": 5, "format": "int32", "default": 1},
                "tags": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1, "maxItems": 3},
                "ok": {"type": "boolean"}
            },
            "required": ["name", "ghost"]
        }))
        .unwrap()
        .unwrap();
        assert_eq!(
            out,
            json!({
                "type": "OBJECT", "title": "T", "description": "a thing",
                "properties": {
                    "name": {"type": "STRING", "minLength": 1, "maxLength": 9, "pattern": "^a", "format": "date-time"},
                    "n": {"type": "INTEGER", "minimum": 0, "maximum": 5, "format": "int32", "default": 1},
                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": 1, "maxItems": 3},
                    "ok": {"type": "BOOLEAN"}
                },
                "required": ["name"]
            })
        );
    }

    #[test]
    fn refused_keywords_are_dropped() {
        let out = convert(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x", "$comment": "c",
            "type": "object", "additionalProperties": false,
            "patternProperties": {"^x": {"type": "string"}},
            "properties": {"a": {"type": "number", "examples": [1], "exclusiveMinimum": 0, "multipleOf": 2}},
            "unevaluatedProperties": false
        }))
        .unwrap()
        .unwrap();
        assert_eq!(out, json!({"type": "OBJECT", "properties": {"a": {"type": "NUMBER"}}}));
    }

    #[test]
    fn nullable_from_type_lists_any_of_and_enum() {
        let out = convert(json!({"type": "object", "properties": {
            "a": {"type": ["string", "null"], "description": "maybe"},
            "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "opt"},
            "c": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "d": {"oneOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "null"}]},
            "e": {"enum": ["x", "y", null]},
            "f": {"const": "only"}
        }}))
        .unwrap()
        .unwrap();
        assert_eq!(
            out["properties"],
            json!({
                "a": {"type": "STRING", "nullable": true, "description": "maybe"},
                "b": {"type": "INTEGER", "nullable": true, "description": "opt"},
                "c": {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]},
                "d": {"anyOf": [{"type": "INTEGER"}, {"type": "BOOLEAN"}], "nullable": true},
                "e": {"type": "STRING", "enum": ["x", "y"], "nullable": true},
                "f": {"type": "STRING", "enum": ["only"]}
            })
        );
    }

    #[test]
    fn local_refs_and_single_all_of_are_inlined() {
        let out = convert(json!({
            "type": "object",
            "$defs": {"City": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
            "definitions": {"Unit": {"type": "string", "enum": ["c", "f"]}},
            "properties": {
                "city": {"$ref": "#/$defs/City", "description": "where"},
                "unit": {"allOf": [{"$ref": "#/definitions/Unit"}], "description": "which"},
                "more": {"type": "array", "items": {"$ref": "#/$defs/City"}}
            }
        }))
        .unwrap()
        .unwrap();
        let city =
            json!({"type": "OBJECT", "properties": {"name": {"type": "STRING"}}, "required": ["name"]});
        assert_eq!(out["properties"]["more"]["items"], city);
        assert_eq!(out["properties"]["city"]["description"], "where");
        assert_eq!(
            out["properties"]["unit"],
            json!({"type": "STRING", "enum": ["c", "f"], "description": "which"})
        );
    }

    #[test]
    fn what_gemini_cannot_express_is_refused_with_the_path() {
        for (schema, words) in [
            (json!({"type": "object", "properties": {"a": {}}}), "s.properties.a: a schema without a type"),
            (
                json!({"type": "object", "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"}}}}),
                "s.properties.m: an object without properties",
            ),
            (json!({"type": "array"}), "s: an array without items"),
            (json!({"type": "array", "items": [{"type": "string"}]}), "s.items: tuple items"),
            (json!({"type": "null"}), "s.type: a schema of type null"),
            (json!({"type": ["string", "integer"]}), "s.type: a list of several types"),
            (
                json!({"type": "integer", "enum": [1, 2]}),
                "s.enum[0]: this backend accepts enum values for strings only",
            ),
            (json!({"type": "object", "properties": {"v": {"const": 3}}}), "s.properties.v.const"),
            (json!({"allOf": [{"type": "string"}, {"minLength": 1}]}), "s.allOf: allOf of several"),
            (json!({"$ref": "https://example.com/s.json"}), "s.$ref: only references"),
            (
                json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}, "$ref": "#/$defs/N"}),
                "s.properties.next.$ref: a recursive schema",
            ),
            (json!({"anyOf": [{"type": "null"}]}), "s.anyOf: no alternative other than null"),
            (
                json!({"type": "object", "properties": {"t": {"type": "tuple"}}}),
                "s.properties.t.type: unknown type",
            ),
        ] {
            let err = convert(schema.clone()).unwrap_err();
            assert!(err.starts_with(words), "{schema}: {err}");
        }
    }

    #[test]
    fn an_object_without_properties_at_the_root_is_no_schema() {
        assert_eq!(convert(json!({"type": "object", "properties": {}})), Ok(None));
        assert_eq!(convert(json!({"type": "object", "additionalProperties": false})), Ok(None));
        assert_eq!(convert(json!({})), Ok(None));
        assert_eq!(convert(Value::Null), Ok(None));
    }
}
