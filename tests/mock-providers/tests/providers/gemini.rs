//! The Gemini / Vertex AI mock: authentication, both validation layers, every model-id
//! behaviour, error envelopes, SSE and JSON-array streams, token counting and embeddings.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_mock_providers::gemini::{THOUGHT_SIGNATURE, THOUGHTS_TOKENS};
use switchboard_mock_providers::{GeminiMock, GeminiOptions};

use crate::client::{Resp, send};

const KEY: &str = "gemini-mock-key";
const TOKEN: &str = "Bearer ya29.mock-access-token";
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUg==";
const GEN: &str = "/v1beta/models/gemini-mock:generateContent";
const VERTEX: &str = "/v1/projects/proj-1/locations/us-central1/publishers/google/models";

async fn mock_with(options: GeminiOptions) -> GeminiMock {
    GeminiMock::start(([127, 0, 0, 1], 0).into(), options).await.unwrap()
}

async fn mock() -> GeminiMock {
    mock_with(GeminiOptions::default()).await
}

fn gen_path(model: &str, method: &str) -> String {
    format!("/v1beta/models/{model}:{method}")
}

async fn post_path(m: &GeminiMock, path: &str, body: &Value) -> Resp {
    let headers: &[(&str, &str)] = if path.starts_with("/v1/") || path.starts_with("/v1beta1/") {
        &[("authorization", TOKEN), ("content-type", "application/json")]
    } else {
        &[("x-goog-api-key", KEY), ("content-type", "application/json")]
    };
    send(m.addr(), "POST", path, headers, body.to_string().as_bytes()).await
}

async fn generate(m: &GeminiMock, model: &str, body: &Value) -> Resp {
    post_path(m, &gen_path(model, "generateContent"), body).await
}

fn base() -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]})
}

