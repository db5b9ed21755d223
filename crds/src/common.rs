//! Types shared by several kinds: references to Secrets and to objects in the same namespace, and
//! the Gateway API duration string.
//!
//! Every reference here is namespace-local on purpose: v1alpha1 has no cross-namespace
//! references, so a namespace's owner never has to reason about grants (see docs/crds.md).

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// A Kubernetes object name (RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`).
/// `kubectl` and the apiserver enforce the same rule on `metadata.name`; repeating it here rejects
/// a misspelt reference at `kubectl apply` instead of as a `RefNotFound` condition later.
pub(crate) const OBJECT_NAME_PATTERN: &str =
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// A key of a Secret's `data` (what `kubectl create secret generic --from-literal=KEY=...` allows).
pub(crate) const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// A public model name: no whitespace (any Unicode space separator) and no control characters,
/// the same rule the gateway's config validator applies to `routes[].model`.
pub(crate) const MODEL_NAME_PATTERN: &str = r"^[^\p{Z}\p{Cc}]+$";

/// An amount of US dollars as a decimal string: up to 12 digits and at most 6 decimals, the form
/// the gateway's config parses exactly (`parse_usd`); a string, because a float would round.
pub(crate) const USD_PATTERN: &str = r"^[0-9]{1,12}(\.[0-9]{1,6})?$";

/// The longest string [`USD_PATTERN`] matches (12 digits, a point, 6 decimals).
pub(crate) const USD_MAX_LENGTH: u32 = 19;

/// A CEL rule for an amount that must be more than 0: some digit is not a zero.
pub(crate) const POSITIVE_USD_RULE: &str = "self.matches('[1-9]')";

/// GEP-2257 (Gateway API) durations: one to four `<integer><unit>` parts.
pub const DURATION_PATTERN: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// A CEL rule comparing a Duration field, e.g. `duration_rule(">= duration('1s')")`.
///
/// The rule only runs `duration()` on values that match the pattern: the apiserver evaluates CEL
/// even when a pattern failed, and `duration('1d')` would add an evaluation error on top of the
/// pattern error the user needs to see.
pub(crate) fn duration_rule(comparison: &str) -> String {
    format!("!self.matches('{DURATION_PATTERN}') || duration(self) {comparison}")
}

/// A key in a Secret in the same namespace as the object that refers to it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret, in the same namespace as this object. Example: `openai-credentials`.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,
    /// Key within the Secret's `data`. Example: `apiKey`.
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub key: String,
}

/// A reference to another object of the kind the field names, in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// Name of the object, in the same namespace as this one. Cross-namespace references are not
    /// supported in v1alpha1.
    #[schemars(length(min = 1, max = 253), pattern(OBJECT_NAME_PATTERN))]
    pub name: String,
}

/// A duration in the Gateway API format (GEP-2257): one to four parts of up to five digits followed
/// by a unit, `h`, `m`, `s` or `ms`. Examples: `30s`, `1h30m`, `1500ms`.
///
/// Deserializing accepts any string: the apiserver has already checked the pattern, and an operator
/// that cannot even read an object cannot report what is wrong with it. Call [`Duration::parse`]
/// where the value is used.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(transparent)]
pub struct Duration(String);

impl Duration {
    /// Wraps a duration string as written; see [`Duration::parse`] for the value.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text as written in the object.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The duration, interpreted like Go's `time.ParseDuration` (as GEP-2257 requires: repeated
    /// units add up, `1m30s` is 90 seconds, leading zeroes are decimal).
    pub fn parse(&self) -> Result<std::time::Duration, InvalidDuration> {
        let invalid = || InvalidDuration(self.0.clone());
        let mut rest = self.0.as_str();
        let mut total = std::time::Duration::ZERO;
        let mut parts = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return Err(invalid());
            }
            let (number, tail) = rest.split_at(digits);
            let value: u64 = number.parse().map_err(|_| invalid())?;
            // `ms` before `m`: a minute unit followed by `s` is not a part of its own.
            let (part, tail) = if let Some(tail) = tail.strip_prefix("ms") {
                (std::time::Duration::from_millis(value), tail)
            } else if let Some(tail) = tail.strip_prefix('h') {
                (std::time::Duration::from_secs(value * 3600), tail)
            } else if let Some(tail) = tail.strip_prefix('m') {
                (std::time::Duration::from_secs(value * 60), tail)
            } else if let Some(tail) = tail.strip_prefix('s') {
                (std::time::Duration::from_secs(value), tail)
            } else {
                return Err(invalid());
            };
            parts += 1;
            if parts > 4 {
                return Err(invalid());
            }
            total += part;
            rest = tail;
        }
        if parts == 0 {
            return Err(invalid());
        }
        Ok(total)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A string that is not a GEP-2257 duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidDuration(pub String);

impl fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a duration like \"30s\", \"1h30m\" or \"500ms\"", self.0)
    }
}

impl std::error::Error for InvalidDuration {}

impl JsonSchema for Duration {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // maxLength bounds the CEL cost estimate of rules that parse the value (`duration(self)`):
        // four parts of five digits and a two-letter unit.
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            "maxLength": 28,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, InvalidDuration};
    use std::time::Duration as Std;

    #[test]
    fn durations_parse_like_go() -> Result<(), InvalidDuration> {
        assert_eq!(Duration::new("30s").parse()?, Std::from_secs(30));
        assert_eq!(Duration::new("1h30m").parse()?, Std::from_secs(5400));
        assert_eq!(Duration::new("1500ms").parse()?, Std::from_millis(1500));
        assert_eq!(Duration::new("1m1ms").parse()?, Std::from_millis(60_001));
        assert_eq!(Duration::new("0s").parse()?, Std::ZERO);
        assert_eq!(Duration::new("00060m").parse()?, Std::from_secs(3600));
        assert_eq!(Duration::new("1h1h").parse()?, Std::from_secs(7200));
        assert_eq!(Duration::new("1h2m3s4ms").parse()?, Std::from_millis(3_723_004));
        assert_eq!(Duration::new("99999h").parse()?, Std::from_secs(99_999 * 3600));
        Ok(())
    }

    #[test]
    fn non_gep_2257_durations_are_refused() {
        for bad in ["", "1", "s", "1d", "1.5s", "-1s", "1us", "100000s", "1h2m3s4ms5s", " 1s", "1s ", "1S"] {
            assert_eq!(Duration::new(bad).parse(), Err(InvalidDuration(bad.to_owned())), "{bad:?}");
        }
    }
}
