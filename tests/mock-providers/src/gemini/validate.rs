//! The second validation layer: the rules Google checks after parsing, with its message forms:
//! `* GenerateContentRequest.<path>: <problem>` lines (every problem found), or one plain
//! sentence for the conversation rules (`Please use a valid role: user, model.`). Paths here
//! name schema properties by key (`parameters.properties[city].type`), as the API does.
//!
//! It also computes what the reply needs: the prompt token count (rule in the `gemini` module
//! docs), what the last user turn said, the callable functions and the generation settings.

use super::proto::{PART_DATA, get, snake};
use crate::json::{Json, base64_decode_any, count_words};

/// Why a request is refused (always 400 `INVALID_ARGUMENT`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// One sentence, sent as is.
    Plain(String),
    /// `(field path, problem)` pairs, rendered `* <Request>.<path>: <problem>\n` each.
    Fields(&'static str, Vec<(String, String)>),
}

impl Problem {
    pub(crate) fn message(&self) -> String {
        match self {
            Problem::Plain(m) => m.clone(),
            Problem::Fields(request, list) => {
                list.iter().map(|(path, msg)| format!("* {request}.{path}: {msg}\n")).collect()
            }
        }
    }
}

/// A function the model may call, with the schema its arguments follow.
#[derive(Debug)]
pub(crate) struct Function<'a> {
    pub(crate) name: &'a str,
    pub(crate) schema: Option<&'a Json>,
}

/// What a valid generateContent request asks for.
#[derive(Debug, Default)]
pub(crate) struct Checked<'a> {
    pub(crate) functions: Vec<Function<'a>>,
    /// `toolConfig.functionCallingConfig.mode`, upper case (`AUTO` when absent).
    pub(crate) mode: String,
    pub(crate) allowed: Vec<&'a str>,
    pub(crate) max_output_tokens: Option<u64>,
    pub(crate) include_thoughts: bool,
    pub(crate) response_mime: Option<&'a str>,
    /// `responseSchema` (Gemini Schema) or `responseJsonSchema` (JSON Schema).
    pub(crate) response_schema: Option<&'a Json>,
    pub(crate) prompt_tokens: u64,
    pub(crate) heard: String,
}

type Fields = Vec<(String, String)>;

const RESPONSE_MIME_TYPES: &[&str] =
    &["text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum"];

/// https://ai.google.dev/gemini-api/docs/image-understanding and /document-processing: the
/// inline MIME types the models take.
fn supported_mime(m: &str) -> bool {
    matches!(m, "image/png" | "image/jpeg" | "image/webp" | "image/heic" | "image/heif" | "application/pdf")
        || m.starts_with("audio/")
        || m.starts_with("video/")
        || m.starts_with("text/")
}

