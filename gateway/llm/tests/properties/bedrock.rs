//! Bedrock's properties: the AWS event-stream splitter and the ConverseStream translator, driven
//! as the relay drives them (pieces into the message splitter, each message into the translator,
//! a framing error as the relay's failure), and Converse answers and error bodies.

use crate::generate::{cut, cuts, json_value, mutate, rare_mutations, text};
use crate::streams::{Ending, Run, Step, check_hub_output, check_hub_usage, ending, hub};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use switchboard_llm::bedrock::{self, BedrockStream, encode_event};
use switchboard_llm::eventstream::{FrameError, MessageSplitter};
use switchboard_llm::openai::render_response;
use switchboard_llm::stream::{StreamFailure, StreamTranslator};

/// Splits `pieces` into event-stream messages and drives `translator` over them, as the relay
/// does (`gateway/src/body.rs` with `Framing::AwsEventStream`).
pub fn drive(translator: &mut dyn StreamTranslator, pieces: &[Vec<u8>], ending: Ending) -> Run {
    let mut splitter = MessageSplitter::default();
    let mut steps = Vec::new();
    let mut ending = ending;
    for piece in pieces {
        match splitter.push(piece) {
            Ok(messages) => {
                for frame in messages {
                    let mut out = Vec::new();
                    translator.event(frame.clone(), &mut out);
                    steps.push(Step { frame, out, usage: translator.usage() });
                }
            }
            Err(err) => {
                let failure = match err {
                    FrameError::TooLarge => StreamFailure::EventTooLarge,
                    FrameError::Invalid => StreamFailure::InvalidFrame,
                };
                ending = Ending::Fail(failure);
                break;
            }
        }
    }
    let mut tail = Vec::new();
    match ending {
        Ending::End => {
            if let Some(rest) = splitter.finish() {
                let mut out = Vec::new();
                translator.event(rest.clone(), &mut out);
                steps.push(Step { frame: rest, out, usage: translator.usage() });
            }
            translator.end(&mut tail);
        }
        Ending::Fail(failure) => translator.fail(failure, &mut tail),
    }
    Run { steps, tail, usage: translator.usage() }
}