fn weather_decl() -> Value {
    json!({"name": "get_weather", "description": "Weather for a city", "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}, "unit": {"type": "STRING", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}})
}

fn time_decl() -> Value {
    json!({"name": "get_time", "parametersJsonSchema": {"type": "object", "properties": {"zone": {"type": "string"}},
        "additionalProperties": false}})
}

/// Google's envelope with this code and status; returns the message.
fn assert_google_error(resp: &Resp, code: u16, status: &str) -> String {
    assert_eq!(resp.status, code, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json; charset=UTF-8"));
    let v = resp.json();
    let e = &v["error"];
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    assert_eq!((&e["code"], &e["status"]), (&json!(code), &json!(status)), "{v}");
    e["message"].as_str().unwrap().to_owned()
}

fn assert_invalid(resp: &Resp, message: &str) {
    assert_eq!(assert_google_error(resp, 400, "INVALID_ARGUMENT"), message);
}

#[tokio::test]
async fn text_reply_is_derived_from_the_request() {
    let m = mock().await;
    let body = json!({
        "systemInstruction": {"parts": [{"text": "Be brief"}]},
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "what is this"}, {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                                       {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/doc.pdf"}}]}]});
    let r = generate(&m, "gemini-mock", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json; charset=UTF-8"));
    assert_eq!(
        r.text(),
        r#"{"candidates":[{"content":{"parts":[{"text":"You said: what is this [inlineData image/png] [fileData gs://b/doc.pdf]"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":9,"totalTokenCount":18,"promptTokensDetails":[{"modality":"TEXT","tokenCount":9}]},"modelVersion":"gemini-mock","responseId":"mock-response-1"}"#
    );
    // Prompt: "Be brief" 2 + "hi" 1 + "Hello!" 1 + "what is this" 3 + 2 other parts = 9.
    let rec = m.last_request().unwrap();
    assert_eq!((rec.path.as_str(), rec.query.as_deref()), (GEN, None));
    assert_eq!(rec.header("x-goog-api-key"), Some(KEY));
    assert_eq!(rec.body, body);
    assert_eq!(m.requests(), 1);
    assert_eq!(m.base_url(), m.vertex_base_url());

    // The key in the query works too, and snake_case field names are accepted.
    let snake = json!({"system_instruction": {"parts": [{"text": "x"}]},
        "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": PNG_B64}}]}],
        "generation_config": {"max_output_tokens": 50, "stop_sequences": ["END"]}});
    let path = format!("{GEN}?key={KEY}");
    let r = send(m.addr(), "POST", &path, &[], snake.to_string().as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["candidates"][0]["content"]["parts"][0]["text"], "You said: [inlineData image/png]");
    assert_eq!(m.last_request().unwrap().query.as_deref(), Some(&*format!("key={KEY}")));
}

#[tokio::test]
async fn authentication() {
    let m = mock_with(GeminiOptions { project: Some("proj-1".into()), ..Default::default() }).await;
    let body = base().to_string();
    let r = send(m.addr(), "POST", GEN, &[], body.as_bytes()).await;
    assert_eq!(
        assert_google_error(&r, 403, "PERMISSION_DENIED"),
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
    );
    let r = send(m.addr(), "POST", GEN, &[("x-goog-api-key", "wrong")], body.as_bytes()).await;
    assert_eq!(
        assert_google_error(&r, 400, "INVALID_ARGUMENT"),
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(r.json()["error"]["details"][0]["reason"], "API_KEY_INVALID");
    assert_eq!(r.json()["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    let r = send(m.addr(), "POST", &format!("{GEN}?alt=json&key=wrong"), &[], body.as_bytes()).await;
    assert_eq!(r.status, 400);
    let r = send(m.addr(), "POST", GEN, &[("authorization", TOKEN)], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = send(m.addr(), "POST", GEN, &[("authorization", "Bearer nope")], body.as_bytes()).await;
    assert_google_error(&r, 401, "UNAUTHENTICATED");

    let vpath = format!("{VERTEX}/gemini-mock:generateContent");
    let r = send(m.addr(), "POST", &vpath, &[], body.as_bytes()).await;
    assert!(
        assert_google_error(&r, 401, "UNAUTHENTICATED")
            .starts_with("Request is missing required authentication credential.")
    );
    assert_eq!(r.json()["error"]["details"][0]["reason"], "CREDENTIALS_MISSING");
    // An API key is not a Vertex credential.
    let r = send(m.addr(), "POST", &vpath, &[("x-goog-api-key", KEY)], body.as_bytes()).await;
    assert_eq!(r.status, 401);
    let r = send(m.addr(), "POST", &vpath, &[("authorization", "Bearer ya29.other")], body.as_bytes()).await;
    assert!(
        assert_google_error(&r, 401, "UNAUTHENTICATED")
            .starts_with("Request had invalid authentication credentials.")
    );
    let r = send(m.addr(), "POST", &vpath, &[("authorization", TOKEN)], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let other =
        "/v1/projects/proj-2/locations/europe-west4/publishers/google/models/gemini-mock:generateContent";
    let r = send(m.addr(), "POST", other, &[("authorization", TOKEN)], body.as_bytes()).await;
    assert_eq!(
        assert_google_error(&r, 403, "PERMISSION_DENIED"),
        "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/proj-2/locations/europe-west4/publishers/google/models/gemini-mock' (or it may not exist)."
    );
}

#[tokio::test]
async fn routes_bodies_and_size_limit() {
    let m = mock_with(GeminiOptions { max_body_bytes: 512, ..Default::default() }).await;
    let r = send(m.addr(), "GET", GEN, &[("x-goog-api-key", KEY)], b"").await;
    assert_google_error(&r, 405, "UNIMPLEMENTED");
    for path in [
        "/v1beta/models/g:chat",
        "/v1/models/g:generateContent",
        "/v1beta/models/g:predict",
        "/v1beta/chat/completions",
    ] {
        let r = send(m.addr(), "POST", path, &[("x-goog-api-key", KEY)], b"{}").await;
        assert_google_error(&r, 404, "NOT_FOUND");
    }
    let r = send(m.addr(), "POST", GEN, &[("x-goog-api-key", KEY)], b"{\"contents\":").await;
    assert!(assert_google_error(&r, 400, "INVALID_ARGUMENT").starts_with("Invalid JSON payload received."));
    let mut big = base();
    big["contents"][0]["parts"][0]["text"] = json!("word ".repeat(200));
    let r = generate(&m, "gemini-mock", &big).await;
    assert_invalid(&r, "Request payload size exceeds the limit: 512 bytes.");
}

/// The parsing layer: unknown names anywhere in the request shape and wrongly typed values.
#[tokio::test]
async fn rejects_unknown_fields_and_wrong_types() {
    let m = mock().await;
    let with_params = |params: Value| {
        let mut b = base();
        b["tools"] = json!([{"functionDeclarations": [{"name": "f", "parameters": params}]}]);
        b
    };
    let unknown = |name: &str, at: &str| {
        if at.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{name}\": Cannot find field.")
        } else {
            format!("Invalid JSON payload received. Unknown name \"{name}\" at '{at}': Cannot find field.")
        }
    };
    let params_at = "tools[0].function_declarations[0].parameters";
    let mut cases: Vec<(Value, String)> = vec![
        (json!({"contents": [{"parts": [{"text": "x"}]}], "foo": 1}), unknown("foo", "")),
        (
            json!({"model": "gemini-mock", "messages": [{"role": "user", "content": "x"}]}),
            unknown("messages", ""),
        ),
        (json!({"contents": [{"role": "user", "content": "x"}]}), unknown("content", "contents[0]")),
        (
            json!({"contents": [{"parts": [{"type": "text", "text": "x"}]}]}),
            unknown("type", "contents[0].parts[0]"),
        ),
        (
            json!({"contents": [{"parts": [{"image_url": {"url": "https://x/y.png"}}]}]}),
            unknown("image_url", "contents[0].parts[0]"),
        ),
        (
            {
                let mut b = base();
                b["generationConfig"] = json!({"max_tokens": 5});
                b
            },
            unknown("max_tokens", "generation_config"),
        ),
        (
            {
                let mut b = base();
                b["generationConfig"] = json!({"response_format": {"type": "json_object"}});
                b
            },
            unknown("response_format", "generation_config"),
        ),
        (
            {
                let mut b = base();
                b["toolConfig"] = json!({"tool_choice": "auto"});
                b
            },
            unknown("tool_choice", "tool_config"),
        ),
        (
            {
                let mut b = base();
                b["tools"] = json!([{"type": "function"}]);
                b
            },
            unknown("type", "tools[0]"),
        ),
        (
            {
                let mut b = base();
                b["labels"] = json!({"team": "a"});
                b
            },
            unknown("labels", ""),
        ),
        (
            {
                let mut b = base();
                b["safetySettings"] = json!([{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE", "method": "SEVERITY"}]);
                b
            },
            unknown("method", "safety_settings[0]"),
        ),
    ];
    // Schema keywords the Gemini API's Schema does not have.
    for keyword in [
        "additionalProperties",
        "$ref",
        "$schema",
        "definitions",
        "$defs",
        "oneOf",
        "allOf",
        "const",
        "examples",
        "patternProperties",
        "exclusiveMinimum",
        "not",
    ] {
        let params = json!({"type": "object", "properties": {"a": {"type": "string"}}, keyword: false});
        cases.push((with_params(params), unknown(keyword, params_at)));
    }
    // Nested: a map entry is named by position, as Google's parser does.
    cases.push((
        with_params(json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "object", "properties": {"c": {"type": "string"}}, "additionalProperties": false}}})),
        unknown("additionalProperties", &format!("{params_at}.properties[1].value")),
    ));
    cases.push((
        with_params(json!({"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "const": "x"}}}})),
        unknown("const", &format!("{params_at}.properties[0].value.items")),
    ));
    // Wrong types.
    let typed: Vec<(Value, &str)> = vec![
        (
            json!({"contents": [{"role": 1, "parts": [{"text": "x"}]}]}),
            "Invalid value at 'contents[0].role' (TYPE_STRING), 1",
        ),
        (
            json!({"contents": "hello"}),
            "Invalid value at 'contents' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \"hello\"",
        ),
        (
            json!({"contents": [{"parts": [{"text": ["a", "b"]}]}]}),
            "Invalid JSON payload received. Unknown name \"text\" at 'contents[0].parts[0]': Proto field is not repeating, cannot start list.",
        ),
        (
            json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "data:image/png;base64,iVBO"}}]}]}),
            "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for \"data:image/png;base64,iVBO\"",
        ),
        (
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}, {"role": "model", "parts": [{"functionCall": {"name": "f", "args": "{\"a\":1}"}}]}]}),
            "Invalid value at 'contents[1].parts[0].function_call.args' (type.googleapis.com/google.protobuf.Struct), \"{\\\"a\\\":1}\"",
        ),
        (
            json!({"contents": [{"parts": [{"functionResponse": {"name": "f", "response": "sunny"}}]}]}),
            "Invalid value at 'contents[0].parts[0].function_response.response' (type.googleapis.com/google.protobuf.Struct), \"sunny\"",
        ),
        (
            {
                let mut b = base();
                b["generationConfig"] = json!({"temperature": "hot"});
                b
            },
            "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\"",
        ),
        (
            {
                let mut b = base();
                b["generationConfig"] = json!({"maxOutputTokens": 10.5});
                b
            },
            "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), 10.5",
        ),
        (
            {
                let mut b = base();
                b["toolConfig"] = json!({"functionCallingConfig": {"mode": "REQUIRED"}});
                b
            },
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"REQUIRED\"",
        ),
        (
            {
                let mut b = base();
                b["toolConfig"] = json!({"functionCallingConfig": {"mode": "any"}});
                b
            },
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"any\"",
        ),
        (
            with_params(json!({"type": "dict", "properties": {"a": {"type": "string"}}})),
            "Invalid value at 'tools[0].function_declarations[0].parameters.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"dict\"",
        ),
        (
            with_params(json!({"type": "object", "properties": {"a": {"type": "string", "enum": [1]}}})),
            "Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.enum[0]' (TYPE_STRING), 1",
        ),
    ];
    cases.extend(typed.into_iter().map(|(b, s)| (b, s.to_owned())));
    for (body, message) in &cases {
        let r = generate(&m, "gemini-mock", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_invalid(&r, message);
        let v = r.json();
        let details = &v["error"]["details"][0];
        assert_eq!(details["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert_eq!(details["fieldViolations"][0]["description"], *message);
    }

    // Every problem is reported, one line each.
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "x", "foo": 1}]}], "bar": 2, "generationConfig": {"topK": "many"}});
    let r = generate(&m, "gemini-mock", &body).await;
    assert_invalid(
        &r,
        // (json! sorts keys: bar, contents, generationConfig.)
        "Invalid JSON payload received. Unknown name \"bar\": Cannot find field.\nInvalid JSON payload received. Unknown name \"foo\" at 'contents[0].parts[0]': Cannot find field.\nInvalid value at 'generation_config.top_k' (TYPE_INT32), \"many\"",
    );
    let violations = r.json()["error"]["details"][0]["fieldViolations"].clone();
    assert_eq!(violations.as_array().unwrap().len(), 3);
    assert_eq!(
        (violations[0]["field"].clone(), violations[1]["field"].clone()),
        (json!(""), json!("contents[0].parts[0]"))
    );
}