/// Checks a GenerateContentRequest (or the generate part of a CountTokensRequest, `request`
/// naming it in messages).
pub(crate) fn generate<'a>(body: &'a Json, request: &'static str) -> Result<Checked<'a>, Problem> {
    let fail = |list: Fields| Err(Problem::Fields(request, list));
    let contents = get(body, "contents").and_then(Json::as_arr).unwrap_or_default();
    if contents.is_empty() {
        return fail(vec![("contents".into(), "contents is not specified".into())]);
    }
    // https://ai.google.dev/api/caching#Content: "Must be either 'user' or 'model'".
    for c in contents {
        if !matches!(role(c), "user" | "model") {
            return Err(Problem::Plain("Please use a valid role: user, model.".into()));
        }
    }

    let mut problems = Fields::new();
    for (i, c) in contents.iter().enumerate() {
        parts(c, &format!("contents[{i}]"), role(c), &mut problems)?;
    }
    if let Some(si) = get(body, "systemInstruction") {
        parts(si, "system_instruction", "system", &mut problems)?;
    }
    let mut functions = Vec::new();
    for (t, tool) in get(body, "tools").and_then(Json::as_arr).unwrap_or_default().iter().enumerate() {
        for (k, decl) in
            get(tool, "functionDeclarations").and_then(Json::as_arr).unwrap_or_default().iter().enumerate()
        {
            let path = format!("tools[{t}].function_declarations[{k}]");
            functions.push(declaration(decl, &path, &functions, &mut problems));
        }
    }
    let mut mode = "AUTO".to_owned();
    let mut allowed = Vec::new();
    if let Some(fcc) = get(body, "toolConfig").and_then(|tc| get(tc, "functionCallingConfig")) {
        mode = match get(fcc, "mode") {
            Some(Json::Str(m)) => m.clone(),
            Some(n) => n
                .as_i64()
                .and_then(|i| MODE_NAMES.get(usize::try_from(i).ok()?))
                .unwrap_or(&"AUTO")
                .to_string(),
            None => "AUTO".into(),
        };
        if mode == "MODE_UNSPECIFIED" {
            mode = "AUTO".into();
        }
        let path = "tool_config.function_calling_config.allowed_function_names";
        for (i, name) in
            get(fcc, "allowedFunctionNames").and_then(Json::as_arr).unwrap_or_default().iter().enumerate()
        {
            let name = name.as_str().unwrap_or_default();
            // https://ai.google.dev/api/caching#FunctionCallingConfig: "only be set when the
            // Mode is ANY or VALIDATED"; names must be declared.
            if !matches!(mode.as_str(), "ANY" | "VALIDATED") {
                problems.push((
                    path.into(),
                    "allowed_function_names can only be set when mode is ANY or VALIDATED".into(),
                ));
                break;
            }
            if !functions.iter().any(|f| f.name == name) {
                problems
                    .push((format!("{path}[{i}]"), format!("function \"{name}\" is not declared in tools")));
            }
            allowed.push(name);
        }
    }

    let mut checked = Checked { functions, mode, allowed, ..Checked::default() };
    if let Some(gc) = get(body, "generationConfig") {
        generation_config(gc, &mut checked, &mut problems);
    }
    if let Some(cc) = get(body, "cachedContent").and_then(Json::as_str)
        && !cc.starts_with("cachedContents/")
    {
        problems.push(("cached_content".into(), "must be of the form cachedContents/{cachedContent}".into()));
    }
    if !problems.is_empty() {
        return fail(problems);
    }
    turn_rules(contents)?;

    checked.prompt_tokens = prompt_tokens(contents, get(body, "systemInstruction"), checked.functions.len());
    checked.heard = heard(contents);
    Ok(checked)
}

/// `FunctionCallingConfig.Mode` by number (proto3 JSON also takes enum numbers).
const MODE_NAMES: &[&str] = &["MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED"];

/// A content's role; an absent or empty role means `user` (single-turn requests may omit it).
fn role(c: &Json) -> &str {
    match get(c, "role").and_then(Json::as_str) {
        None | Some("") => "user",
        Some(r) => r,
    }
}

/// The parts of one content (`role` "system" for systemInstruction).
fn parts(c: &Json, path: &str, role: &str, problems: &mut Fields) -> Result<(), Problem> {
    let list = get(c, "parts").and_then(Json::as_arr).unwrap_or_default();
    if list.is_empty() {
        problems.push((format!("{path}.parts"), "contents.parts must not be empty.".into()));
    }
    for (j, p) in list.iter().enumerate() {
        let ppath = format!("{path}.parts[{j}]");
        let set: Vec<&str> = PART_DATA.iter().copied().filter(|name| get(p, name).is_some()).collect();
        // https://ai.google.dev/api/caching#Part: "data" is a oneof.
        match set.as_slice() {
            [] => {
                problems.push((
                    format!("{ppath}.data"),
                    "required oneof field 'data' must have one initialized field".into(),
                ));
                continue;
            }
            [_] => {}
            [first, second, ..] => {
                problems.push((
                    format!("{ppath}.data"),
                    format!(
                        "oneof field 'data' is already set. Cannot set '{}' after '{}'",
                        snake(second),
                        snake(first)
                    ),
                ));
                continue;
            }
        }
        if let Some(blob) = get(p, "inlineData") {
            let mime = get(blob, "mimeType").and_then(Json::as_str).unwrap_or_default();
            let data = get(blob, "data").and_then(Json::as_str).unwrap_or_default();
            if mime.is_empty() {
                problems
                    .push((format!("{ppath}.inline_data.mime_type"), "mime_type must be specified".into()));
            } else if !supported_mime(mime) {
                return Err(Problem::Plain(format!("Unsupported MIME type: {mime}")));
            } else if data.is_empty() {
                problems.push((format!("{ppath}.inline_data.data"), "data must be specified".into()));
            } else if mime.starts_with("image/") && !looks_like_image(data) {
                return Err(Problem::Plain(
                    "Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
                        .into(),
                ));
            }
        }
        if let Some(fd) = get(p, "fileData")
            && get(fd, "fileUri").and_then(Json::as_str).unwrap_or_default().is_empty()
        {
            problems.push((format!("{ppath}.file_data.file_uri"), "file_uri must be specified".into()));
        }
        // https://ai.google.dev/gemini-api/docs/function-calling: calls come from the model,
        // responses from the user turn that follows.
        if let Some(call) = get(p, "functionCall") {
            if role != "model" {
                problems.push((
                    format!("{ppath}.function_call"),
                    "function_call parts are only allowed in model turns".into(),
                ));
            }
            if get(call, "name").and_then(Json::as_str).unwrap_or_default().is_empty() {
                problems.push((format!("{ppath}.function_call.name"), "Name cannot be empty.".into()));
            }
        }
        if let Some(resp) = get(p, "functionResponse") {
            if role != "user" {
                problems.push((
                    format!("{ppath}.function_response"),
                    "function_response parts are only allowed in user turns".into(),
                ));
            }
            if get(resp, "name").and_then(Json::as_str).unwrap_or_default().is_empty() {
                problems.push((format!("{ppath}.function_response.name"), "Name cannot be empty.".into()));
            }
        }
    }
    Ok(())
}

