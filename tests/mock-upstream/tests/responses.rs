//! `POST /v1/responses` over real TCP: the text answer and its event stream, a tool call,
//! `function_call_output` echoes, the requests refused as OpenAI refuses them, and the recorded
//! body. Shapes: <https://platform.openai.com/docs/api-reference/responses/create> and
//! <https://platform.openai.com/docs/api-reference/responses-streaming>.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] fns: a failed unwrap is a failed test")]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_mock_upstream::MockUpstream;
use tokio::net::TcpStream;

async fn start() -> MockUpstream {
    MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap()
}

/// The status, the content type and the body.
async fn post(addr: SocketAddr, body: &Value) -> (StatusCode, String, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::post("/v1/responses").header("host", "mock").header("x-test", "forwarded");
    let resp = tx.send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await.unwrap();
    let status = resp.status();
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, String::from_utf8(bytes.to_vec()).unwrap())
}

async fn ok_json(addr: SocketAddr, body: &Value) -> Value {
    let (status, content_type, text) = post(addr, body).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "application/json"), "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `(event name, data)` per SSE block.
fn sse(text: &str) -> Vec<(String, Value)> {
    text.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').unwrap();
            let name = event.strip_prefix("event: ").unwrap().to_owned();
            (name, serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap())
        })
        .collect()
}

async fn refused(addr: SocketAddr, body: &Value) -> Value {
    let (status, _, text) = post(addr, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    v["error"].clone()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object",
        "properties": {"city": {"type": "string"}}, "required": ["city"]}}])
}

