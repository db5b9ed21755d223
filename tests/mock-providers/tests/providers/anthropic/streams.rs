//! The SSE event sequences, event by event, and stream failures and pacing.

use super::*;

#[tokio::test]
async fn text_stream_event_sequence() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("tell me a story");
    let r = post(&m, &body).await;
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(!r.cut);
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(
        evs[0].1,
        json!({"type": "message_start", "message": {"id": "msg_mock_1", "type": "message", "role": "assistant",
            "model": "claude-mock", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                      "output_tokens": 1, "service_tier": "standard"}}})
    );
    // The raw text keeps the documented key order.
    assert!(
        r.text().starts_with("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":")
    );
    assert_eq!(
        evs[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    let text: String = evs[3..9]
        .iter()
        .map(|(_, d)| {
            assert_eq!((&d["index"], &d["delta"]["type"]), (&json!(0), &json!("text_delta")));
            d["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "You said: tell me a story");
    assert_eq!(evs[9].1, json!({"type": "content_block_stop", "index": 0}));
    assert_eq!(
        evs[10].1,
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 4, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 6}})
    );
    // The same request without streaming reports the same usage.
    body["stream"] = json!(false);
    let v = post(&m, &body).await.json();
    assert_eq!(
        (v["usage"]["output_tokens"].clone(), v["content"][0]["text"].clone()),
        (json!(6), json!(text))
    );
}

/// Concatenates the `partial_json` pieces of block `index`, checking each piece's size.
fn tool_input(evs: &[(String, Value)], index: u64) -> (Value, usize) {
    let pieces: Vec<&str> = evs
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["index"] == index)
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(pieces[0], "", "the API opens tool input with an empty piece");
    assert!(pieces[1..].iter().all(|p| (1..=5).contains(&p.chars().count())), "{pieces:?}");
    (serde_json::from_str(&pieces.concat()).unwrap(), pieces.len())
}

#[tokio::test]
async fn tool_streams_split_arguments_into_many_pieces() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["model"] = json!("claude-tool");
    body["tools"] = json!([weather_tool(), time_tool()]);
    let evs = events(&post(&m, &body).await);
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_mock_1_1", "name": "get_weather", "input": {}})
    );
    assert_eq!(evs[2].0, "ping");
    let (input, pieces) = tool_input(&evs, 0);
    assert_eq!(input, json!({"city": "city sample", "unit": "celsius", "days": 1}));
    assert!(pieces > 10, "{pieces}");
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], pieces as u64);
    assert_eq!(evs.last().unwrap().0, "message_stop");

    body["model"] = json!("claude-parallel-tools");
    let evs = events(&post(&m, &body).await);
    let starts: Vec<&Value> =
        evs.iter().filter(|(n, _)| n == "content_block_start").map(|(_, d)| d).collect();
    assert_eq!(starts.len(), 2);
    assert_eq!((starts[0]["index"].clone(), starts[1]["index"].clone()), (json!(0), json!(1)));
    assert_eq!(starts[1]["content_block"]["name"], "get_time");
    let (first, n0) = tool_input(&evs, 0);
    let (second, n1) = tool_input(&evs, 1);
    assert_eq!((first["city"].clone(), second), (json!("city sample"), json!({"zone": "zone sample"})));
    assert_eq!(evs[evs.len() - 2].1["usage"]["output_tokens"], (n0 + n1) as u64);
    // Blocks never interleave: each block's stop comes before the next block's start.
    let order: Vec<(&str, u64)> = evs
        .iter()
        .filter(|(n, _)| n.starts_with("content_block"))
        .map(|(n, d)| (n.as_str(), d["index"].as_u64().unwrap()))
        .collect();
    let stop0 = order.iter().position(|&x| x == ("content_block_stop", 0)).unwrap();
    assert_eq!(order[stop0 + 1], ("content_block_start", 1));

    body["model"] = json!("claude-text-tool-cache");
    let evs = events(&post(&m, &body).await);
    assert_eq!(evs[1].1["content_block"]["type"], "text");
    assert_eq!(evs[3].1["delta"], json!({"type": "text_delta", "text": "Let "}));
    let (input, _) = tool_input(&evs, 1);
    assert_eq!(input["unit"], "celsius");
    assert_eq!(evs[0].1["message"]["usage"]["cache_read_input_tokens"], CACHE_READ_TOKENS);
    assert_eq!(evs[evs.len() - 2].1["usage"]["cache_creation_input_tokens"], CACHE_CREATION_TOKENS);
}

#[tokio::test]
async fn stream_failures() {
    let m = mock().await;
    let mut body = base();
    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("a b c d e f");

    body["model"] = json!("claude-midstream-error");
    let r = post(&m, &body).await;
    assert!(!r.cut);
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    assert_eq!(
        evs[5].1,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );

    body["model"] = json!("claude-tool-disconnect");
    body["tools"] = json!([weather_tool()]);
    let r = post(&m, &body).await;
    assert!(r.cut, "{}", r.text());
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );

    body["model"] = json!("claude-malformed");
    let r = post(&m, &body).await;
    let text = r.text();
    assert!(text.starts_with("event: message_start\n"), "{text}");
    let second = text.split_terminator("\n\n").nth(1).unwrap();
    let data = second.split_once("\ndata: ").unwrap().1;
    assert!(serde_json::from_str::<Value>(data).is_err(), "{data}");
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn pacing_spaces_events() {
    let m = mock_with(AnthropicOptions { pace: Duration::from_millis(15), ..Default::default() }).await;
    let mut body = base();
    body["stream"] = json!(true);
    let t = Instant::now();
    let evs = events(&post(&m, &body).await);
    assert_eq!(evs.len(), 10);
    assert!(t.elapsed() >= Duration::from_millis(15 * 9), "{:?}", t.elapsed());
}