/// Magic numbers of the image formats the models read.
fn looks_like_image(data: &str) -> bool {
    let Some(bytes) = base64_decode_any(data) else { return false };
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xff, 0xd8, 0xff])
        || (bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP")
        || (bytes.len() >= 12 && &bytes[4..8] == b"ftyp")
}

/// https://ai.google.dev/gemini-api/docs/function-calling: the order of call and response turns.
fn turn_rules(contents: &[Json]) -> Result<(), Problem> {
    let names = |c: &Json, key: &str| -> Vec<String> {
        get(c, "parts")
            .and_then(Json::as_arr)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| get(p, key))
            .map(|x| get(x, "name").and_then(Json::as_str).unwrap_or_default().to_owned())
            .collect()
    };
    for (i, c) in contents.iter().enumerate() {
        let calls = names(c, "functionCall");
        if !calls.is_empty() && (i == 0 || role(&contents[i - 1]) != "user") {
            return Err(Problem::Plain(
                "Please ensure that function call turn comes immediately after a user turn or after a function response turn."
                    .into(),
            ));
        }
        let mut responses = names(c, "functionResponse");
        if responses.is_empty() {
            continue;
        }
        let mut prev_calls = if i > 0 { names(&contents[i - 1], "functionCall") } else { Vec::new() };
        if prev_calls.is_empty() {
            return Err(Problem::Plain(
                "Please ensure that function response turn comes immediately after a function call turn."
                    .into(),
            ));
        }
        if prev_calls.len() != responses.len() {
            return Err(Problem::Plain(
                "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn."
                    .into(),
            ));
        }
        prev_calls.sort();
        responses.sort();
        if prev_calls != responses {
            return Err(Problem::Plain(format!(
                "Please ensure that the function response names match the function call names of the function call turn: [{}] vs [{}].",
                prev_calls.join(", "),
                responses.join(", ")
            )));
        }
    }
    Ok(())
}

