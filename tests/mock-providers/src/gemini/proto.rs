//! The first of Google's two validation layers: parsing JSON into the request protos. Every
//! field of the request shapes is described in `shape`; the walker here reports, like Google's
//! front end, every unknown name (`Invalid JSON payload received. Unknown name "foo" at
//! 'contents[0]': Cannot find field.`) and every value of the wrong type (`Invalid value at 'contents[0].role'
//! (TYPE_STRING), 5`). Paths use the proto (snake_case) field names; map entries are named by
//! position (`properties[1].value`), as Google's parser does. Both spellings of a field name
//! (`systemInstruction` and `system_instruction`) are accepted, as proto3 JSON parsing does.

use crate::json::{Json, base64_decode_any};

pub(crate) use super::shape::{
    BATCH_EMBED_CONTENTS_REQUEST, COUNT_TOKENS_REQUEST, EMBED_CONTENT_REQUEST, GENERATE_CONTENT_REQUEST,
    PART_DATA, PREDICT_REQUEST,
};

/// Which API a request came to: a few fields exist on only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// The Gemini Developer API (`generativelanguage.googleapis.com/v1beta`).
    Gemini,
    /// Vertex AI (`aiplatform.googleapis.com/v1`).
    Vertex,
}

impl Api {
    fn package(self) -> &'static str {
        match self {
            Api::Gemini => "google.ai.generativelanguage.v1beta",
            Api::Vertex => "google.cloud.aiplatform.v1",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Bool,
    Int32,
    Int64,
    Float,
    Bytes,
    Enum(&'static EnumDesc),
    Msg(&'static Msg),
    /// `google.protobuf.Struct`: a JSON object.
    Struct,
    /// `google.protobuf.Value` (or a message the mock does not inspect): any JSON.
    Value,
    /// `map<string, Msg>`
    Map(&'static Msg),
    /// `map<string, string>`
    StrMap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Avail {
    Both,
    Gemini,
    Vertex,
}

#[derive(Debug)]
pub(crate) struct Field {
    /// The lowerCamelCase JSON name; the snake_case proto name is derived from it.
    pub(crate) json: &'static str,
    pub(crate) kind: Kind,
    pub(crate) repeated: bool,
    pub(crate) avail: Avail,
}

#[derive(Debug)]
pub(crate) struct Msg {
    pub(crate) name: &'static str,
    pub(crate) fields: &'static [Field],
}

#[derive(Debug)]
pub(crate) struct EnumDesc {
    pub(crate) name: &'static str,
    pub(crate) values: &'static [&'static str],
    /// Accept any letter case (`"object"` for `OBJECT`): the Gemini API takes lowercase schema
    /// types, which OpenAPI/JSON Schema tools send.
    pub(crate) any_case: bool,
}

// ---- the walker -------------------------------------------------------------------------

/// One problem: the field path (for `fieldViolations`) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) field: String,
    pub(crate) description: String,
}

/// `systemInstruction` → `system_instruction`; `$ref` stays `$ref`.
pub(crate) fn snake(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 4);
    for c in json.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks `v` against message `msg`; returns every violation found.
pub(crate) fn check(v: &Json, msg: &'static Msg, api: Api) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut w = Walker { api, out: &mut out };
    w.message(v, msg, "", 0);
    out
}

struct Walker<'o> {
    api: Api,
    out: &'o mut Vec<Violation>,
}

impl Walker<'_> {
    fn invalid(&mut self, path: &str, ty: &str, v: &Json) {
        self.out.push(Violation {
            field: path.to_owned(),
            description: format!("Invalid value at '{path}' ({ty}), {}", v.to_text()),
        });
    }

    fn message(&mut self, v: &Json, msg: &'static Msg, path: &str, depth: u32) {
        let Some(entries) = v.as_obj() else {
            let ty = format!("type.googleapis.com/{}.{}", self.api.package(), msg.name);
            self.invalid(path, &ty, v);
            return;
        };
        if depth > 100 {
            self.out.push(Violation {
                field: path.to_owned(),
                description: "Invalid JSON payload received. Too deeply nested.".into(),
            });
            return;
        }
        for (key, value) in entries {
            let field = msg.fields.iter().find(|fd| {
                let available = match fd.avail {
                    Avail::Both => true,
                    Avail::Gemini => self.api == Api::Gemini,
                    Avail::Vertex => self.api == Api::Vertex,
                };
                available && (fd.json == key || snake(fd.json) == *key)
            });
            let Some(field) = field else {
                let at = if path.is_empty() { String::new() } else { format!(" at '{path}'") };
                self.out.push(Violation {
                    field: path.to_owned(),
                    description: format!(
                        "Invalid JSON payload received. Unknown name \"{key}\"{at}: Cannot find field."
                    ),
                });
                continue;
            };
            if value.is_null() {
                continue; // proto3 JSON: null means "not set".
            }
            let fpath =
                if path.is_empty() { snake(field.json) } else { format!("{path}.{}", snake(field.json)) };
            if field.repeated {
                match value.as_arr() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            self.value(item, field.kind, &format!("{fpath}[{i}]"), depth);
                        }
                    }
                    None => self.value(value, field.kind, &fpath, depth),
                }
            } else if value.as_arr().is_some() && !matches!(field.kind, Kind::Value) {
                let at = if path.is_empty() { String::new() } else { format!(" at '{path}'") };
                self.out.push(Violation {
                    field: fpath,
                    description: format!(
                        "Invalid JSON payload received. Unknown name \"{key}\"{at}: Proto field is not repeating, cannot start list."
                    ),
                });
            } else {
                self.value(value, field.kind, &fpath, depth);
            }
        }
    }

    fn value(&mut self, v: &Json, kind: Kind, path: &str, depth: u32) {
        match kind {
            Kind::Str => {
                if v.as_str().is_none() {
                    self.invalid(path, "TYPE_STRING", v);
                }
            }
            Kind::Bool => {
                if v.as_bool().is_none() {
                    self.invalid(path, "TYPE_BOOL", v);
                }
            }
            // proto3 JSON takes integers as numbers or decimal strings.
            Kind::Int32 | Kind::Int64 => {
                let ok = v.as_i64().is_some() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok());
                if !ok {
                    self.invalid(
                        path,
                        if matches!(kind, Kind::Int32) { "TYPE_INT32" } else { "TYPE_INT64" },
                        v,
                    );
                }
            }
            Kind::Float => {
                let ok = v.as_f64().is_some() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok());
                if !ok {
                    self.invalid(path, "TYPE_FLOAT", v);
                }
            }
            Kind::Bytes => match v.as_str() {
                Some(s) if base64_decode_any(s).is_some() => {}
                Some(s) => self.out.push(Violation {
                    field: path.to_owned(),
                    description: format!(
                        "Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{s}\""
                    ),
                }),
                None => self.invalid(path, "TYPE_BYTES", v),
            },
            Kind::Enum(e) => {
                let ok = match v {
                    Json::Str(s) => {
                        e.values.iter().any(|x| if e.any_case { x.eq_ignore_ascii_case(s) } else { x == s })
                    }
                    Json::Num(_) => {
                        v.as_i64().is_some_and(|i| usize::try_from(i).is_ok_and(|i| i < e.values.len()))
                    }
                    _ => false,
                };
                if !ok {
                    let ty = format!("type.googleapis.com/{}.{}", self.api.package(), e.name);
                    self.invalid(path, &ty, v);
                }
            }
            Kind::Msg(m) => self.message(v, m, path, depth + 1),
            Kind::Struct => {
                if v.as_obj().is_none() {
                    self.invalid(path, "type.googleapis.com/google.protobuf.Struct", v);
                }
            }
            Kind::Value => {}
            Kind::Map(m) => match v.as_obj() {
                Some(entries) => {
                    for (i, (_, entry)) in entries.iter().enumerate() {
                        self.message(entry, m, &format!("{path}[{i}].value"), depth + 1);
                    }
                }
                None => self.invalid(path, "map", v),
            },
            Kind::StrMap => match v.as_obj() {
                Some(entries) => {
                    for (i, (_, entry)) in entries.iter().enumerate() {
                        if entry.as_str().is_none() {
                            self.invalid(&format!("{path}[{i}].value"), "TYPE_STRING", entry);
                        }
                    }
                }
                None => self.invalid(path, "map", v),
            },
        }
    }
}

