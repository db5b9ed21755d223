//! Plain (non-streamed) answers: headers, routes, accepted forms, model-id behaviours,
//! error models and token counting.

use super::*;

#[tokio::test]
async fn text_reply_is_derived_from_the_request() {
    let m = mock().await;
    let body = json!({"model": "claude-mock", "max_tokens": 64,
        "system": "Be brief and kind",
        "messages": [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "Hi!"},
                     {"role": "user", "content": [{"type": "text", "text": "what is up"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}]}]});
    let resp = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[
            ("x-api-key", KEY),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "prompt-caching-2024-07-31"),
        ],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header("request-id"), Some("req_mock_1"));
    // Key order as documented, too.
    assert_eq!(
        resp.text(),
        r#"{"id":"msg_mock_1","type":"message","role":"assistant","model":"claude-mock","content":[{"type":"text","text":"You said: what is up [image image/png] [image https://example.com/a.jpg]"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":9,"service_tier":"standard"}}"#
    );
    // input_tokens: system 4 + "hello there" 2 + "Hi!" 1 + "what is up" 3 + 2 images = 12.
    let rec = m.last_request().unwrap();
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str(), rec.query.as_deref()),
        ("POST", "/v1/messages", None)
    );
    assert_eq!(rec.body, body);
    assert_eq!(rec.header("Anthropic-Beta"), Some("prompt-caching-2024-07-31"));
    assert_eq!(rec.header("x-api-key"), Some(KEY));
    assert_eq!(m.requests(), 1);
    assert!(m.base_url().starts_with("http://127.0.0.1:"));
    assert_eq!(m.messages_url(), format!("{}/v1/messages", m.base_url()));
}