/// The semantic layer: roles, parts, function call turns, declarations, schemas, settings.
#[tokio::test]
async fn rejects_what_the_real_api_rejects() {
    let m = mock().await;
    let user = |parts: Value| json!({"role": "user", "parts": parts});
    let model = |parts: Value| json!({"role": "model", "parts": parts});
    let call = |name: &str| json!({"functionCall": {"name": name, "args": {"city": "Oslo"}}});
    let response = |name: &str| json!({"functionResponse": {"name": name, "response": {"temp": 12}}});
    let with_decls = |decls: Value| {
        let mut b = base();
        b["tools"] = json!([{"functionDeclarations": decls}]);
        b
    };
    let with_params = |params: Value| with_decls(json!([{"name": "f", "parameters": params}]));
    let field = |path: &str, msg: &str| format!("* GenerateContentRequest.{path}: {msg}\n");
    let params = "tools[0].function_declarations[0].parameters";
    let cases: Vec<(Value, String)> = vec![
        (json!({}), field("contents", "contents is not specified")),
        (json!({"contents": []}), field("contents", "contents is not specified")),
        (json!({"contents": [{"role": "system", "parts": [{"text": "be nice"}]}, user(json!([{"text": "x"}]))]}), "Please use a valid role: user, model.".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), {"role": "assistant", "parts": [{"text": "y"}]}]}), "Please use a valid role: user, model.".into()),
        (json!({"contents": [{"role": "function", "parts": [response("f")]}]}), "Please use a valid role: user, model.".into()),
        (json!({"contents": [user(json!([]))]}), field("contents[0].parts", "contents.parts must not be empty.")),
        (json!({"contents": [{"role": "user"}]}), field("contents[0].parts", "contents.parts must not be empty.")),
        (json!({"contents": [user(json!([{}]))]}), field("contents[0].parts[0].data", "required oneof field 'data' must have one initialized field")),
        (json!({"contents": [user(json!([{"thought": true}]))]}), field("contents[0].parts[0].data", "required oneof field 'data' must have one initialized field")),
        (json!({"contents": [user(json!([{"text": "x", "inlineData": {"mimeType": "image/png", "data": PNG_B64}}]))]}), field("contents[0].parts[0].data", "oneof field 'data' is already set. Cannot set 'inline_data' after 'text'")),
        (json!({"contents": [user(json!([{"inlineData": {"mimeType": "image/bmp", "data": PNG_B64}}]))]}), "Unsupported MIME type: image/bmp".into()),
        (json!({"contents": [user(json!([{"inlineData": {"mimeType": "image/png", "data": "aGVsbG8="}}]))]}), "Unable to process input image. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".into()),
        (json!({"contents": [user(json!([{"inlineData": {"data": PNG_B64}}]))]}), field("contents[0].parts[0].inline_data.mime_type", "mime_type must be specified")),
        (json!({"contents": [user(json!([{"fileData": {"mimeType": "application/pdf"}}]))]}), field("contents[0].parts[0].file_data.file_uri", "file_uri must be specified")),
        (json!({"contents": [user(json!([call("f")]))]}), field("contents[0].parts[0].function_call", "function_call parts are only allowed in model turns")),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([{"functionCall": {"args": {}}}])), user(json!([response("f")]))]}), field("contents[1].parts[0].function_call.name", "Name cannot be empty.")),
        (json!({"contents": [model(json!([call("f")])), user(json!([response("f")]))]}), "Please ensure that function call turn comes immediately after a user turn or after a function response turn.".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([{"text": "y"}])), model(json!([call("f")]))]}), "Please ensure that function call turn comes immediately after a user turn or after a function response turn.".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([{"text": "y"}])), user(json!([response("f")]))]}), "Please ensure that function response turn comes immediately after a function call turn.".into()),
        (json!({"contents": [user(json!([response("f")]))]}), "Please ensure that function response turn comes immediately after a function call turn.".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([call("f"), call("g")])), user(json!([response("f")]))]}), "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([call("f")])), user(json!([response("g")]))]}), "Please ensure that the function response names match the function call names of the function call turn: [f] vs [g].".into()),
        (json!({"contents": [user(json!([{"text": "x"}])), model(json!([call("f")])), model(json!([response("f")]))]}), field("contents[2].parts[0].function_response", "function_response parts are only allowed in user turns")),
        (with_decls(json!([{"name": "get weather"}])), field("tools[0].function_declarations[0].name", "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.")),
        (with_decls(json!([{"name": "1st"}])), field("tools[0].function_declarations[0].name", "Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.")),
        (with_decls(json!([weather_decl(), weather_decl()])), field("tools[0].function_declarations[1].name", "Duplicate function declaration name: get_weather")),
        (with_decls(json!([{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}, "parametersJsonSchema": {"type": "object"}}])), field("tools[0].function_declarations[0]", "parameters and parameters_json_schema cannot both be set")),
        (with_params(json!({"type": "object", "properties": {}})), field(&format!("{params}.properties"), "should be non-empty for OBJECT type")),
        (with_params(json!({"type": "object"})), field(&format!("{params}.properties"), "should be non-empty for OBJECT type")),
        (with_params(json!({"type": "object", "properties": {"a": {"type": "string", "properties": {"b": {"type": "string"}}}}})), field(&format!("{params}.properties[a].properties"), "only allowed for OBJECT type")),
        (with_params(json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]})), field(&format!("{params}.required[1]"), "property is not defined")),
        (with_params(json!({"type": "object", "properties": {"a": {"type": "array"}}})), field(&format!("{params}.properties[a].items"), "missing field.")),
        (with_params(json!({"type": "object", "properties": {"a": {"description": "anything"}}})), field(&format!("{params}.properties[a].type"), "must be specified when not using one_of, any_of or all_of fields")),
        (with_params(json!({"type": "object", "properties": {"a": {"type": "boolean", "enum": ["x"]}}})), field(&format!("{params}.properties[a].enum"), "only allowed for STRING and INTEGER type")),
        ({ let mut b = with_decls(json!([weather_decl()])); b["toolConfig"] = json!({"functionCallingConfig": {"mode": "AUTO", "allowedFunctionNames": ["get_weather"]}}); b }, field("tool_config.function_calling_config.allowed_function_names", "allowed_function_names can only be set when mode is ANY or VALIDATED")),
        ({ let mut b = with_decls(json!([weather_decl()])); b["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["nope"]}}); b }, field("tool_config.function_calling_config.allowed_function_names[0]", "function \"nope\" is not declared in tools")),
        ({ let mut b = base(); b["generationConfig"] = json!({"stopSequences": ["a", "b", "c", "d", "e", "f"]}); b }, field("generation_config.stop_sequences", "at most 5 stop sequences are allowed")),
        ({ let mut b = base(); b["generationConfig"] = json!({"temperature": 2.5}); b }, field("generation_config.temperature", "temperature must be in the range [0.0, 2.0]")),
        ({ let mut b = base(); b["generationConfig"] = json!({"topP": 1.5}); b }, field("generation_config.top_p", "top_p must be in the range [0.0, 1.0]")),
        ({ let mut b = base(); b["generationConfig"] = json!({"candidateCount": 0}); b }, field("generation_config.candidate_count", "candidate_count must be in the range [1, 8]")),
        ({ let mut b = base(); b["generationConfig"] = json!({"maxOutputTokens": 0}); b }, field("generation_config.max_output_tokens", "max_output_tokens must be positive")),
        ({ let mut b = base(); b["generationConfig"] = json!({"responseMimeType": "application/x-ndjson"}); b }, field("generation_config.response_mime_type", "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`.")),
        ({ let mut b = base(); b["generationConfig"] = json!({"responseSchema": {"type": "STRING"}}); b }, field("generation_config.response_mime_type", "response_mime_type must be application/json or text/x.enum when a response schema is set")),
        ({ let mut b = base(); b["generationConfig"] = json!({"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {}}}); b }, field("generation_config.response_schema.properties", "should be non-empty for OBJECT type")),
        ({ let mut b = base(); b["generationConfig"] = json!({"thinkingConfig": {"thinkingBudget": 100, "thinkingLevel": "LOW"}}); b }, field("generation_config.thinking_config", "thinking_budget and thinking_level cannot both be set")),
        ({ let mut b = base(); b["cachedContent"] = json!("abc"); b }, field("cached_content", "must be of the form cachedContents/{cachedContent}")),
        // Several problems: all reported.
        (with_params(json!({"type": "object", "properties": {"a": {"type": "object", "properties": {}}, "b": {"type": "array"}}})),
         format!("{}{}", field(&format!("{params}.properties[a].properties"), "should be non-empty for OBJECT type"), field(&format!("{params}.properties[b].items"), "missing field."))),
    ];
    for (body, message) in &cases {
        let r = generate(&m, "gemini-mock", body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        assert_invalid(&r, message);
        if message.starts_with("* ") {
            assert_eq!(r.json()["error"]["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
        }
    }
}

/// Valid requests exercising every accepted form, on both APIs.
#[tokio::test]
async fn accepts_every_documented_form() {
    let m = mock().await;
    let full = json!({
        "systemInstruction": {"role": "system", "parts": [{"text": "You are helpful."}]},
        "contents": [
            {"parts": [{"text": "Weather in Oslo and the time?"}, {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRgABAQ=="}}]},
            {"role": "model", "parts": [{"text": "Checking.", "thought": true}, {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}, "thoughtSignature": "c2ln"},
                                        {"functionCall": {"id": "c2", "name": "get_time", "args": {}}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {"time": "12:00"}}},
                                       {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"temp": 12}}}]}],
        "tools": [{"functionDeclarations": [
            weather_decl(),
            time_decl(),
            {"name": "search.docs:v1", "description": "no parameters at all"},
            {"name": "_everything", "parameters": {"type": "object", "nullable": false, "propertyOrdering": ["n", "tags", "choice"], "properties": {
                "n": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 9, "default": 3, "title": "N"},
                "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$", "minLength": "1"}, "minItems": 1, "maxItems": "4"},
                "choice": {"anyOf": [{"type": "string"}, {"type": "number", "nullable": true}]},
                "meta": {"type": "object", "properties": {"k": {"type": "string", "example": "v"}}, "required": ["k"], "minProperties": 1}},
                "required": ["n"]}}]},
            {"googleSearch": {}}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "safetySettings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "threshold": "BLOCK_ONLY_HIGH"}],
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "topK": 40, "candidateCount": 1, "maxOutputTokens": 256,
            "stopSequences": ["END"], "seed": 7, "presencePenalty": 0.1, "frequencyPenalty": 0.1,
            "responseMimeType": "text/plain", "thinkingConfig": {"thinkingBudget": 0, "includeThoughts": false}},
        "cachedContent": "cachedContents/abc"
    });
    let r = generate(&m, "gemini-mock", &full).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Mode ANY forces a call of an allowed function.
    assert_eq!(r.json()["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    // Prompt: system 3 + "Weather in Oslo and the time?" 6 + image 1 + "Checking." 1 + 2 calls + 2 responses + 4 declarations.
    assert_eq!(r.json()["usageMetadata"]["promptTokenCount"], 19);

    // The same body at Vertex; Vertex's Schema also takes additionalProperties, and its
    // requests take labels.
    let mut vertex = full.clone();
    vertex["labels"] = json!({"team": "search"});
    vertex["tools"][0]["functionDeclarations"][0]["parameters"]["additionalProperties"] = json!(false);
    let r = post_path(&m, &format!("{VERTEX}/gemini-mock:generateContent"), &vertex).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["createTime"], "2025-01-01T00:00:00.000000Z");
    assert_eq!(v["usageMetadata"]["trafficType"], "ON_DEMAND");
    let r = generate(&m, "gemini-mock", &vertex).await;
    assert_eq!(r.status, 400);

    // A function response turn ends with the model's answer in text.
    let mut follow = full.clone();
    follow.as_object_mut().unwrap().remove("toolConfig");
    let v = generate(&m, "gemini-mock", &follow).await.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        r#"You said: [functionResponse get_time: {"time":"12:00"}] [functionResponse get_weather: {"temp":12}]"#
    );
}

#[tokio::test]
async fn function_call_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["tools"] = json!([{"functionDeclarations": [weather_decl(), time_decl()]}]);
    let v = generate(&m, "gemini-tool", &body).await.json();
    let cand = &v["candidates"][0];
    assert_eq!(
        cand["content"],
        json!({"parts": [{"functionCall": {"name": "get_weather", "args": {"city": "city sample", "unit": "celsius"}}}], "role": "model"})
    );
    assert_eq!(cand["finishReason"], "STOP");
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 1);

    let v = generate(&m, "gemini-parallel-tools", &body).await.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0]["functionCall"]["name"], "get_weather");
    assert_eq!(parts[1]["functionCall"], json!({"name": "get_time", "args": {"zone": "zone sample"}}));
    assert!(parts[0]["functionCall"].get("id").is_none());

    let v = generate(&m, "gemini-text-tool", &body).await.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(
        (parts[0].clone(), parts[1]["functionCall"]["name"].clone()),
        (json!({"text": "Let me call get_weather."}), json!("get_weather"))
    );
    assert_eq!(v["usageMetadata"]["candidatesTokenCount"], 5);

    // Modes: ANY forces a call (of an allowed function), NONE forbids one.
    body["toolConfig"] =
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}});
    let v = generate(&m, "gemini-mock", &body).await.json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_time");
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let v = generate(&m, "gemini-tool", &body).await.json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "You said: hello there");

    // Thinking: thought tokens, a thought part when asked for, a signature on the call.
    body["toolConfig"] = json!({"functionCallingConfig": {"mode": "AUTO"}});
    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}});
    let v = generate(&m, "gemini-tool-thinking", &body).await.json();
    let parts = &v["candidates"][0]["content"]["parts"];
    assert_eq!(parts[0], json!({"text": "Thinking about the request.", "thought": true}));
    assert_eq!(parts[1]["thoughtSignature"], THOUGHT_SIGNATURE);
    let u = &v["usageMetadata"];
    assert_eq!(
        (u["thoughtsTokenCount"].as_u64(), u["candidatesTokenCount"].as_u64()),
        (Some(THOUGHTS_TOKENS), Some(1))
    );
    assert_eq!(
        u["totalTokenCount"].as_u64().unwrap(),
        u["promptTokenCount"].as_u64().unwrap() + 1 + THOUGHTS_TOKENS
    );
}