/// Looks a field up by either spelling (`systemInstruction` or `system_instruction`).
pub(crate) fn get<'a>(v: &'a Json, json_name: &str) -> Option<&'a Json> {
    let o = v.as_obj()?;
    let snake_name = snake(json_name);
    o.iter().find(|(k, _)| *k == json_name || *k == snake_name).map(|(_, v)| v).filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &str, api: Api) -> Vec<String> {
        check(&Json::parse(body.as_bytes()).unwrap(), &GENERATE_CONTENT_REQUEST, api)
            .into_iter()
            .map(|v| v.description)
            .collect()
    }

    #[test]
    fn unknown_names_and_types() {
        assert_eq!(run(r#"{"contents":[{"parts":[{"text":"hi"}]}]}"#, Api::Gemini), Vec::<String>::new());
        assert_eq!(
            run(r#"{"foo":1,"contents":[{"role":"user","parts":[{"text":"hi","bar":2}]}]}"#, Api::Gemini),
            [
                r#"Invalid JSON payload received. Unknown name "foo": Cannot find field."#,
                r#"Invalid JSON payload received. Unknown name "bar" at 'contents[0].parts[0]': Cannot find field."#
            ]
        );
        assert_eq!(
            run(
                r#"{"tools":[{"function_declarations":[{"name":"f","parameters":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"object","additionalProperties":false}}}}]}]}"#,
                Api::Gemini
            ),
            [
                r#"Invalid JSON payload received. Unknown name "additionalProperties" at 'tools[0].function_declarations[0].parameters.properties[1].value': Cannot find field."#
            ]
        );
        assert!(
            run(r#"{"tools":[{"functionDeclarations":[{"name":"f","parameters":{"type":"OBJECT","additionalProperties":false,"properties":{"a":{"type":"STRING"}}}}]}]}"#, Api::Vertex)
                .is_empty()
        );
        assert_eq!(
            run(
                r#"{"contents":[{"role":1,"parts":{"text":"x"}}],"generationConfig":{"temperature":"hot","topK":"5"}}"#,
                Api::Gemini
            ),
            [
                "Invalid value at 'contents[0].role' (TYPE_STRING), 1",
                r#"Invalid value at 'generation_config.temperature' (TYPE_FLOAT), "hot""#
            ]
        );
        assert_eq!(
            run(r#"{"contents":[{"parts":[{"text":["a"]}]}]}"#, Api::Gemini),
            [
                r#"Invalid JSON payload received. Unknown name "text" at 'contents[0].parts[0]': Proto field is not repeating, cannot start list."#
            ]
        );
        assert_eq!(
            run(
                r#"{"contents":[{"parts":[{"inlineData":{"mimeType":"image/png","data":"%%%"}}]}]}"#,
                Api::Gemini
            ),
            [
                r#"Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for "%%%""#
            ]
        );
        assert_eq!(
            run(r#"{"contents":"hello"}"#, Api::Gemini),
            [
                r#"Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), "hello""#
            ]
        );
    }
}
