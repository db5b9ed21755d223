//! Property test of the stream renderer: any sequence of hub events, however a provider orders
//! them (text after calls, arguments for a call already finished, usage before anything, an
//! error anywhere), then a clean end or a failure, gives a stream the spec and the SDK accept.
//! Fixed seed, like `tests/properties.rs`; `PROPTEST_CASES` and `PROPTEST_SEED` widen it.

use super::context;
use crate::Usage;
use crate::hub::{FinishReason, StreamError, StreamEvent};
use crate::responses::ResponsesRenderer;
use crate::responses::spec_check::check_event;
use crate::stream::{ClientRenderer, StreamFailure};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::Value;
use std::collections::HashMap;

fn hub_event() -> impl Strategy<Value = StreamEvent> {
    let finish = prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::ContentFilter),
    ];
    prop_oneof![
        4 => "[a-z é\"{}]{0,6}".prop_map(StreamEvent::Text),
        2 => (0u32..3, "[a-z]{1,4}").prop_map(|(index, id)| StreamEvent::ToolCallStart { index, id, name: "f".into() }),
        4 => (0u32..3, "[a-z{}\":]{0,5}").prop_map(|(index, fragment)| StreamEvent::ToolCallArguments { index, fragment }),
        1 => finish.prop_map(StreamEvent::Finish),
        1 => (0u64..100, 0u64..100).prop_map(|(input, output)| StreamEvent::Usage(Usage { input, output, ..Usage::default() })),
        1 => Just(StreamEvent::Start { id: "x".into(), model: "y".into() }),
        1 => Just(StreamEvent::Error(StreamError { kind: "k".into(), message: "m".into() })),
    ]
}

fn check(events: Vec<StreamEvent>, broken: bool) -> Result<(), TestCaseError> {
    let mut renderer = ResponsesRenderer::new(context(r#"{"model": "m", "input": "x"}"#));
    let mut out = Vec::new();
    for event in &events {
        renderer.render(event, &mut out);
    }
    if broken {
        renderer.fail(StreamFailure::BrokenOff, &mut out);
    } else {
        renderer.end(&mut out);
    }
    let before = out.len();
    renderer.end(&mut out);
    renderer.fail(StreamFailure::Stalled, &mut out);
    prop_assert_eq!(out.len(), before, "nothing after the terminal event");

    let parsed: Vec<Value> = out
        .iter()
        .map(|frame| {
            let data = std::str::from_utf8(frame).unwrap().split_once("\ndata: ").unwrap().1;
            serde_json::from_str(data.trim_end()).unwrap()
        })
        .collect();
    let kinds: Vec<&str> = parsed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    prop_assert_eq!(kinds[0], "response.created");
    let terminal =
        |kind: &str| matches!(kind, "response.completed" | "response.incomplete" | "response.failed");
    prop_assert_eq!(kinds.iter().filter(|k| terminal(k)).count(), 1, "one terminal event: {:?}", kinds);
    prop_assert!(terminal(kinds[kinds.len() - 1]));
    if let Some(at) = kinds.iter().position(|k| *k == "error") {
        prop_assert_eq!(at + 2, kinds.len(), "an error comes right before response.failed");
    }
    // What the deltas build, per item, must be what the items end with.
    let mut built: HashMap<String, String> = HashMap::new();
    let mut done = Vec::new();
    for (number, event) in parsed.iter().enumerate() {
        check_event(event);
        prop_assert_eq!(event["sequence_number"].as_u64(), Some(number as u64));
        if let Some(delta) = event.get("delta").and_then(Value::as_str) {
            built.entry(event["item_id"].as_str().unwrap().to_owned()).or_default().push_str(delta);
        }
        if event["type"] == "response.output_item.done" {
            prop_assert_eq!(event["output_index"].as_u64(), Some(done.len() as u64), "items finish in order");
            done.push(event["item"].clone());
        }
    }
    let last = &parsed[parsed.len() - 1]["response"];
    let finished = renderer.finished().unwrap();
    prop_assert_eq!(&finished.response, last);
    let final_items = last["output"].as_array().unwrap();
    if last["status"] != "failed" {
        prop_assert_eq!(final_items, &done);
    }
    for item in final_items {
        let content = item.get("arguments").unwrap_or(&item["content"][0]["text"]).as_str().unwrap();
        let streamed = built.get(item["id"].as_str().unwrap()).map_or("", String::as_str);
        prop_assert_eq!(content, streamed, "item {}", item["id"]);
    }
    Ok(())
}

#[test]
fn any_hub_stream_renders_as_a_valid_responses_stream() {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    let seed = std::env::var("PROPTEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261202);
    let config =
        Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() };
    let strategy = (prop::collection::vec(hub_event(), 0..24), any::<bool>());
    TestRunner::new(config).run(&strategy, |(events, broken)| check(events, broken)).unwrap();
}
