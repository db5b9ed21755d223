//! A JSON object whose values stay as raw text: parse once, touch a few fields, write it back.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;

/// A JSON object that keeps member order and leaves every value unparsed.
///
/// Parsing borrows from the input buffer, so holding a 100 kB prompt costs a small vector of
/// (key, slice) pairs rather than a tree of allocations.
#[derive(Debug, Default, Clone)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, RawValue>)>,
}

/// Why a body is not a JSON object.
#[derive(Debug)]
pub struct RawObjectError(pub String);

impl fmt::Display for RawObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RawObjectError {}

impl<'a> RawObject<'a> {
    /// Parses `bytes` as one JSON object.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, RawObjectError> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let object = de.deserialize_map(ObjectVisitor).map_err(describe)?;
        de.end().map_err(describe)?;
        Ok(object)
    }

    /// Parses a raw JSON value that must itself be an object.
    pub fn from_raw(raw: &'a RawValue) -> Result<Self, RawObjectError> {
        Self::parse(raw.get().as_bytes())
    }

    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    /// Reads a member as a typed value; `Ok(None)` when absent or `null`.
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RawObjectError> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get())
                .map(Some)
                .map_err(|err| RawObjectError(format!("'{key}': {}", strip_position(&err.to_string())))),
        }
    }

    /// Sets a member, replacing the first one with that key or appending it.
    /// Sets `key` to the JSON string `text` (escaped as JSON requires).
    pub fn set_string(&mut self, key: &'a str, text: &str) {
        self.set(key, raw_string(text));
    }

    pub fn set(&mut self, key: &'a str, value: Box<RawValue>) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = Cow::Owned(value),
            None => self.members.push((Cow::Borrowed(key), Cow::Owned(value))),
        }
    }

    /// The member names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(key, _)| key.as_ref())
    }

    pub fn remove(&mut self, key: &str) {
        self.members.retain(|(k, _)| k != key);
    }

    /// Writes the object back as compact JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let size = self.members.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>() + 2;
        let mut out = Vec::with_capacity(size);
        out.push(b'{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(&mut out, key);
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
        out
    }
}

/// Makes a raw JSON string value (quoted and escaped) from text.
pub(crate) fn raw_string(text: &str) -> Box<RawValue> {
    let mut out = Vec::with_capacity(text.len() + 2);
    write_json_string(&mut out, text);
    // The bytes were produced by serde_json's own string escaper, so they are valid JSON.
    RawValue::from_string(String::from_utf8(out).unwrap_or_default()).unwrap_or_else(|_| null())
}

pub(crate) fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn describe(err: serde_json::Error) -> RawObjectError {
    RawObjectError(format!("the request body is not valid JSON: {err}"))
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = RawObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key.0, Cow::Borrowed(value)));
        }
        Ok(RawObject { members })
    }
}

/// A key that borrows from the input unless it contains escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_unknown_fields_in_order() {
        let body = br#"{"model":"a","x_new_field":{"deep":[1,2,{"k":"v"}]},"n":2,"esc\"aped":"\u00e9"}"#;
        let obj = RawObject::parse(body).unwrap();
        assert_eq!(obj.to_vec(), body.to_vec());
    }

    #[test]
    fn set_replaces_in_place_and_appends() {
        let mut obj = RawObject::parse(br#"{"model":"public","stream":true}"#).unwrap();
        obj.set("model", raw_string("upstream-\"id\""));
        obj.set("extra", null());
        assert_eq!(obj.to_vec(), br#"{"model":"upstream-\"id\"","stream":true,"extra":null}"#.to_vec());
    }

    #[test]
    fn rejects_non_objects_and_trailing_garbage() {
        assert!(RawObject::parse(b"[1,2]").is_err());
        assert!(RawObject::parse(b"{\"a\":1} x").is_err());
        assert!(RawObject::parse(b"{\"a\":").is_err());
    }

    #[test]
    fn typed_reads_report_the_field() {
        let obj = RawObject::parse(br#"{"stream":"yes","n":null}"#).unwrap();
        let err = obj.get_as::<bool>("stream").unwrap_err();
        assert!(err.0.starts_with("'stream': invalid type"), "{}", err.0);
        assert_eq!(obj.get_as::<u32>("n").unwrap(), None);
    }
}
