//! Generators for the property tests: arbitrary bytes cut at arbitrary points, arbitrary JSON,
//! and structure-aware inputs (documented provider events and requests with fields mutated into
//! wrong types, huge or negative numbers, odd unicode, empty strings, or left out).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Strings that reach interesting branches: empty, control characters, escapes, non-ASCII,
/// SSE syntax inside data, names the code matches on.
const STRINGS: &[&str] = &[
    "",
    " ",
    "a",
    "é",
    "\u{0}",
    "\u{7}\u{1b}",
    "\"\\",
    "\n\n",
    "\r\n\r\ndata: [DONE]\r\n\r\n",
    "data: {}",
    "🦀👩‍👩‍👧",
    "\u{202e}\u{fffd}",
    "[DONE]",
    "null",
    "{}",
    "{\"a\":[1,{\"b\":null}]}",
    "{\"x\"",
    "text",
    "tool_use",
    "json_response",
    "function",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "end_turn",
    "max_tokens",
    "refusal",
    "object",
    "string",
    "array",
    "null",
    "#/$defs/a",
    "data:image/png;base64,AAAA",
    "data:text/plain,x",
    "https://example.com/i.png",
    "ephemeral",
];

pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(STRINGS).prop_map(str::to_owned),
        2 => proptest::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        1 => (proptest::sample::select(STRINGS), 1usize..300).prop_map(|(s, n)| s.repeat(n)),
    ]
    .boxed()
}

/// Numbers at and past every edge a token count or index can have.
fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1)),
        Just(json!(u32::MAX)),
        Just(json!(u64::from(u32::MAX) + 1)),
        Just(json!(u64::MAX)),
        Just(json!(u64::MAX - 1)),
        Just(json!(i64::MIN)),
        Just(json!(1.5)),
        Just(json!(-0.0)),
        Just(json!(1e308)),
        Just(json!(2.0)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ]
    .boxed()
}

/// Any JSON value: depth at most 4, at most ~64 nodes, keys often ones the code reads.
pub fn json_value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
            ]
        })
        .boxed()
}

/// Object keys: mostly field names the parsers know, so random JSON gets past the first check.
fn key() -> BoxedStrategy<String> {
    const KEYS: &[&str] = &[
        "type",
        "index",
        "id",
        "model",
        "message",
        "content",
        "content_block",
        "delta",
        "text",
        "name",
        "input",
        "partial_json",
        "stop_reason",
        "usage",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
        "error",
        "candidates",
        "parts",
        "functionCall",
        "args",
        "thought",
        "finishReason",
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "promptFeedback",
        "blockReason",
        "responseId",
        "modelVersion",
        "status",
        "code",
        "messages",
        "role",
        "tools",
        "tool_choice",
        "tool_calls",
        "tool_call_id",
        "function",
        "arguments",
        "parameters",
        "response_format",
        "json_schema",
        "schema",
        "properties",
        "items",
        "required",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "enum",
        "const",
        "stop",
        "stream",
        "stream_options",
        "include_usage",
        "max_tokens",
        "temperature",
        "image_url",
        "url",
        "cache_control",
        "choices",
        "prompt_tokens",
        "completion_tokens",
        "n",
        "logprobs",
        "user",
        "default",
        "nullable",
    ];
    prop_oneof![4 => proptest::sample::select(KEYS).prop_map(str::to_owned), 1 => text()].boxed()
}

/// What a mutation does to the value at one path.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace it (wrong type, edge number, odd string, random JSON).
    Replace(Value),
    /// Remove it from its object or array.
    Remove,
    /// Wrap it in an array (a common wrong shape).
    Wrap,
}

pub fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        4 => leaf().prop_map(Mutation::Replace),
        1 => json_value().prop_map(Mutation::Replace),
        2 => Just(Mutation::Remove),
        1 => Just(Mutation::Wrap),
    ]
    .boxed()
}

/// Up to `max` mutations, each at a path chosen by an index into the value's paths.
pub fn mutations(max: usize) -> BoxedStrategy<Vec<(usize, Mutation)>> {
    proptest::collection::vec((any::<usize>(), mutation()), 0..=max).boxed()
}

