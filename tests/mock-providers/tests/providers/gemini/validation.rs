//! Both validation layers: unknown names and wrong types, then the semantic rules.

use super::*;

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
