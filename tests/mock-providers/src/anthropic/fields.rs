//! Leaf validators of Messages requests: pydantic-style field helpers (`<path>: Field
//! required`, `Extra inputs are not permitted`, `Input should be …`) and the checks of image and
//! document sources, output formats, JSON Schemas, tool names and ids.

use std::fmt::Display;

use crate::json::{Json, base64_decode};

pub(crate) type V<T> = Result<T, String>;

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// https://docs.anthropic.com/en/docs/build-with-claude/vision: base64 (jpeg, png, gif, webp;
/// the bytes must be an image of that type), url, or a Files API `file_id`.
pub(crate) fn image_source(src: &Json, path: &str) -> V<()> {
    let o = obj(src, path)?;
    let ty = tag(o, path, &["base64", "url", "file"])?;
    let spath = join(path, ty);
    match ty {
        "base64" => {
            fields(o, &spath, &["type", "media_type", "data"], &["type", "media_type", "data"])?;
            let media = literal(
                field(o, "media_type").unwrap_or(&Json::Null),
                &join(&spath, "media_type"),
                IMAGE_TYPES,
            )?;
            let data = string(field(o, "data").unwrap_or(&Json::Null), &join(&spath, "data"))?;
            let bytes = base64_decode(data).ok_or(format!("{spath}.data: Invalid base64 data"))?;
            match sniff_image(&bytes) {
                Some(actual) if actual == media => {}
                Some(actual) => {
                    return Err(format!(
                        "{spath}.data: The image was specified using the {media} media type, but the image appears to be a {actual} image"
                    ));
                }
                None => return Err(format!("{spath}.data: Could not process image")),
            }
        }
        "url" => {
            fields(o, &spath, &["type", "url"], &["type", "url"])?;
            http_url(field(o, "url").unwrap_or(&Json::Null), &join(&spath, "url"))?;
        }
        _ => {
            fields(o, &spath, &["type", "file_id"], &["type", "file_id"])?;
            string(field(o, "file_id").unwrap_or(&Json::Null), &join(&spath, "file_id"))?;
        }
    }
    Ok(())
}

/// https://docs.anthropic.com/en/docs/build-with-claude/pdf-support: base64 PDF, plain text,
/// content blocks, url or file.
pub(crate) fn document_source(src: &Json, path: &str) -> V<()> {
    let o = obj(src, path)?;
    let ty = tag(o, path, &["base64", "text", "content", "url", "file"])?;
    let spath = join(path, ty);
    match ty {
        "base64" => {
            fields(o, &spath, &["type", "media_type", "data"], &["type", "media_type", "data"])?;
            literal(
                field(o, "media_type").unwrap_or(&Json::Null),
                &join(&spath, "media_type"),
                &["application/pdf"],
            )?;
            let data = string(field(o, "data").unwrap_or(&Json::Null), &join(&spath, "data"))?;
            let bytes = base64_decode(data).ok_or(format!("{spath}.data: Invalid base64 data"))?;
            if !bytes.starts_with(b"%PDF-") {
                return Err(format!("{spath}.data: The PDF specified was not valid."));
            }
        }
        "text" => {
            fields(o, &spath, &["type", "media_type", "data"], &["type", "media_type", "data"])?;
            literal(
                field(o, "media_type").unwrap_or(&Json::Null),
                &join(&spath, "media_type"),
                &["text/plain"],
            )?;
            string(field(o, "data").unwrap_or(&Json::Null), &join(&spath, "data"))?;
        }
        "content" => {
            fields(o, &spath, &["type", "content"], &["type", "content"])?;
        }
        "url" => {
            fields(o, &spath, &["type", "url"], &["type", "url"])?;
            http_url(field(o, "url").unwrap_or(&Json::Null), &join(&spath, "url"))?;
        }
        _ => {
            fields(o, &spath, &["type", "file_id"], &["type", "file_id"])?;
            string(field(o, "file_id").unwrap_or(&Json::Null), &join(&spath, "file_id"))?;
        }
    }
    Ok(())
}

/// `{"type":"json_schema","schema":{...}}` (structured outputs); returns the schema.
pub(crate) fn output_format<'a>(f: &'a Json, path: &str) -> V<&'a Json> {
    let o = obj(f, path)?;
    fields(o, path, &["type", "schema"], &["type", "schema"])?;
    literal(field(o, "type").unwrap_or(&Json::Null), &join(path, "type"), &["json_schema"])?;
    let schema = field(o, "schema").unwrap_or(&Json::Null);
    obj(schema, &join(path, "schema"))?;
    json_schema_shape(schema, &join(path, "schema"))?;
    Ok(schema)
}

