//! Plain (non-streamed) answers: authentication, routes, accepted forms, model-id behaviours,
//! error models and embeddings.

use super::*;

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