/// One function declaration. https://ai.google.dev/api/caching#FunctionDeclaration
fn declaration<'a>(decl: &'a Json, path: &str, seen: &[Function<'_>], problems: &mut Fields) -> Function<'a> {
    let name = get(decl, "name").and_then(Json::as_str).unwrap_or_default();
    if !valid_function_name(name) {
        problems.push((
            format!("{path}.name"),
            "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.".into(),
        ));
    } else if seen.iter().any(|f| f.name == name) {
        problems.push((format!("{path}.name"), format!("Duplicate function declaration name: {name}")));
    }
    let params = get(decl, "parameters");
    let json_schema = get(decl, "parametersJsonSchema");
    if params.is_some() && json_schema.is_some() {
        problems.push((path.into(), "parameters and parameters_json_schema cannot both be set".into()));
    }
    if let Some(p) = params {
        schema_rules(p, &format!("{path}.parameters"), problems, 0);
    }
    if let Some(js) = json_schema
        && js.as_obj().is_none()
    {
        problems.push((format!("{path}.parameters_json_schema"), "must be a JSON object".into()));
    }
    if let Some(r) = get(decl, "response") {
        schema_rules(r, &format!("{path}.response"), problems, 0);
    }
    Function { name, schema: params.or(json_schema) }
}

/// Must start with a letter or an underscore; letters, digits, `_ . : -`; at most 64.
fn valid_function_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 64
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// The Schema rules checked after parsing (https://ai.google.dev/api/caching#Schema).
pub(crate) fn schema_rules(s: &Json, path: &str, problems: &mut Fields, depth: u32) {
    if depth > 32 {
        return;
    }
    let ty = get(s, "type").and_then(Json::as_str).map(str::to_ascii_uppercase);
    let any_of = get(s, "anyOf").and_then(Json::as_arr);
    if ty.is_none() && any_of.is_none() && get(s, "$ref").is_none() {
        problems.push((
            format!("{path}.type"),
            "must be specified when not using one_of, any_of or all_of fields".into(),
        ));
    }
    let props = get(s, "properties").and_then(Json::as_obj);
    let required = get(s, "required").and_then(Json::as_arr);
    match ty.as_deref() {
        Some("OBJECT") => {
            if props.is_none_or(<[_]>::is_empty) {
                problems.push((format!("{path}.properties"), "should be non-empty for OBJECT type".into()));
            }
            for (i, r) in required.unwrap_or_default().iter().enumerate() {
                let r = r.as_str().unwrap_or_default();
                if !props.unwrap_or_default().iter().any(|(k, _)| k == r) {
                    problems.push((format!("{path}.required[{i}]"), "property is not defined".into()));
                }
            }
        }
        _ => {
            if props.is_some() {
                problems.push((format!("{path}.properties"), "only allowed for OBJECT type".into()));
            }
            if required.is_some() {
                problems.push((format!("{path}.required"), "only allowed for OBJECT type".into()));
            }
        }
    }
    if ty.as_deref() == Some("ARRAY") && get(s, "items").is_none() {
        problems.push((format!("{path}.items"), "missing field.".into()));
    }
    if get(s, "enum").is_some() && !matches!(ty.as_deref(), Some("STRING") | Some("INTEGER") | None) {
        problems.push((format!("{path}.enum"), "only allowed for STRING and INTEGER type".into()));
    }
    for (k, p) in props.unwrap_or_default() {
        schema_rules(p, &format!("{path}.properties[{k}]"), problems, depth + 1);
    }
    if let Some(items) = get(s, "items") {
        schema_rules(items, &format!("{path}.items"), problems, depth + 1);
    }
    for (i, alt) in any_of.unwrap_or_default().iter().enumerate() {
        schema_rules(alt, &format!("{path}.any_of[{i}]"), problems, depth + 1);
    }
}

/// https://ai.google.dev/api/generate-content#generationconfig
fn generation_config<'a>(gc: &'a Json, checked: &mut Checked<'a>, problems: &mut Fields) {
    let num = |k: &str| get(gc, k).and_then(|v| v.as_f64().or_else(|| v.as_str()?.parse().ok()));
    let path = |k: &str| format!("generation_config.{}", snake(k));
    if let Some(stops) = get(gc, "stopSequences").and_then(Json::as_arr)
        && stops.len() > 5
    {
        problems.push((path("stopSequences"), "at most 5 stop sequences are allowed".into()));
    }
    if let Some(t) = num("temperature")
        && !(0.0..=2.0).contains(&t)
    {
        problems.push((path("temperature"), "temperature must be in the range [0.0, 2.0]".into()));
    }
    if let Some(p) = num("topP")
        && !(0.0..=1.0).contains(&p)
    {
        problems.push((path("topP"), "top_p must be in the range [0.0, 1.0]".into()));
    }
    if let Some(k) = num("topK")
        && k < 1.0
    {
        problems.push((path("topK"), "top_k must be positive".into()));
    }
    if let Some(n) = num("candidateCount")
        && !(1.0..=8.0).contains(&n)
    {
        problems.push((path("candidateCount"), "candidate_count must be in the range [1, 8]".into()));
    }
    if let Some(m) = num("maxOutputTokens") {
        if m < 1.0 {
            problems.push((path("maxOutputTokens"), "max_output_tokens must be positive".into()));
        }
        // Non-negative and integral here (the proto layer checked the type).
        checked.max_output_tokens = Some(m.max(0.0) as u64);
    }
    let mime = get(gc, "responseMimeType").and_then(Json::as_str);
    if let Some(m) = mime
        && !RESPONSE_MIME_TYPES.contains(&m)
    {
        problems.push((
            path("responseMimeType"),
            "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`."
                .into(),
        ));
    }
    let schema = get(gc, "responseSchema");
    let json_schema = get(gc, "responseJsonSchema").or_else(|| get(gc, "_responseJsonSchema"));
    if schema.is_some() && json_schema.is_some() {
        problems.push((
            path("responseSchema"),
            "response_schema and response_json_schema cannot both be set".into(),
        ));
    }
    if (schema.is_some() || json_schema.is_some())
        && !matches!(mime, Some("application/json" | "text/x.enum"))
    {
        problems.push((
            path("responseMimeType"),
            "response_mime_type must be application/json or text/x.enum when a response schema is set".into(),
        ));
    }
    if let Some(s) = schema {
        schema_rules(s, &path("responseSchema"), problems, 0);
    }
    if let Some(tc) = get(gc, "thinkingConfig") {
        if get(tc, "thinkingBudget").is_some() && get(tc, "thinkingLevel").is_some() {
            problems.push((
                path("thinkingConfig"),
                "thinking_budget and thinking_level cannot both be set".into(),
            ));
        }
        checked.include_thoughts = get(tc, "includeThoughts").and_then(Json::as_bool).unwrap_or(false);
    }
    checked.response_mime = mime;
    checked.response_schema = schema.or(json_schema);
}