/// Mostly none: in a stream, one broken event usually ends it, so most events stay intact
/// and the translators get deep into their state machines.
pub fn rare_mutations(max: usize) -> BoxedStrategy<Vec<(usize, Mutation)>> {
    prop_oneof![3 => Just(Vec::new()), 1 => mutations(max)].boxed()
}

/// Applies `mutations` to `value`, each at the path its index picks (paths are counted anew
/// after each one, so later mutations may land inside earlier ones).
pub fn mutate(mut value: Value, mutations: &[(usize, Mutation)]) -> Value {
    for (pick, mutation) in mutations {
        let mut paths = Vec::new();
        collect_paths(&value, &mut Vec::new(), &mut paths);
        let path = &paths[pick % paths.len()];
        apply(&mut value, path, mutation);
    }
    value
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn collect_paths(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(Step::Key(key.clone()));
                collect_paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(Step::Index(i));
                collect_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn apply(value: &mut Value, path: &[Step], mutation: &Mutation) {
    let Some((last, parents)) = path.split_last() else {
        // The root itself: only replace or wrap (removing the root leaves nothing to test).
        match mutation {
            Mutation::Replace(new) => *value = new.clone(),
            Mutation::Wrap => *value = Value::Array(vec![value.take()]),
            Mutation::Remove => {}
        }
        return;
    };
    let mut parent = value;
    for step in parents {
        parent = match (step, parent) {
            (Step::Key(key), Value::Object(map)) => match map.get_mut(key) {
                Some(child) => child,
                None => return,
            },
            (Step::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(child) => child,
                None => return,
            },
            _ => return,
        };
    }
    match (last, parent, mutation) {
        (Step::Key(key), Value::Object(map), Mutation::Remove) => {
            map.remove(key);
        }
        (Step::Index(i), Value::Array(items), Mutation::Remove) if *i < items.len() => {
            items.remove(*i);
        }
        (Step::Key(key), Value::Object(map), m) => {
            if let Some(child) = map.get_mut(key) {
                replace(child, m);
            }
        }
        (Step::Index(i), Value::Array(items), m) => {
            if let Some(child) = items.get_mut(*i) {
                replace(child, m);
            }
        }
        _ => {}
    }
}

fn replace(child: &mut Value, mutation: &Mutation) {
    match mutation {
        Mutation::Replace(new) => *child = new.clone(),
        Mutation::Wrap => *child = Value::Array(vec![child.take()]),
        Mutation::Remove => {}
    }
}

/// Bytes cut into pieces at arbitrary points (empty pieces included): how a body arrives.
pub fn cut(bytes: Vec<u8>, cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::with_capacity(points.len() + 1);
    let mut from = 0;
    for point in points {
        pieces.push(bytes[from..point].to_vec());
        from = point;
    }
    pieces.push(bytes[from..].to_vec());
    pieces
}

/// Cut points for [`cut`].
pub fn cuts() -> BoxedStrategy<Vec<usize>> {
    proptest::collection::vec(any::<usize>(), 0..8).boxed()
}

/// Bytes that look like SSE often enough to reach the decoders: fragments of the syntax mixed
/// with random bytes.
pub fn sse_like_bytes() -> BoxedStrategy<Vec<u8>> {
    const PIECES: &[&[u8]] = &[
        b"data:",
        b"data: ",
        b"event: x\n",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\r\n\r\n",
        b": c\n\n",
        b"{\"type\":\"message_stop\"}",
        b"{\"usage\":{\"prompt_tokens\":1}}",
        b"\"usage\"",
        b"{\"candidates\":[]}",
        b"[DONE]",
        b"\xff\xfe",
    ];
    let piece = prop_oneof![
        3 => proptest::sample::select(PIECES).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat()).boxed()
}

/// An SSE event carrying `data` as one `data:` line, with an optional `event:` line and the line
/// ending a provider uses.
pub fn sse_event(event: Option<&str>, data: &[u8], crlf: bool) -> Vec<u8> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(eol);
    out.extend_from_slice(eol);
    out
}
