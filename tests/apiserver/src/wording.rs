//! A validation problem in the apiserver's words, so what kubectl prints and what the operator
//! logs read as on a real cluster: `spec.backends[0].weight: Invalid value: 0:
//! spec.backends[0].weight in body should be greater than or equal to 1`, `spec.model: Required
//! value`, `spec.scope: Unsupported value: "User": supported values: "Key", "Route"`, and for
//! CEL rules the value's type (`Invalid value: "object": <rule message>`). The validator's own
//! messages (shared with crds/tests, whose fixtures match them) are translated here.

use serde_json::Value;

use crate::status::Cause;
use crate::validate::{NOT_CHECKED, Problem};

pub(crate) fn cause(problem: &Problem, object: &Value) -> Cause {
    let path = problem.path.as_str();
    let message = problem.message.as_str();
    if let Some(field) = message.strip_suffix("\" is a required property") {
        let field = field.trim_start_matches('"');
        let path = if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") };
        return Cause { field: path, reason: "FieldValueRequired", message: "Required value".into() };
    }
    let value = value_at(object, path);
    let shown = value.map_or("null".to_owned(), Value::to_string);
    if message == NOT_CHECKED {
        return invalid(path, format!("Invalid value: \"null\": {message}"));
    }
    if problem.rule.is_some() {
        return invalid(path, format!("Invalid value: \"{}\": {message}", type_name(value)));
    }
    if let Some((_, allowed)) = message.split_once(" is not one of ") {
        let allowed = allowed.replace(" or ", ", ");
        let message = format!("Unsupported value: {shown}: supported values: {allowed}");
        return Cause { field: path.to_owned(), reason: "FieldValueNotSupported", message };
    }
    let in_body = |rest: String| invalid(path, format!("Invalid value: {shown}: {path} in body {rest}"));
    let number = |n: &str| n.trim_end_matches(".0").to_owned();
    if let Some((_, n)) = message.split_once(" is less than the minimum of ") {
        return in_body(format!("should be greater than or equal to {}", number(n)));
    }
    if let Some((_, n)) = message.split_once(" is greater than the maximum of ") {
        return in_body(format!("should be less than or equal to {}", number(n)));
    }
    if let Some((_, pattern)) = message.split_once(" does not match ") {
        return in_body(format!("should match '{}'", pattern.trim_matches('"')));
    }
    let count = |n: &str| n.split(' ').next().unwrap_or_default().to_owned();
    if let Some((_, n)) = message.split_once(" has less than ") {
        return in_body(format!("should have at least {} items", count(n)));
    }
    if let Some((_, n)) = message.split_once(" has more than ") {
        return in_body(format!("should have at most {} items", count(n)));
    }
    if let Some((_, n)) = message.split_once(" is longer than ") {
        return in_body(format!("should be at most {} chars long", n.trim_end_matches(" characters")));
    }
    if let Some((_, n)) = message.split_once(" is shorter than ") {
        return in_body(format!("should be at least {} chars long", n.trim_end_matches(" characters")));
    }
    if let Some(format) = message.strip_prefix(&format!("{shown} is not a ")) {
        return in_body(format!("must be of type {}: {shown}", format.trim_matches('"')));
    }
    if let Some(type_) = message.strip_prefix("must be of type ") {
        return in_body(format!("must be of type {type_}: \"{}\"", type_name(value)));
    }
    invalid(path, format!("Invalid value: {shown}: {message}"))
}

fn invalid(path: &str, message: String) -> Cause {
    Cause { field: path.to_owned(), reason: "FieldValueInvalid", message }
}

/// The value a dotted field path (`spec.backends[0].weight`) names.
pub(crate) fn value_at<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = object;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (field, indexes) = part.split_once('[').map_or((part, ""), |(f, rest)| (f, rest));
        if !field.is_empty() {
            current = current.get(field)?;
        }
        for index in indexes.split('[').filter(|i| !i.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        Some(Value::Object(_)) => "object",
        Some(Value::Array(_)) => "array",
        Some(Value::String(_)) => "string",
        Some(Value::Number(n)) if n.is_f64() => "number",
        Some(Value::Number(_)) => "integer",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Null) | None => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn worded(path: &str, message: &str, rule: Option<&str>) -> (String, &'static str, String) {
        let object = json!({"spec": {"backends": [{"weight": 0}], "scope": "User", "at": "soon", "n": "x"}});
        let problem = Problem { path: path.into(), message: message.into(), rule: rule.map(Into::into) };
        let c = cause(&problem, &object);
        (c.field, c.reason, c.message)
    }

    #[test]
    fn problems_read_like_the_apiservers_field_errors() {
        let w = "spec.backends[0].weight";
        assert_eq!(
            worded(w, "0 is less than the minimum of 1.0", None).2,
            format!("Invalid value: 0: {w} in body should be greater than or equal to 1")
        );
        assert_eq!(
            worded("spec", "\"model\" is a required property", None),
            ("spec.model".into(), "FieldValueRequired", "Required value".into())
        );
        assert_eq!(
            worded("spec.scope", "\"User\" is not one of \"Key\", \"Route\" or \"KeyRoute\"", None).2,
            "Unsupported value: \"User\": supported values: \"Key\", \"Route\", \"KeyRoute\""
        );
        assert_eq!(
            worded("spec", "must differ", Some("self.a != self.b")).2,
            "Invalid value: \"object\": must differ"
        );
        assert_eq!(
            worded("spec.at", "\"soon\" is not a \"date-time\"", None).2,
            "Invalid value: \"soon\": spec.at in body must be of type date-time: \"soon\""
        );
        assert_eq!(
            worded("spec.n", "must be of type integer", None).2,
            "Invalid value: \"x\": spec.n in body must be of type integer: \"string\""
        );
        assert_eq!(
            worded("spec.backends", "[] has less than 1 item", None).2,
            "Invalid value: [{\"weight\":0}]: spec.backends in body should have at least 1 items"
        );
        assert_eq!(worded("<nil>", NOT_CHECKED, None).2, format!("Invalid value: \"null\": {NOT_CHECKED}"));
    }

    #[test]
    fn field_paths_name_values() {
        let object = json!({"spec": {"backends": [{"weight": 0}, {"weight": 2}], "m": [[1, 2]]}});
        assert_eq!(value_at(&object, "spec.backends[1].weight"), Some(&json!(2)));
        assert_eq!(value_at(&object, "spec.m[0][1]"), Some(&json!(2)));
        assert_eq!(value_at(&object, "spec.backends[2]"), None);
        assert_eq!(value_at(&object, ""), Some(&object));
    }
}