#[tokio::test]
async fn text_answer_echoes_the_last_user_message_and_defaults() {
    let mock = start().await;
    let body = json!({"model": "up-model", "input": [
        {"role": "developer", "content": "be brief"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "first question"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
        {"role": "user", "content": "say \"hi\" to everyone in the room please, now and forever"}
    ]});
    let v = ok_json(mock.addr(), &body).await;
    let n = v["id"].as_str().unwrap().strip_prefix("resp_mock_").unwrap().to_owned();
    let text = "mock reply to: say \"hi\" to everyone in the room please,";
    assert_eq!(v["object"], "response");
    assert!(v["created_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!((&v["status"], &v["model"]), (&json!("completed"), &json!("up-model")));
    assert_eq!(
        v["output"],
        json!([{"id": format!("msg_mock_{n}"), "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}])
    );
    assert_eq!(
        v["usage"],
        json!({"input_tokens": 17, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 11, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 28})
    );
    for (field, default) in [
        ("metadata", json!({})),
        ("reasoning", json!({"effort": null, "summary": null})),
        ("instructions", json!(null)),
        ("tools", json!([])),
        ("tool_choice", json!("auto")),
        ("parallel_tool_calls", json!(true)),
        ("temperature", json!(1.0)),
        ("top_p", json!(1.0)),
        ("text", json!({"format": {"type": "text"}})),
        ("truncation", json!("disabled")),
        ("store", json!(true)),
        ("error", json!(null)),
        ("incomplete_details", json!(null)),
        ("previous_response_id", json!(null)),
    ] {
        assert_eq!(v[field], default, "{field}");
    }

    // The request's values are echoed; a string input is the user message.
    let body = json!({"model": "m", "input": "hello there", "instructions": "be kind", "store": false,
        "metadata": {"k": "v"}, "reasoning": {"effort": "low", "summary": null}, "temperature": 0.5});
    let v = ok_json(mock.addr(), &body).await;
    assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: hello there");
    assert_eq!(
        (&v["instructions"], &v["store"], &v["metadata"]),
        (&json!("be kind"), &json!(false), &json!({"k": "v"}))
    );
    assert_eq!((&v["reasoning"]["effort"], &v["temperature"]), (&json!("low"), &json!(0.5)));
    assert_eq!(v["usage"]["input_tokens"], 4, "the input's and the instructions' words");
    assert_eq!(mock.stats().responses_requests, 2);
}

#[tokio::test]
async fn stream_sends_the_events_in_order() {
    let mock = start().await;
    let body = json!({"model": "m", "stream": true, "input": "one two three"});
    let (status, content_type, text) = post(mock.addr(), &body).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "text/event-stream"));
    let events = sse(&text);
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let deltas = ["response.output_text.delta"; 6];
    let expected = [
        &[
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ][..],
        &deltas,
        &[
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
    ]
    .concat();
    assert_eq!(names, expected);
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!((&data["type"], &data["sequence_number"]), (&json!(name), &json!(i)));
    }
    let created = &events[0].1["response"];
    assert_eq!((&created["status"], &created["output"]), (&json!("in_progress"), &json!([])));
    let added = &events[2].1["item"];
    assert_eq!((&added["status"], &added["content"]), (&json!("in_progress"), &json!([])));
    let streamed: String = events[4..10].iter().map(|(_, e)| e["delta"].as_str().unwrap()).collect();
    assert_eq!(streamed, "mock reply to: one two three");
    assert_eq!(events[10].1["text"], streamed);
    let completed = &events[13].1["response"];
    assert_eq!(completed["output"][0]["content"][0]["text"], streamed);
    assert_eq!(completed["output"], json!([events[12].1["item"].clone()]));
    assert_eq!(completed["usage"]["output_tokens"], 6);
    let plain = ok_json(mock.addr(), &json!({"model": "m", "input": "one two three"})).await;
    assert_eq!(plain["usage"], completed["usage"], "streamed and complete answers count alike");
}

#[tokio::test]
async fn tool_model_calls_the_first_function_tool() {
    let mock = start().await;
    for stream in [false, true] {
        let body = json!({"model": "m-tool", "stream": stream, "input": "weather?", "tools": weather_tool()});
        let (status, _, text) = post(mock.addr(), &body).await;
        assert_eq!(status, StatusCode::OK);
        let v = if stream {
            let events = sse(&text);
            let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
            let deltas = ["response.function_call_arguments.delta"; 4];
            let expected = [
                &["response.created", "response.in_progress", "response.output_item.added"][..],
                &deltas,
                &["response.function_call_arguments.done", "response.output_item.done", "response.completed"],
            ]
            .concat();
            assert_eq!(names, expected);
            let pieces: String = events[3..7].iter().map(|(_, e)| e["delta"].as_str().unwrap()).collect();
            assert_eq!(pieces, r#"{"city":"mock city"}"#);
            assert_eq!(events[7].1["arguments"], pieces);
            assert_eq!(events[2].1["item"]["arguments"], "");
            events[9].1["response"].clone()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        let n = v["id"].as_str().unwrap().strip_prefix("resp_mock_").unwrap().to_owned();
        assert_eq!(
            v["output"],
            json!([{"id": format!("fc_mock_{n}"), "type": "function_call", "status": "completed",
                "call_id": format!("call_mock_{n}"), "name": "get_weather", "arguments": r#"{"city":"mock city"}"#}])
        );
        assert_eq!(v["usage"]["output_tokens"], 4, "one per piece of arguments");
        assert_eq!(v["tools"], weather_tool());
    }
    // Without tools, the tool model answers in text.
    let v = ok_json(mock.addr(), &json!({"model": "m-tool", "input": "hi"})).await;
    assert_eq!(v["output"][0]["type"], "message");
}

#[tokio::test]
async fn function_call_outputs_are_echoed_and_end_the_tool_turn() {
    let mock = start().await;
    let body = json!({"model": "m-tool", "tools": weather_tool(), "input": [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny, 21 C"}
    ]});
    let v = ok_json(mock.addr(), &body).await;
    assert_eq!(
        v["output"][0]["content"][0]["text"],
        "mock reply to: weather in Paris? [function_call_output call_1: sunny, 21 C]"
    );
    assert_eq!(v["usage"]["input_tokens"], 6);
}

#[tokio::test]
async fn requests_refused_as_openai_refuses_them() {
    let mock = start().await;
    let addr = mock.addr();
    let orphan = json!({"model": "m", "input": [{"role": "user", "content": "hi"},
        {"type": "function_call_output", "call_id": "call_9", "output": "x"}]});
    let error = refused(addr, &orphan).await;
    assert_eq!(error["message"], "No tool call found for function call output with call_id call_9.");
    assert_eq!(error["param"], "input");
    // The call must come earlier in `input`, not after its output.
    let late = json!({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "call_9", "output": "x"},
        {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}]});
    assert_eq!(refused(addr, &late).await["param"], "input");

    let previous = json!({"model": "m", "input": "hi", "previous_response_id": "resp_abc"});
    let error = refused(addr, &previous).await;
    assert_eq!(error["message"], "Previous response with id 'resp_abc' not found.");
    assert_eq!(
        (&error["param"], &error["code"]),
        (&json!("previous_response_id"), &json!("previous_response_not_found"))
    );

    let error = refused(addr, &json!({"input": "hi"})).await;
    assert_eq!((&error["param"], &error["code"]), (&json!("model"), &json!("missing_required_parameter")));
    let error = refused(addr, &json!({"model": "m", "input": {"role": "user"}})).await;
    assert_eq!((&error["param"], &error["code"]), (&json!("input"), &json!("invalid_type")));
    let error = refused(addr, &json!({"model": "m", "input": [{"role": "tool", "content": "x"}]})).await;
    assert_eq!((&error["param"], &error["code"]), (&json!("input[0].role"), &json!("invalid_value")));
    let part = json!({"model": "m", "input": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]});
    assert_eq!(refused(addr, &part).await["param"], "input[0].content[0].type");

    for stream in [false, true] {
        let (status, content_type, text) =
            post(addr, &json!({"model": "error-429", "stream": stream, "input": "hi"})).await;
        assert_eq!((status, content_type.as_str()), (StatusCode::TOO_MANY_REQUESTS, "application/json"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    }
}

#[tokio::test]
async fn the_forwarded_body_is_recorded_with_unknown_fields() {
    let mock = start().await;
    let body = json!({"model": "upstream-model", "input": [
            {"role": "user", "content": "earlier turn"},
            {"role": "assistant", "content": "earlier answer"},
            {"role": "user", "content": "now"}],
        "store": false, "reasoning": {"effort": "medium"}, "metadata": {"trace": "t1"},
        "truncation": "auto", "service_tier": "flex", "include": ["reasoning.encrypted_content"]});
    let v = ok_json(mock.addr(), &body).await;
    assert_eq!(v["output"][0]["content"][0]["text"], "mock reply to: now");
    let recorded = mock.last_request().unwrap();
    assert_eq!(recorded.path, "/v1/responses");
    assert_eq!(recorded.body, body);
    assert_eq!(recorded.header("x-test"), Some("forwarded"));
}