/// Words of every text part (system instruction included) + 1 per other part + 1 per function
/// declaration.
pub(crate) fn prompt_tokens(contents: &[Json], system: Option<&Json>, functions: usize) -> u64 {
    let mut n = functions as u64;
    for c in contents.iter().chain(system) {
        for p in get(c, "parts").and_then(Json::as_arr).unwrap_or_default() {
            n += match get(p, "text").and_then(Json::as_str) {
                Some(t) => count_words(t),
                None => 1,
            };
        }
    }
    n
}

/// The last user turn summarised: text, `[inlineData <mime>]`, `[fileData <uri>]`,
/// `[functionResponse <name>: <response JSON>]`, space-joined.
fn heard(contents: &[Json]) -> String {
    let Some(last) = contents.iter().rev().find(|c| role(c) == "user") else { return String::new() };
    let mut out = Vec::new();
    for p in get(last, "parts").and_then(Json::as_arr).unwrap_or_default() {
        if get(p, "thought").and_then(Json::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = get(p, "text").and_then(Json::as_str) {
            out.push(t.to_owned());
        } else if let Some(b) = get(p, "inlineData") {
            out.push(format!(
                "[inlineData {}]",
                get(b, "mimeType").and_then(Json::as_str).unwrap_or_default()
            ));
        } else if let Some(f) = get(p, "fileData") {
            out.push(format!("[fileData {}]", get(f, "fileUri").and_then(Json::as_str).unwrap_or_default()));
        } else if let Some(r) = get(p, "functionResponse") {
            let name = get(r, "name").and_then(Json::as_str).unwrap_or_default();
            let response = get(r, "response").map(Json::to_text).unwrap_or_else(|| "{}".into());
            out.push(format!("[functionResponse {name}: {response}]"));
        } else {
            out.push("[part]".into());
        }
    }
    out.join(" ")
}

/// The text parts of an embedding content, checked (`EmbedContentRequest` rules).
pub(crate) fn embed_content(
    req: &Json,
    path: &str,
    model: &str,
    model_required: bool,
    dims: usize,
    problems: &mut Fields,
) -> (String, usize) {
    let at = |k: &str| if path.is_empty() { k.to_owned() } else { format!("{path}.{k}") };
    match get(req, "model").and_then(Json::as_str) {
        None if model_required => problems.push((at("model"), "model is required".into())),
        Some(m) if m != format!("models/{model}") => problems.push((
            at("model"),
            format!(
                "the model in the request body (\"{m}\") must be the model in the URL (\"models/{model}\")"
            ),
        )),
        _ => {}
    }
    let mut text = Vec::new();
    match get(req, "content") {
        None => problems.push((at("content"), "content is not specified".into())),
        Some(c) => {
            let list = get(c, "parts").and_then(Json::as_arr).unwrap_or_default();
            if list.is_empty() {
                problems.push((at("content.parts"), "contents.parts must not be empty.".into()));
            }
            for (j, p) in list.iter().enumerate() {
                match get(p, "text").and_then(Json::as_str) {
                    Some(t) => text.push(t),
                    None => problems.push((
                        format!("{}[{j}]", at("content.parts")),
                        "only text parts can be embedded".into(),
                    )),
                }
            }
        }
    }
    let mut out_dims = dims;
    if let Some(d) =
        get(req, "outputDimensionality").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
    {
        match usize::try_from(d) {
            Ok(d) if (1..=dims).contains(&d) => out_dims = d,
            _ => problems.push((
                at("output_dimensionality"),
                format!("output_dimensionality must be in the range [1, {dims}]"),
            )),
        }
    }
    (text.join(" "), out_dims)
}