/// A light JSON Schema sanity check: `properties` an object of schemas, `required` strings,
/// `type` a string or a list of strings, recursively through `properties` and `items`.
pub(crate) fn json_schema_shape(schema: &Json, path: &str) -> V<()> {
    fn walk(s: &Json, depth: u32) -> bool {
        let Some(o) = s.as_obj() else { return matches!(s, Json::Bool(_)) };
        if depth > 64 {
            return false;
        }
        let ty_ok = match field(o, "type") {
            None | Some(Json::Str(_)) => true,
            Some(Json::Arr(types)) => types.iter().all(|t| matches!(t, Json::Str(_))),
            Some(_) => false,
        };
        let props_ok = match field(o, "properties") {
            None => true,
            Some(Json::Obj(props)) => props.iter().all(|(_, p)| walk(p, depth + 1)),
            Some(_) => false,
        };
        let req_ok = match field(o, "required") {
            None => true,
            Some(Json::Arr(r)) => r.iter().all(|x| matches!(x, Json::Str(_))),
            Some(_) => false,
        };
        let items_ok = field(o, "items").is_none_or(|i| walk(i, depth + 1));
        ty_ok && props_ok && req_ok && items_ok
    }
    if walk(schema, 0) {
        Ok(())
    } else {
        Err(format!(
            "{path}: JSON schema is invalid - please consult https://json-schema.org or our documentation at https://docs.anthropic.com/en/docs/tool-use"
        ))
    }
}

/// `^[a-zA-Z0-9_-]{1,64}$`
pub(crate) fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// tool_use ids and tool_result tool_use_ids: `^[a-zA-Z0-9_-]+$`.
pub(crate) fn tool_id(v: &Json, path: &str) -> V<()> {
    let id = string(v, path)?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(format!("{path}: String should match pattern '^[a-zA-Z0-9_-]+$'"));
    }
    Ok(())
}

/// `<letters, digits, _>_<8 digits>`, e.g. `web_search_20250305`, `bash_20250124`.
pub(crate) fn is_server_tool_type(ty: &str) -> bool {
    ty.rsplit_once('_').is_some_and(|(name, date)| {
        !name.is_empty()
            && date.len() == 8
            && date.bytes().all(|b| b.is_ascii_digit())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

pub(crate) fn http_url(v: &Json, path: &str) -> V<()> {
    let url = string(v, path)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() < 9 {
        return Err(format!("{path}: Input should be a valid URL"));
    }
    Ok(())
}

/// Which image format `bytes` are, by their magic number.
pub(crate) fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

// ---- pydantic-style helpers -------------------------------------------------------------

pub(crate) fn join(path: &str, key: impl Display) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

pub(crate) fn field<'a>(o: &'a [(String, Json)], key: &str) -> Option<&'a Json> {
    o.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Required fields present (`Field required`), then no unknown ones (`Extra inputs are not
/// permitted`), in document order.
pub(crate) fn fields(o: &[(String, Json)], path: &str, required: &[&str], allowed: &[&str]) -> V<()> {
    for r in required {
        if field(o, r).is_none() {
            return Err(format!("{}: Field required", join(path, r)));
        }
    }
    for (k, _) in o {
        if !allowed.contains(&k.as_str()) {
            return Err(format!("{}: Extra inputs are not permitted", join(path, k)));
        }
    }
    Ok(())
}

/// The `type` tag of a tagged union member.
pub(crate) fn tag<'a>(o: &'a [(String, Json)], path: &str, tags: &[&str]) -> V<&'a str> {
    let Some(Json::Str(ty)) = field(o, "type") else {
        return Err(format!("{path}: Unable to extract tag using discriminator 'type'"));
    };
    if !tags.contains(&ty.as_str()) {
        let expected: Vec<String> = tags.iter().map(|t| format!("'{t}'")).collect();
        return Err(format!(
            "{path}: Input tag '{ty}' found using 'type' does not match any of the expected tags: {}",
            expected.join(", ")
        ));
    }
    Ok(ty)
}

pub(crate) fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Num(_) => "number",
        Json::Str(_) => "string",
        Json::Arr(_) => "list",
        Json::Obj(_) => "dict",
    }
}

pub(crate) fn obj<'a>(v: &'a Json, path: &str) -> V<&'a [(String, Json)]> {
    v.as_obj().ok_or_else(|| format!("{path}: Input should be a valid dictionary"))
}

pub(crate) fn list<'a>(v: &'a Json, path: &str) -> V<&'a [Json]> {
    v.as_arr().ok_or_else(|| format!("{path}: Input should be a valid list"))
}

pub(crate) fn string<'a>(v: &'a Json, path: &str) -> V<&'a str> {
    v.as_str().ok_or_else(|| format!("{path}: Input should be a valid string"))
}

pub(crate) fn boolean(v: &Json, path: &str) -> V<bool> {
    v.as_bool().ok_or_else(|| format!("{path}: Input should be a valid boolean"))
}

pub(crate) fn integer(v: &Json, path: &str) -> V<i64> {
    v.as_i64().ok_or_else(|| format!("{path}: Input should be a valid integer"))
}

pub(crate) fn number(v: &Json, path: &str) -> V<f64> {
    v.as_f64().ok_or_else(|| format!("{path}: Input should be a valid number"))
}

/// One of `allowed`: "Input should be 'a', 'b' or 'c'".
pub(crate) fn literal<'a>(v: &'a Json, path: &str, allowed: &[&str]) -> V<&'a str> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s),
        _ => {
            let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
            let list = match quoted.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => quoted.concat(),
            };
            Err(format!("{path}: Input should be {list}"))
        }
    }
}