#[tokio::test]
async fn authentication_and_version_headers() {
    let m = mock().await;
    let body = base().to_string();
    let r =
        send(m.addr(), "POST", "/v1/messages", &[("anthropic-version", "2023-06-01")], body.as_bytes()).await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "x-api-key header is required");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "invalid x-api-key");
    // Bearer and api-key are Foundry forms, refused unless enabled.
    let bearer = format!("Bearer {KEY}");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("authorization", &bearer), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = send(m.addr(), "POST", "/v1/messages", &[("x-api-key", KEY)], body.as_bytes()).await;
    assert_invalid(&r, "anthropic-version: header is required");
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2024-13-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("anthropic-version: invalid version"));
    let r = send(
        m.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", KEY), ("anthropic-version", "2023-01-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200);

    let foundry = mock_with(AnthropicOptions {
        azure_auth: true,
        path_prefix: "/anthropic".into(),
        api_key: "azure-key".into(),
        ..Default::default()
    })
    .await;
    assert!(foundry.base_url().ends_with("/anthropic"));
    for auth in [("api-key", "azure-key"), ("authorization", "Bearer azure-key"), ("x-api-key", "azure-key")]
    {
        let r = send(
            foundry.addr(),
            "POST",
            "/anthropic/v1/messages",
            &[auth, ("anthropic-version", "2023-06-01")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "{auth:?}: {}", r.text());
    }
    let r = send(
        foundry.addr(),
        "POST",
        "/anthropic/v1/messages",
        &[("api-key", "wrong"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 401, "authentication_error"), "invalid x-api-key");
    let r = send(
        foundry.addr(),
        "POST",
        "/v1/messages",
        &[("api-key", "azure-key"), ("anthropic-version", "2023-06-01")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(assert_error(&r, 404, "not_found_error"), "Not Found");
}

#[tokio::test]
async fn routes_bodies_and_size_limit() {
    let m = mock_with(AnthropicOptions { max_body_bytes: 1024, ..Default::default() }).await;
    let r = send(m.addr(), "GET", "/v1/messages", HEADERS, b"").await;
    assert_eq!(assert_error(&r, 405, "invalid_request_error"), "Method Not Allowed");
    let r = send(m.addr(), "POST", "/v1/complete", HEADERS, b"{}").await;
    assert_eq!(assert_error(&r, 404, "not_found_error"), "Not Found");
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, b"{\"model\":").await;
    assert_error(&r, 400, "invalid_request_error");
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, b"[1]").await;
    assert_invalid(&r, "body: Input should be a valid dictionary");
    let mut big = base();
    big["messages"][0]["content"] = json!("word ".repeat(300));
    let r = post(&m, &big).await;
    assert_eq!(
        assert_error(&r, 413, "request_too_large"),
        "Request exceeds the maximum allowed number of bytes."
    );
    assert_eq!(m.requests(), 5);
}

/// Valid requests that exercise every accepted form: all answered 200.
#[tokio::test]
async fn accepts_every_documented_form() {
    let m = mock().await;
    let full = json!({
        "model": "claude-mock", "max_tokens": 128,
        "system": [{"type": "text", "text": "You are helpful.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Oslo?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG_B64}, "cache_control": {"type": "ephemeral"}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a doc"}, "title": "t"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Oslo"}},
                {"type": "tool_use", "id": "call_9-x", "name": "get_time", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": [{"type": "text", "text": "12 degrees"}]},
                {"type": "tool_result", "tool_use_id": "call_9-x", "content": "timeout", "is_error": true},
                {"type": "text", "text": "thanks"}]},
            {"role": "assistant", "content": "Prefilled"}],
        "tools": [weather_tool(), time_tool(), {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "temperature": 0, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}, "service_tier": "auto", "thinking": {"type": "disabled"},
        "output_config": {"effort": "high"}, "stream": false, "inference_geo": null, "container": null
    });
    let r = post(&m, &full).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["content"][0]["text"],
        "You said: [tool_result toolu_01A: 12 degrees] [tool_error call_9-x: timeout] thanks"
    );
    // system 3 + "Weather in Oslo?" 3 + image 1 + document 1 + "Checking." 1 + 2 tool_use
    // + 2 tool_result (+ "12 degrees" 2, "timeout" 1) + "thanks" 1 + "Prefilled" 1 + 3 tools = 21
    assert_eq!(v["usage"]["input_tokens"], 21);

    // max_tokens 0 only pre-warms the cache: no content.
    let mut zero = base();
    zero["max_tokens"] = json!(0);
    let v = post(&m, &zero).await.json();
    assert_eq!((v["content"].clone(), v["stop_reason"].clone()), (json!([]), json!("max_tokens")));
    assert_eq!(v["usage"]["output_tokens"], 1);

    // A reply longer than max_tokens words is cut there.
    let mut short = base();
    short["max_tokens"] = json!(2);
    let v = post(&m, &short).await.json();
    assert_eq!(
        (v["content"][0]["text"].clone(), v["stop_reason"].clone()),
        (json!("You said: "), json!("max_tokens"))
    );

    // Combining consecutive turns, as the current API documents, when strict_turns is off.
    let lenient = mock_with(AnthropicOptions { strict_turns: false, ..Default::default() }).await;
    let body = json!({"model": "m", "max_tokens": 50, "messages": [
        {"role": "assistant", "content": "Earlier."}, {"role": "user", "content": "one"}, {"role": "user", "content": "two"}]});
    let v = post(&lenient, &body).await.json();
    assert_eq!(v["content"][0]["text"], "You said: one two");
    assert_eq!(post(&m, &body).await.status, 400);
}

/// How many 3, 4, 5, 3, … character pieces ASCII text of `len` characters is streamed in.
fn json_piece_count(mut len: usize) -> u64 {
    let (mut n, mut want) = (0, 3);
    while len > 0 {
        len = len.saturating_sub(want);
        n += 1;
        want = if want == 5 { 3 } else { want + 1 };
    }
    n
}