#[tokio::test]
async fn finish_usage_safety_and_json_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["contents"][0]["parts"][0]["text"] = json!("one two three four five");
    let v = generate(&m, "gemini-max-tokens", &body).await.json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "You said: one ");
    assert_eq!(v["candidates"][0]["finishReason"], "MAX_TOKENS");
    body["generationConfig"] = json!({"maxOutputTokens": 4});
    let v = generate(&m, "gemini-mock", &body).await.json();
    assert_eq!(
        (v["candidates"][0]["finishReason"].clone(), v["usageMetadata"]["candidatesTokenCount"].clone()),
        (json!("MAX_TOKENS"), json!(4))
    );
    body.as_object_mut().unwrap().remove("generationConfig");

    let v = generate(&m, "gemini-cache", &body).await.json();
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12, "cachedContentTokenCount": 3,
               "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}], "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]})
    );

    let v = generate(&m, "gemini-safety", &body).await.json();
    let cand = &v["candidates"][0];
    assert_eq!(cand["finishReason"], "SAFETY");
    assert!(cand.get("content").is_none());
    assert!(cand["safetyRatings"].as_array().unwrap().iter().any(|r| r["blocked"] == true));
    assert_eq!(
        v["usageMetadata"],
        json!({"promptTokenCount": 5, "totalTokenCount": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
    );

    let v = generate(&m, "gemini-prompt-blocked", &body).await.json();
    assert!(v.get("candidates").is_none());
    assert_eq!(v["promptFeedback"]["blockReason"], "SAFETY");

    // JSON mode: with a responseSchema (Gemini Schema), a responseJsonSchema, or neither.
    let schema = json!({"type": "OBJECT", "properties": {"name": {"type": "STRING"}, "tags": {"type": "ARRAY", "items": {"type": "STRING"}}}});
    body["generationConfig"] = json!({"responseMimeType": "application/json", "responseSchema": schema});
    let v = generate(&m, "gemini-mock", &body).await.json();
    let text: Value =
        serde_json::from_str(v["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({"name": "name sample", "tags": ["tags sample"]}));
    body["generationConfig"] = json!({"responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "additionalProperties": false}});
    let v = generate(&m, "gemini-mock", &body).await.json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], r#"{"ok":true}"#);
    body["generationConfig"] = json!({"responseMimeType": "application/json"});
    let v = generate(&m, "gemini-mock", &body).await.json();
    assert_eq!(
        v["candidates"][0]["content"]["parts"][0]["text"],
        r#"{"text":"You said: one two three four five"}"#
    );
    body["generationConfig"] = json!({"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["red", "blue"]}});
    let v = generate(&m, "gemini-mock", &body).await.json();
    assert_eq!(v["candidates"][0]["content"]["parts"][0]["text"], "red");
}

#[tokio::test]
async fn error_models() {
    let m = mock().await;
    for (code, status) in [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ] {
        for method in ["generateContent", "streamGenerateContent?alt=sse"] {
            let r = post_path(&m, &gen_path(&format!("error-{code}"), method), &base()).await;
            assert!(!assert_google_error(&r, code, status).is_empty());
            assert_eq!(r.header("retry-after"), None);
        }
        let r = post_path(&m, &format!("{VERTEX}/error-{code}:generateContent"), &base()).await;
        assert_google_error(&r, code, status);
    }
    let r = generate(&m, "error-429", &base()).await;
    assert_eq!(
        r.json()["error"]["details"],
        json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}])
    );
    let r = generate(&m, "error-503", &base()).await;
    assert_eq!(r.json()["error"]["message"], "The model is overloaded. Please try again later.");
    let r = generate(&m, "error-404", &base()).await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("models/error-404 is not found for API version v1beta")
    );
    // The request is validated first.
    assert_eq!(
        generate(&m, "error-503", &json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}))
            .await
            .status,
        400
    );
}

