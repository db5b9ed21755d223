//! `labelSelector` (equality and set-based: `a=b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`,
//! `!a`) and `fieldSelector` (`path=value`, `path!=value` on any dotted field, which covers
//! `metadata.name` and `metadata.namespace`; the real apiserver allows only a few fields per kind).

use serde_json::Value;

use crate::status::ApiError;

#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// Splits on commas that are not inside parentheses.
fn terms(text: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(text[start..].trim());
    out.into_iter().filter(|t| !t.is_empty()).collect()
}

fn set(text: &str) -> Result<Vec<String>, ApiError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| ApiError::bad_request(format!("unable to parse requirement: {text:?}")))?;
    Ok(inner.split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect())
}

fn label_requirement(term: &str) -> Result<Requirement, ApiError> {
    if let Some((key, values)) = term.split_once(" notin ") {
        return Ok(Requirement::NotIn(key.trim().to_owned(), set(values)?));
    }
    if let Some((key, values)) = term.split_once(" in ") {
        return Ok(Requirement::In(key.trim().to_owned(), set(values)?));
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(key.trim().to_owned(), value.trim().to_owned()));
    }
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_owned()));
    }
    if term.contains([' ', '(', ')']) {
        return Err(ApiError::bad_request(format!("unable to parse requirement: {term:?}")));
    }
    Ok(Requirement::Exists(term.to_owned()))
}

impl Selector {
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let labels =
            terms(labels.unwrap_or_default()).into_iter().map(label_requirement).collect::<Result<_, _>>()?;
        let mut parsed = Vec::new();
        for term in terms(fields.unwrap_or_default()) {
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, true, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                )));
            };
            parsed.push((path.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(Self { labels, fields: parsed })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        let labels_match = self.labels.iter().all(|r| match r {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        labels_match
            && self.fields.iter().all(|(path, equal, value)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                let actual = match object.pointer(&pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (actual == *value) == *equal
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "sb", "tier": "gw"}}})
    }

    fn matches(labels: &str, fields: &str) -> bool {
        Selector::parse(Some(labels), Some(fields)).unwrap().matches(&object())
    }

    #[test]
    fn label_selectors() {
        assert!(matches("", ""));
        assert!(matches("app=sb", ""));
        assert!(matches("app==sb,tier", ""));
        assert!(!matches("app=other", ""));
        assert!(matches("app!=other,!missing", ""));
        assert!(matches("tier in (gw, api)", ""));
        assert!(!matches("tier notin (gw)", ""));
        assert!(matches("missing notin (x)", ""));
        assert!(!matches("missing", ""));
        assert!(Selector::parse(Some("tier in gw"), None).is_err());
    }

    #[test]
    fn field_selectors() {
        assert!(matches("", "metadata.name=a"));
        assert!(matches("", "metadata.name=a,metadata.namespace==ns"));
        assert!(!matches("", "metadata.name=b"));
        assert!(matches("", "metadata.name!=b"));
        assert!(Selector::parse(None, Some("metadata.name")).is_err());
    }
}