#[tokio::test]
async fn tool_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["model"] = json!("claude-tool");
    body["tools"] = json!([weather_tool(), time_tool()]);
    let v = post(&m, &body).await.json();
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(
        v["content"],
        json!([{"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather",
                "input": {"city": "city sample", "unit": "celsius", "days": 1}}])
    );
    let input = serde_json::to_string(&v["content"][0]["input"]).unwrap();
    // output_tokens: the empty opening piece plus 3-5 character pieces of the input JSON.
    assert_eq!(v["usage"]["output_tokens"], 1 + json_piece_count(input.len()));

    body["model"] = json!("claude-parallel-tools");
    let v = post(&m, &body).await.json();
    let calls: Vec<(&str, &str)> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_str().unwrap(), b["name"].as_str().unwrap()))
        .collect();
    assert_eq!(calls, [("toolu_mock_1_1", "get_weather"), ("toolu_mock_1_2", "get_time")]);
    assert_eq!(v["content"][1]["input"], json!({"zone": "zone sample"}));
    body["tool_choice"] = json!({"type": "any", "disable_parallel_tool_use": true});
    assert_eq!(post(&m, &body).await.json()["content"].as_array().unwrap().len(), 1);

    // tool_choice forces a named tool even on the default model; none forbids tools.
    body["model"] = json!("claude-mock");
    body["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["name"].clone(), v["stop_reason"].clone()),
        (json!("get_time"), json!("tool_use"))
    );
    body["model"] = json!("claude-tool");
    body["tool_choice"] = json!({"type": "none"});
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["type"].clone(), v["stop_reason"].clone()),
        (json!("text"), json!("end_turn"))
    );

    body["model"] = json!("claude-text-tool");
    body.as_object_mut().unwrap().remove("tool_choice");
    let v = post(&m, &body).await.json();
    assert_eq!(v["content"][0], json!({"type": "text", "text": "Let me call get_weather."}));
    assert_eq!(v["content"][1]["type"], "tool_use");

    // The id follows the conversation length, so a second round gets new ids.
    body["model"] = json!("claude-tool");
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_mock_1_1", "content": "sunny"}]}]);
    assert_eq!(post(&m, &body).await.json()["content"][0]["id"], "toolu_mock_3_1");
    // A model without tools in the request answers in text.
    let mut plain = base();
    plain["model"] = json!("claude-tool");
    assert_eq!(post(&m, &plain).await.json()["content"][0]["type"], "text");
}

