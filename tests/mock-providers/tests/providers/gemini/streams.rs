//! SSE and JSON-array streams chunk by chunk, stream failures, pacing and Vertex counting.

use super::*;

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