#[tokio::test]
async fn malformed_and_disconnect_without_stream() {
    let m = mock().await;
    let r = generate(&m, "gemini-malformed", &base()).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());
    let r = generate(&m, "gemini-disconnect", &base()).await;
    assert!(r.cut);
    assert!(r.text().starts_with(r#"{"candidates":"#));
    let r = generate(&m, "gemini-midstream-error", &base()).await;
    assert_eq!(r.json()["candidates"][0]["finishReason"], "STOP");
}

/// Splits an SSE body into its JSON chunks, checking the `data: …\r\n\r\n` framing.
fn sse_chunks(resp: &Resp) -> Vec<Value> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let text = resp.text();
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    assert!(!text.contains("event:"));
    text.split_terminator("\r\n\r\n")
        .map(|e| serde_json::from_str(e.strip_prefix("data: ").unwrap_or_else(|| panic!("{e:?}"))).unwrap())
        .collect()
}

fn stream_path(model: &str) -> String {
    gen_path(model, "streamGenerateContent?alt=sse")
}

#[tokio::test]
async fn text_stream_chunks_carry_cumulative_usage() {
    let m = mock().await;
    let mut body = base();
    body["contents"][0]["parts"][0]["text"] = json!("tell me a short story");
    let r = post_path(&m, &stream_path("gemini-mock"), &body).await;
    assert!(!r.cut);
    assert_eq!(m.last_request().unwrap().query.as_deref(), Some("alt=sse"));
    let chunks = sse_chunks(&r);
    // "You said: tell me a short story": 7 words, two per chunk.
    assert_eq!(chunks.len(), 4);
    let mut text = String::new();
    for (i, c) in chunks.iter().enumerate() {
        let cand = &c["candidates"][0];
        assert_eq!(cand["content"]["role"], "model");
        assert_eq!(cand["index"], 0);
        text.push_str(cand["content"]["parts"][0]["text"].as_str().unwrap());
        assert_eq!(cand.get("finishReason").is_some(), i == 3, "{c}");
        let words = (2 * (i + 1)).min(7) as u64;
        assert_eq!(
            c["usageMetadata"],
            json!({"promptTokenCount": 5, "candidatesTokenCount": words, "totalTokenCount": 5 + words,
                   "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
        );
        assert_eq!(
            (&c["modelVersion"], &c["responseId"]),
            (&json!("gemini-mock"), &json!("mock-response-1"))
        );
    }
    assert_eq!(text, "You said: tell me a short story");
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
    // The raw framing: CRLF line ends, no event lines.
    assert!(
        r.text().starts_with("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"You said: \"}]")
    );

    // Without alt=sse the same chunks arrive as one JSON array.
    let r = post_path(&m, &gen_path("gemini-mock", "streamGenerateContent"), &body).await;
    assert_eq!(r.header("content-type"), Some("application/json; charset=UTF-8"));
    let array = r.json();
    assert_eq!(array.as_array().unwrap().len(), 4);
    assert_eq!(array[3]["usageMetadata"]["candidatesTokenCount"], 7);
}

#[tokio::test]
async fn function_calls_stream_whole_in_one_chunk() {
    let m = mock().await;
    let mut body = base();
    body["tools"] = json!([{"functionDeclarations": [weather_decl(), time_decl()]}]);
    let chunks = sse_chunks(&post_path(&m, &stream_path("gemini-parallel-tools"), &body).await);
    assert_eq!(chunks.len(), 1);
    let cand = &chunks[0]["candidates"][0];
    assert_eq!(cand["finishReason"], "STOP");
    let names: Vec<&str> = cand["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["functionCall"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_time"]);
    assert_eq!(chunks[0]["usageMetadata"]["candidatesTokenCount"], 2);

    body["generationConfig"] = json!({"thinkingConfig": {"includeThoughts": true}});
    let chunks = sse_chunks(&post_path(&m, &stream_path("gemini-text-tool-thinking-cache"), &body).await);
    // A thought chunk, "Let me call get_weather." in two chunks, then the call.
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[0]["candidates"][0]["content"]["parts"][0]["thought"], true);
    assert_eq!(chunks[3]["candidates"][0]["content"]["parts"][0]["functionCall"]["name"], "get_weather");
    assert_eq!(chunks[3]["candidates"][0]["content"]["parts"][0]["thoughtSignature"], THOUGHT_SIGNATURE);
    for (c, cands) in chunks.iter().zip([0, 2, 4, 5]) {
        let u = &c["usageMetadata"];
        assert_eq!(u["candidatesTokenCount"], cands, "{c}");
        assert_eq!(u["thoughtsTokenCount"], THOUGHTS_TOKENS);
        assert_eq!(u["cachedContentTokenCount"], 2);
    }
}