#[tokio::test]
async fn stop_cache_and_json_behaviours() {
    let m = mock().await;
    let mut body = base();
    body["messages"][0]["content"] = json!("one two three four five");
    body["model"] = json!("claude-max-tokens");
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["content"][0]["text"].clone(), v["stop_reason"].clone()),
        (json!("You said: one "), json!("max_tokens"))
    );
    assert_eq!(v["usage"]["output_tokens"], 3);

    body["model"] = json!("claude-stop-sequence");
    body["stop_sequences"] = json!(["STOP", "END"]);
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["stop_reason"].clone(), v["stop_sequence"].clone()),
        (json!("stop_sequence"), json!("STOP"))
    );
    body.as_object_mut().unwrap().remove("stop_sequences");
    assert_eq!(post(&m, &body).await.json()["stop_reason"], "end_turn");

    body["model"] = json!("claude-cache");
    let v = post(&m, &body).await.json();
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 5, "cache_creation_input_tokens": CACHE_CREATION_TOKENS,
               "cache_read_input_tokens": CACHE_READ_TOKENS,
               "cache_creation": {"ephemeral_5m_input_tokens": CACHE_CREATION_TOKENS, "ephemeral_1h_input_tokens": 0},
               "output_tokens": 7, "service_tier": "standard"})
    );

    // JSON output: the text is JSON built from the schema (GA and beta spellings).
    let schema = json!({"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                        "required": ["name", "age"], "additionalProperties": false});
    body["model"] = json!("claude-mock");
    body["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    let v = post(&m, &body).await.json();
    let text: Value = serde_json::from_str(v["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, json!({"name": "name sample", "age": 42}));
    body.as_object_mut().unwrap().remove("output_config");
    body["output_format"] = json!({"type": "json_schema", "schema": schema});
    let text = post(&m, &body).await.json()["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), json!({"name": "name sample", "age": 42}));
    // Properties keep the request's order (json! above sorts keys; this body is written by hand).
    let raw = r#"{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"x"}],
        "output_config":{"format":{"type":"json_schema","schema":{"type":"object","properties":{"z":{"type":"boolean"},"a":{"type":"null"}}}}}}"#;
    let r = send(m.addr(), "POST", "/v1/messages", HEADERS, raw.as_bytes()).await;
    assert_eq!(r.json()["content"][0]["text"], r#"{"z":true,"a":null}"#);
}

#[tokio::test]
async fn error_models() {
    let m = mock().await;
    for (status, kind, retry) in [
        (400, "invalid_request_error", "false"),
        (401, "authentication_error", "false"),
        (403, "permission_error", "false"),
        (404, "not_found_error", "false"),
        (413, "request_too_large", "false"),
        (429, "rate_limit_error", "true"),
        (500, "api_error", "true"),
        (529, "overloaded_error", "true"),
    ] {
        for stream in [false, true] {
            let mut body = base();
            body["model"] = json!(format!("error-{status}"));
            body["stream"] = json!(stream);
            let r = post(&m, &body).await;
            let message = assert_error(&r, status, kind);
            assert!(!message.is_empty());
            assert_eq!(r.header("x-should-retry"), Some(retry), "{status}");
            assert_eq!(r.header("retry-after"), (status == 429).then_some("7"), "{status}");
        }
    }
    let mut body = base();
    body["model"] = json!("error-529");
    assert_eq!(post(&m, &body).await.json()["error"]["message"], "Overloaded");
    // The request is validated first: an invalid one is a 400 whatever the model.
    body.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(post(&m, &body).await.status, 400);
}

#[tokio::test]
async fn malformed_and_disconnect_without_stream() {
    let m = mock().await;
    let mut body = base();
    body["model"] = json!("claude-malformed");
    let r = post(&m, &body).await;
    assert_eq!((r.status.as_u16(), r.header("content-type")), (200, Some("application/json")));
    assert!(serde_json::from_slice::<Value>(&r.body).is_err(), "{}", r.text());
    assert!(!r.cut);

    body["model"] = json!("claude-disconnect");
    let r = post(&m, &body).await;
    assert_eq!(r.status, 200);
    assert!(r.cut, "{}", r.text());
    assert!(r.text().starts_with(r#"{"id":"msg_mock_2","#), "{}", r.text());

    body["model"] = json!("claude-midstream-error");
    let r = post(&m, &body).await;
    assert_eq!((r.status.as_u16(), r.json()["stop_reason"].clone()), (200, json!("end_turn")));
}

#[tokio::test]
async fn count_tokens() {
    let m = mock().await;
    let mut body = json!({"model": "claude-mock", "system": "Be brief",
        "messages": [{"role": "user", "content": "count these four words"}],
        "tools": [weather_tool()], "tool_choice": {"type": "auto"}});
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), r#"{"input_tokens":7}"#);
    // The same counting rule as /v1/messages.
    body["max_tokens"] = json!(10);
    assert_eq!(post(&m, &body).await.json()["usage"]["input_tokens"], 7);
    // max_tokens and stream are not count_tokens fields.
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_invalid(&r, "max_tokens: Extra inputs are not permitted");
    body.as_object_mut().unwrap().remove("max_tokens");
    body["messages"] = json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]);
    let r = post_to(&m, "/v1/messages/count_tokens", &body).await;
    assert_invalid(
        &r,
        "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row",
    );
    body["model"] = json!("error-429");
    body["messages"] = json!([{"role": "user", "content": "a"}]);
    assert_error(&post_to(&m, "/v1/messages/count_tokens", &body).await, 429, "rate_limit_error");
}
