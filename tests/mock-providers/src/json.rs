//! An order-preserving JSON value (`Json`) and the small text helpers both mocks share: word
//! counting, splitting a reply into stream pieces, splitting tool-call JSON into small pieces,
//! base64 decoding and example values built from a JSON Schema.
//!
//! Why not `serde_json::Value`: without serde_json's `preserve_order` feature (which would change
//! every crate in the workspace) its objects are sorted maps. Google's errors name map entries by
//! position (`parameters.properties[1].value`) and replies should list keys in the order the
//! providers document (`{"type":"message_start",...}`), so the mocks parse and write through this
//! type instead.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep their keys in document order (duplicates kept too).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Json, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// An object from `(key, value)` pairs, in that order.
    pub(crate) fn obj<K: Into<String>>(entries: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub(crate) fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    pub(crate) fn int(n: u64) -> Json {
        Json::Num(n.into())
    }

    /// The first value under `key`, if this is an object that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        self.as_obj()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn as_obj(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Obj(o) => Some(o),
            _ => None,
        }
    }

    pub(crate) fn as_arr(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(a) => Some(a),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Num(n) => n.as_f64(),
            _ => None,
        }
    }

    /// An integer: a JSON number without a fractional part (`3` or `3.0`).
    pub(crate) fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Num(n) => n.as_i64().or_else(|| {
                let f = n.as_f64()?;
                // Exact integral floats within i64 range only; the cast is then lossless.
                (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
            }),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// Compact JSON text.
    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::Num(n) => n.serialize(s),
            Json::Str(v) => s.serialize_str(v),
            Json::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
                serde_json::Number::from_f64(v).map(Json::Num).ok_or_else(|| E::custom("non-finite number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_none<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Json::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Number of whitespace-separated words in `s`: the unit both mocks count prompt tokens in.
pub(crate) fn count_words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Splits a reply into stream pieces: each word with the whitespace after it (leading whitespace
/// goes with the first word), so the pieces concatenate back to `s`.
pub(crate) fn word_pieces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let rest = &s[pos..];
        let lead = rest.len() - rest.trim_start().len();
        let word_end = rest[lead..].find(char::is_whitespace).map_or(rest.len(), |i| lead + i);
        let tail = &rest[word_end..];
        let end = word_end + (tail.len() - tail.trim_start().len());
        out.push(&rest[..end]);
        pos += end;
    }
    out
}

/// Splits tool-call JSON text into small pieces of 3, 4, 5, 3, 4, 5, … characters (never inside a
/// UTF-8 sequence), the way providers stream tool arguments: a translator that drops or reorders
/// a piece produces JSON that does not parse.
pub(crate) fn json_pieces(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut want = 3;
    let mut chars = 0;
    for (i, _) in s.char_indices() {
        if chars == want {
            out.push(&s[start..i]);
            start = i;
            chars = 0;
            want = if want == 5 { 3 } else { want + 1 };
        }
        chars += 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Decodes standard base64 (padding optional, no whitespace). `None` when it is not base64.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    base64_decode_with(s, false)
}

/// Decodes base64 accepting both the standard and the URL-safe alphabet, as protobuf's JSON
/// mapping does for `bytes` fields.
pub(crate) fn base64_decode_any(s: &str) -> Option<Vec<u8>> {
    base64_decode_with(s, true)
}

fn base64_decode_with(s: &str, url_safe: bool) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    if s.len() - trimmed.len() > 2 || trimmed.len() % 4 == 1 {
        return None;
    }
    let val = |c: u8| -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'-' if url_safe => 62,
            b'_' if url_safe => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for &c in chunk {
            acc = acc << 6 | val(c)?;
        }
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// A deterministic example value for a JSON Schema (or Gemini `Schema`) node, used as the
/// arguments of the tool calls the mocks make: `enum` → its first value, `const` → it,
/// strings → `"<name> sample"`, integers → `minimum` or 42, numbers → `minimum` or 3.5,
/// booleans → true, null → null, arrays → one item, objects → every property in schema order,
/// `anyOf`/`oneOf` → the first alternative. Type names are matched case-insensitively, so
/// Gemini's `STRING` works too. `depth` bounds recursive schemas.
pub(crate) fn example_from_schema(schema: &Json, name: &str, depth: u32) -> Json {
    if depth > 8 {
        return Json::Null;
    }
    if let Some(first) = schema.get("enum").and_then(Json::as_arr).and_then(|a| a.first()) {
        return first.clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf", "any_of"] {
        if let Some(first) = schema.get(key).and_then(Json::as_arr).and_then(|a| a.first()) {
            return example_from_schema(first, name, depth + 1);
        }
    }
    let ty = match schema.get("type") {
        Some(Json::Str(t)) => t.to_ascii_lowercase(),
        Some(Json::Arr(types)) => types
            .iter()
            .filter_map(Json::as_str)
            .find(|t| !t.eq_ignore_ascii_case("null"))
            .unwrap_or("null")
            .to_ascii_lowercase(),
        _ if schema.get("properties").is_some() => "object".to_owned(),
        _ if schema.get("items").is_some() => "array".to_owned(),
        _ => "string".to_owned(),
    };
    match ty.as_str() {
        "object" => {
            let props = schema.get("properties").and_then(Json::as_obj).unwrap_or_default();
            Json::Obj(props.iter().map(|(k, v)| (k.clone(), example_from_schema(v, k, depth + 1))).collect())
        }
        "array" => {
            let item = schema.get("items").map_or(Json::Null, |i| example_from_schema(i, name, depth + 1));
            Json::Arr(vec![item])
        }
        "integer" => schema
            .get("minimum")
            .and_then(Json::as_i64)
            .map_or_else(|| Json::int(42), |m| Json::Num(m.into())),
        "number" => schema
            .get("minimum")
            .cloned()
            .unwrap_or_else(|| serde_json::Number::from_f64(3.5).map_or(Json::Null, Json::Num)),
        "boolean" => Json::Bool(true),
        "null" => Json::Null,
        _ => Json::str(format!("{name} sample")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_round_trips() {
        let text = r#"{"b":1,"a":[true,null,"x",2.5],"c":{"z":{},"y":-3}}"#;
        let v = Json::parse(text.as_bytes()).unwrap();
        assert_eq!(v.to_text(), text);
        assert_eq!(v.get("c").and_then(|c| c.get("y")).and_then(Json::as_i64), Some(-3));
        assert_eq!(Json::parse(b"3.0").unwrap().as_i64(), Some(3));
        assert_eq!(Json::parse(b"3.5").unwrap().as_i64(), None);
    }

    #[test]
    fn pieces_concatenate() {
        let s = "  hello big\n world ";
        let p = word_pieces(s);
        assert_eq!(p, ["  hello ", "big\n ", "world "]);
        assert_eq!(p.concat(), s);
        let j = r#"{"city":"Zürich","n":[1,2]}"#;
        let p = json_pieces(j);
        assert_eq!(p.concat(), j);
        assert!(p.iter().all(|x| (1..=5).contains(&x.chars().count())));
        assert_eq!(p[..3], [r#"{"c"#, r#"ity""#, r#":"Zür"#]);
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("Zm9vYmFy").unwrap(), b"foobar");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zg").unwrap(), b"f");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("_-8").is_none());
        assert_eq!(base64_decode_any("_-8").unwrap(), [0xff, 0xef]);
    }

    #[test]
    fn examples_follow_the_schema() {
        let schema = Json::parse(
            br#"{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},
            "days":{"type":"INTEGER","minimum":1},"tags":{"type":"array","items":{"type":"string"}},
            "opt":{"type":["null","boolean"]},"x":{"anyOf":[{"type":"number"},{"type":"string"}]}}}"#,
        )
        .unwrap();
        assert_eq!(
            example_from_schema(&schema, "t", 0).to_text(),
            r#"{"city":"city sample","unit":"c","days":1,"tags":["tags sample"],"opt":true,"x":3.5}"#
        );
    }
}