#[tokio::test]
async fn stream_failures() {
    let m = mock().await;
    let mut body = base();
    body["contents"][0]["parts"][0]["text"] = json!("a b c d e f g h");

    let r = post_path(&m, &stream_path("gemini-midstream-error"), &body).await;
    assert!(!r.cut);
    let chunks = sse_chunks(&r);
    assert_eq!(chunks.len(), 3);
    assert!(chunks[..2].iter().all(|c| c.get("candidates").is_some()));
    assert_eq!(
        chunks[2],
        json!({"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}})
    );

    let r = post_path(&m, &stream_path("gemini-disconnect"), &body).await;
    assert!(r.cut, "{}", r.text());
    assert_eq!(sse_chunks(&r).len(), 2);

    let r = post_path(&m, &stream_path("gemini-malformed"), &body).await;
    let text = r.text();
    let events: Vec<&str> = text.split_terminator("\r\n\r\n").collect();
    assert_eq!(events.len(), 2);
    assert!(serde_json::from_str::<Value>(&events[0][6..]).is_ok());
    assert!(serde_json::from_str::<Value>(&events[1][6..]).is_err());

    // Safety blocks stream as a single chunk.
    let chunks = sse_chunks(&post_path(&m, &stream_path("gemini-safety"), &body).await);
    assert_eq!((chunks.len(), chunks[0]["candidates"][0]["finishReason"].clone()), (1, json!("SAFETY")));
}

#[tokio::test]
async fn pacing_spaces_chunks() {
    let m = mock_with(GeminiOptions { pace: Duration::from_millis(15), ..Default::default() }).await;
    let t = Instant::now();
    let chunks = sse_chunks(&post_path(&m, &stream_path("gemini-mock"), &base()).await);
    assert_eq!(chunks.len(), 2);
    assert!(t.elapsed() >= Duration::from_millis(15), "{:?}", t.elapsed());
}

#[tokio::test]
async fn vertex_stream_and_count_tokens() {
    let m = mock().await;
    let chunks = sse_chunks(
        &post_path(&m, &format!("{VERTEX}/gemini-mock:streamGenerateContent?alt=sse"), &base()).await,
    );
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["usageMetadata"]["trafficType"], "ON_DEMAND");
    let r = post_path(
        &m,
        "/v1beta1/projects/p/locations/global/publishers/google/models/gemini-mock:generateContent",
        &base(),
    )
    .await;
    assert_eq!(r.status, 200);

    let body = json!({"contents": [{"role": "user", "parts": [{"text": "count these four words"}]}],
                      "systemInstruction": {"parts": [{"text": "Be brief"}]}});
    let r = post_path(&m, &format!("{VERTEX}/gemini-mock:countTokens"), &body).await;
    assert_eq!(
        r.json(),
        json!({"totalTokens": 6, "totalBillableCharacters": 30, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}]})
    );
    // The Gemini API nests a whole request, or takes bare contents.
    let nested = json!({"generateContentRequest": body});
    let r = post_path(&m, &gen_path("gemini-mock", "countTokens"), &nested).await;
    assert_eq!(
        r.json(),
        json!({"totalTokens": 6, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}]})
    );
    let r =
        post_path(&m, &gen_path("gemini-mock", "countTokens"), &json!({"contents": body["contents"]})).await;
    assert_eq!(r.json()["totalTokens"], 4);
    let r = post_path(&m, &gen_path("gemini-mock", "countTokens"), &body).await;
    assert_invalid(
        &r,
        "Invalid JSON payload received. Unknown name \"systemInstruction\": Cannot find field.",
    );
    let r = post_path(
        &m,
        &gen_path("gemini-mock", "countTokens"),
        &json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}),
    )
    .await;
    assert_invalid(&r, "Please use a valid role: user, model.");
}