/// Documented ConverseStream events (`:event-type`, payload).
fn event(kind: usize, text: String, index: u32, tokens: u64) -> (&'static str, Value) {
    match kind {
        0 => ("messageStart", json!({"role": "assistant", "p": "abc"})),
        1 => ("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"text": text}})),
        2 => (
            "contentBlockStart",
            json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": text}}}),
        ),
        3 => {
            ("contentBlockDelta", json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": text}}}))
        }
        4 => ("contentBlockStop", json!({"contentBlockIndex": index})),
        5 => ("messageStop", json!({"stopReason": text})),
        _ => (
            "metadata",
            json!({"usage": {"inputTokens": tokens, "outputTokens": tokens, "totalTokens": tokens,
                "cacheReadInputTokens": tokens, "cacheWriteInputTokens": tokens}, "metrics": {"latencyMs": 42}}),
        ),
    }
}

fn frame() -> BoxedStrategy<Vec<u8>> {
    let documented = (0usize..7, text(), 0u32..4, any::<u64>(), rare_mutations(3)).prop_map(
        |(kind, text, index, tokens, muts)| {
            let (name, payload) = event(kind, text, index, tokens % 100_000);
            encode_event("event", (":event-type", name), mutate(payload, &muts).to_string().as_bytes())
        },
    );
    let exception = text().prop_map(|message| {
        let payload = json!({"message": message, "originalStatusCode": 529});
        encode_event(
            "exception",
            (":exception-type", "modelStreamErrorException"),
            payload.to_string().as_bytes(),
        )
    });
    // A well-framed message with one byte flipped: a CRC (or the length) no longer holds.
    let corrupt = (0usize..7, any::<usize>(), 1u8..=255).prop_map(|(kind, at, flip)| {
        let (name, payload) = event(kind, "x".into(), 0, 1);
        let mut bytes = encode_event("event", (":event-type", name), payload.to_string().as_bytes());
        let at = at % bytes.len();
        bytes[at] ^= flip;
        bytes
    });
    prop_oneof![
        30 => documented,
        1 => exception,
        1 => corrupt,
        1 => json_value().prop_map(|v| encode_event("event", (":event-type", "contentBlockDelta"), v.to_string().as_bytes())),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}

pub fn stream() -> BoxedStrategy<(Vec<u8>, Vec<usize>, bool, Ending)> {
    (proptest::collection::vec(frame(), 0..16), cuts(), any::<bool>(), ending())
        .prop_map(|(frames, cut_at, include_usage, ending)| (frames.concat(), cut_at, include_usage, ending))
        .boxed()
}

pub fn check_stream(
    (bytes, cut_at, include_usage, ending): (Vec<u8>, Vec<usize>, bool, Ending),
) -> Result<(), TestCaseError> {
    let mut translator = hub(BedrockStream::new(), include_usage);
    let run = drive(&mut translator, &cut(bytes, &cut_at), ending);
    check_hub_output(&run, ending)?;
    check_hub_usage(&run, BedrockStream::new())?;
    for step in &run.steps {
        let usage = step.usage;
        prop_assert!(usage.input >= usage.cache_read.max(usage.cache_write), "{usage:?}");
    }
    Ok(())
}

/// However the bytes are cut, the splitter yields the same messages, each no larger than the
/// cap, and loses nothing.
pub fn check_splitter((bytes, cut_at): (Vec<u8>, Vec<usize>)) -> Result<(), TestCaseError> {
    let mut whole = MessageSplitter::default();
    let expected = whole.push(&bytes);
    let mut splitter = MessageSplitter::default();
    let mut messages: Vec<Bytes> = Vec::new();
    let mut result = Ok(());
    for piece in cut(bytes.clone(), &cut_at) {
        match splitter.push(&piece) {
            Ok(more) => messages.extend(more),
            Err(err) => {
                result = Err(err);
                break;
            }
        }
    }
    match (expected, result) {
        (Ok(expected), Ok(())) => {
            prop_assert_eq!(&messages, &expected);
            let mut joined: Vec<u8> = messages.concat();
            joined.extend(splitter.finish().unwrap_or_default());
            prop_assert_eq!(joined, bytes);
        }
        (Err(expected), Err(err)) => prop_assert_eq!(expected, err),
        (expected, result) => prop_assert!(false, "whole: {expected:?}, in pieces: {result:?}"),
    }
    Ok(())
}

pub fn splitter_input() -> BoxedStrategy<(Vec<u8>, Vec<usize>)> {
    let framed = proptest::collection::vec(frame(), 0..8).prop_map(|frames| frames.concat());
    (prop_oneof![framed, proptest::collection::vec(any::<u8>(), 0..256)], cuts()).boxed()
}

/// Converse answers and error bodies: parsed or refused, rendered bounded.
pub fn check_answer(body: &[u8]) -> Result<(), TestCaseError> {
    let n = body.len();
    if let Ok(response) = bedrock::parse_response(body) {
        prop_assert!(response.usage.input >= response.usage.cache_read.max(response.usage.cache_write));
        let rendered = render_response(&response, i64::MAX);
        prop_assert!(rendered.len() <= 2 * n + 1024, "{n} bytes in, {} out", rendered.len());
    }
    let details = bedrock::error_details(Some("ThrottlingException:http://internal.amazon.com/coral/"), body);
    prop_assert!(details.message.len() <= n);
    Ok(())
}

/// Documented Converse answers, mutated.
pub fn answer_body() -> BoxedStrategy<Vec<u8>> {
    let big = prop_oneof![0u64..1000, Just(u64::MAX), Just(u64::MAX / 2 + 1)];
    (text(), big, crate::generate::mutations(3))
        .prop_map(|(text, tokens, muts)| {
            let value = json!({"output": {"message": {"role": "assistant", "content": [{"text": text},
                {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": [1, 2]}}},
                {"toolUse": {"toolUseId": "t2", "name": "json_response", "input": {}}}]}},
                "stopReason": "tool_use", "usage": {"inputTokens": tokens, "outputTokens": tokens,
                "totalTokens": tokens, "cacheReadInputTokens": tokens, "cacheWriteInputTokens": tokens}});
            mutate(value, &muts).to_string().into_bytes()
        })
        .boxed()
}

pub fn check_answer_body(body: Vec<u8>) -> Result<(), TestCaseError> {
    check_answer(&body)
}
