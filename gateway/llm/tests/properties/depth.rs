//! The nesting scanner (`src/depth.rs`) against the real nesting of serialized JSON: strings
//! full of brackets, quotes and backslashes (serde_json escapes them as any client would), and
//! values wrapped in many arrays to reach the gateway's limit.

use super::generate::json_value;
use proptest::prelude::*;
use serde_json::Value;
use switchboard_llm::depth::nests_deeper_than;

/// How many arrays and objects are open at the deepest point of `value`.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Text made mostly of what could fool a scanner: brackets, quotes, backslashes.
fn tricky_text() -> BoxedStrategy<String> {
    let tricky = prop_oneof![
        Just('['),
        Just('{'),
        Just(']'),
        Just('}'),
        Just('"'),
        Just('\\'),
        Just('u'),
        any::<char>()
    ];
    proptest::collection::vec(tricky, 0..24).prop_map(String::from_iter).boxed()
}

/// A JSON value with tricky strings inside, wrapped in 0 to 200 arrays (the limit is 128).
pub fn nested_json() -> BoxedStrategy<Value> {
    (json_value(), proptest::collection::vec(tricky_text(), 1..4), 0usize..200)
        .prop_map(|(inner, texts, wraps)| {
            let mut value =
                Value::Array(vec![inner, Value::Array(texts.into_iter().map(Value::String).collect())]);
            for _ in 0..wraps {
                value = Value::Array(vec![value]);
            }
            value
        })
        .boxed()
}

pub fn check_depth(value: Value) -> Result<(), TestCaseError> {
    let text = value.to_string();
    let real = depth(&value);
    prop_assert!(!nests_deeper_than(text.as_bytes(), real), "depth {real} counted deeper: {text}");
    prop_assert!(nests_deeper_than(text.as_bytes(), real - 1), "depth {real} counted shallower: {text}");
    Ok(())
}