#[tokio::test]
async fn embeddings() {
    let m = mock_with(GeminiOptions { embedding_dimensions: 16, ..Default::default() }).await;
    let embed = |text: &str| json!({"content": {"parts": [{"text": text}]}});
    let path = gen_path("text-embedding-004", "embedContent");
    let a = post_path(&m, &path, &embed("hello world")).await.json();
    let values = a["embedding"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 16);
    assert!(values.iter().all(|v| (-1.0..=1.0).contains(&v.as_f64().unwrap())));
    assert_eq!(post_path(&m, &path, &embed("hello world")).await.json(), a);
    assert_ne!(post_path(&m, &path, &embed("goodbye")).await.json(), a);
    let mut short = embed("hello world");
    short["outputDimensionality"] = json!(4);
    short["taskType"] = json!("RETRIEVAL_QUERY");
    short["model"] = json!("models/text-embedding-004");
    let s = post_path(&m, &path, &short).await.json();
    assert_eq!(s["embedding"]["values"].as_array().unwrap()[..], values[..4]);

    let batch = json!({"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "hello world"}]}},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "bye"}]}, "outputDimensionality": 2}]});
    let b = post_path(&m, &gen_path("text-embedding-004", "batchEmbedContents"), &batch).await.json();
    assert_eq!(b["embeddings"][0]["values"], a["embedding"]["values"]);
    assert_eq!(b["embeddings"][1]["values"].as_array().unwrap().len(), 2);

    // Refusals.
    let cases: Vec<(String, Value, &str)> = vec![
        (path.clone(), json!({}), "* EmbedContentRequest.content: content is not specified\n"),
        (
            path.clone(),
            json!({"content": {"parts": []}}),
            "* EmbedContentRequest.content.parts: contents.parts must not be empty.\n",
        ),
        (
            path.clone(),
            {
                let mut e = embed("x");
                e["outputDimensionality"] = json!(17);
                e
            },
            "* EmbedContentRequest.output_dimensionality: output_dimensionality must be in the range [1, 16]\n",
        ),
        (
            path.clone(),
            {
                let mut e = embed("x");
                e["model"] = json!("models/other");
                e
            },
            "* EmbedContentRequest.model: the model in the request body (\"models/other\") must be the model in the URL (\"models/text-embedding-004\")\n",
        ),
        (
            path.clone(),
            json!({"input": "x"}),
            "Invalid JSON payload received. Unknown name \"input\": Cannot find field.",
        ),
        (
            path.clone(),
            {
                let mut e = embed("x");
                e["taskType"] = json!("SEARCH");
                e
            },
            "Invalid value at 'task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), \"SEARCH\"",
        ),
        (
            gen_path("text-embedding-004", "batchEmbedContents"),
            json!({"requests": [embed("x")]}),
            "* BatchEmbedContentsRequest.requests[0].model: model is required\n",
        ),
        (
            gen_path("text-embedding-004", "batchEmbedContents"),
            json!({"requests": []}),
            "* BatchEmbedContentsRequest.requests: requests is not specified\n",
        ),
    ];
    for (p, body, message) in &cases {
        assert_invalid(&post_path(&m, p, body).await, message);
    }

    // Vertex text embeddings through :predict.
    let vpath = format!("{VERTEX}/text-embedding-005:predict");
    let r = post_path(&m, &vpath, &json!({"instances": [{"content": "hello world", "task_type": "RETRIEVAL_QUERY"}], "parameters": {"outputDimensionality": 4}})).await;
    let v = r.json();
    assert_eq!(v["predictions"][0]["embeddings"]["values"].as_array().unwrap()[..], values[..4]);
    assert_eq!(
        v["predictions"][0]["embeddings"]["statistics"],
        json!({"truncated": false, "token_count": 2})
    );
    assert_eq!(v["metadata"]["billableCharacterCount"], 10);
    let r = post_path(&m, &vpath, &json!({"instances": [{"text": "x"}]})).await;
    assert_invalid(
        &r,
        "* PredictRequest.instances[0].text: unknown or invalid instance field\n* PredictRequest.instances[0].content: content is not specified\n",
    );
}
