//! Stream properties: the SSE splitter, the OpenAI passthrough and the hub translators
//! (Anthropic and Gemini streams rendered for an OpenAI client), driven as the relay drives them
//! (`gateway/src/body.rs`): pieces into the splitter, each event into the translator, the
//! unterminated rest as a last event, then `end` or `fail`.

use crate::generate::{
    cut, cuts, json_value, mutate, mutations, rare_mutations, sse_event, sse_like_bytes, text,
};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use switchboard_llm::Usage;
use switchboard_llm::anthropic::AnthropicStream;
use switchboard_llm::bedrock::BedrockStream;
use switchboard_llm::gemini::GeminiStream;
use switchboard_llm::hub::StreamEvent;
use switchboard_llm::openai::ChunkRenderer;
use switchboard_llm::sse::EventSplitter;
use switchboard_llm::stream::{
    HubTranslator, OpenAiPassthrough, ProviderStream, StreamFailure, StreamTranslator,
};

/// How the relay ends a stream.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    End,
    Fail(StreamFailure),
}

pub fn ending() -> BoxedStrategy<Ending> {
    prop_oneof![
        2 => Just(Ending::End),
        1 => Just(Ending::Fail(StreamFailure::BrokenOff)),
        1 => Just(Ending::Fail(StreamFailure::Stalled)),
        1 => Just(Ending::Fail(StreamFailure::EventTooLarge)),
    ]
    .boxed()
}

/// What one upstream frame produced.
pub struct Step {
    pub frame: Bytes,
    pub out: Vec<Bytes>,
    pub usage: Usage,
}

/// Everything the client received, frame by frame, and what the ending added.
pub struct Run {
    pub steps: Vec<Step>,
    pub tail: Vec<Bytes>,
    pub usage: Usage,
}

impl Run {
    pub fn all(&self) -> impl Iterator<Item = &Bytes> {
        self.steps.iter().flat_map(|s| s.out.iter()).chain(self.tail.iter())
    }
}

/// Splits `pieces` into events and drives `translator` over them, as the relay does.
pub fn drive(translator: &mut dyn StreamTranslator, pieces: &[Vec<u8>], ending: Ending) -> Run {
    let mut splitter = EventSplitter::default();
    let mut steps = Vec::new();
    let mut step = |translator: &mut dyn StreamTranslator, frame: Bytes| {
        let mut out = Vec::new();
        translator.event(frame.clone(), &mut out);
        steps.push(Step { frame, out, usage: translator.usage() });
    };
    let mut ending = ending;
    for piece in pieces {
        match splitter.push(piece) {
            Ok(events) => events.into_iter().for_each(|event| step(translator, event)),
            Err(_) => {
                ending = Ending::Fail(StreamFailure::EventTooLarge);
                break;
            }
        }
    }
    let mut tail = Vec::new();
    match ending {
        Ending::End => {
            if let Some(rest) = splitter.finish() {
                step(translator, rest);
            }
            translator.end(&mut tail);
        }
        Ending::Fail(failure) => translator.fail(failure, &mut tail),
    }
    Run { steps, tail, usage: translator.usage() }
}

/// A client event of an OpenAI stream that ends it: `[DONE]` or an error.
fn is_terminal(event: &[u8]) -> bool {
    event == b"data: [DONE]\n\n" || event.starts_with(b"data: {\"error\":")
}

/// Output bound of a hub translator. A client event is one chunk: an envelope of fixed fields
/// (~250 bytes) plus the response id and model name (each at most 256 bytes, see
/// `ChunkRenderer`) plus the payload taken from the frame that caused it, re-escaped (JSON text
/// copied raw, such as Gemini's `args`, at most doubles: `"` → `\"`). Each hub event needs at
/// least a dozen bytes of its frame (Gemini's `{"text":"a"},`; a 29-byte `functionCall` part
/// makes two chunks), so a frame's output is at worst ~60 times its size: bound at 160.
const EVENT_OVERHEAD: usize = 1536;
const FRAME_FACTOR: usize = 160;

pub fn check_hub_output(run: &Run, ending: Ending) -> Result<(), TestCaseError> {
    for step in &run.steps {
        let n = step.frame.len();
        let total: usize = step.out.iter().map(Bytes::len).sum();
        prop_assert!(
            total <= FRAME_FACTOR * n + EVENT_OVERHEAD,
            "a frame of {n} bytes produced {total} bytes: {:?}",
            String::from_utf8_lossy(&step.frame)
        );
        for event in &step.out {
            prop_assert!(
                event.len() <= 2 * n + EVENT_OVERHEAD,
                "a frame of {n} bytes produced an event of {} bytes",
                event.len()
            );
        }
    }
    let tail: usize = run.tail.iter().map(Bytes::len).sum();
    // The ending: a usage chunk and `[DONE]`, or one error event; a provider's own "ended
    // early" error comes first when the provider did not finish.
    prop_assert!(tail <= 3 * EVENT_OVERHEAD, "the ending wrote {tail} bytes");
    // Exactly one terminal event, and it is the last thing the client receives.
    let all: Vec<&Bytes> = run.all().collect();
    let terminals = all.iter().filter(|e| is_terminal(e)).count();
    prop_assert_eq!(terminals, 1, "{:?}: {:?}", ending, all);
    prop_assert!(all.last().is_some_and(|e| is_terminal(e)), "{:?}: last is not terminal", ending);
    if let Ending::Fail(_) = ending {
        prop_assert!(!all.iter().any(|e| e.as_ref() == b"data: [DONE]\n\n"), "a failed stream said [DONE]");
    }
    for event in all {
        prop_assert!(event.starts_with(b"data: ") && event.ends_with(b"\n\n"), "not an SSE event: {event:?}");
        let data = &event[6..event.len() - 2];
        if data != b"[DONE]" {
            prop_assert!(serde_json::from_slice::<Value>(data).is_ok(), "not JSON: {event:?}");
        }
    }
    Ok(())
}

/// The translator's usage after each frame is the provider's last reported running total.
pub fn check_hub_usage<P: ProviderStream>(run: &Run, mut provider: P) -> Result<(), TestCaseError> {
    let mut expected = Usage::default();
    let mut events = Vec::new();
    for step in &run.steps {
        provider.frame(&step.frame, &mut events);
        for event in events.drain(..) {
            if let StreamEvent::Usage(usage) = event {
                expected = usage;
            }
        }
        prop_assert_eq!(step.usage, expected);
    }
    // The usage chunk (when asked for) reports that total.
    for event in run.all() {
        let Ok(chunk) =
            serde_json::from_slice::<Value>(event.get(6..event.len().saturating_sub(2)).unwrap_or(&[]))
        else {
            continue;
        };
        if chunk["choices"] == json!([]) {
            prop_assert_eq!(&chunk["usage"]["prompt_tokens"], &json!(run.usage.input));
            prop_assert_eq!(&chunk["usage"]["completion_tokens"], &json!(run.usage.output));
        }
    }
    Ok(())
}

pub fn hub<P: ProviderStream>(provider: P, include_usage: bool) -> HubTranslator<P> {
    HubTranslator::new(provider, ChunkRenderer::new("route-model", 1_700_000_000, include_usage))
}

// === SSE framing ===

pub fn splitter_properties() -> BoxedStrategy<(Vec<u8>, Vec<usize>)> {
    (prop_oneof![sse_like_bytes(), proptest::collection::vec(any::<u8>(), 0..256)], cuts()).boxed()
}

/// However the bytes are cut, the splitter yields the same events, loses and adds nothing, and
/// every event ends at a blank line.
pub fn check_splitter((bytes, cut_at): (Vec<u8>, Vec<usize>)) -> Result<(), TestCaseError> {
    let mut whole = EventSplitter::default();
    let expected = whole.push(&bytes).map_err(|_| TestCaseError::fail("small input refused"))?;
    let expected_rest = whole.finish();
    let mut splitter = EventSplitter::default();
    let mut events = Vec::new();
    for piece in cut(bytes.clone(), &cut_at) {
        events.extend(splitter.push(&piece).map_err(|_| TestCaseError::fail("small input refused"))?);
    }
    let rest = splitter.finish();
    prop_assert_eq!(&events, &expected);
    prop_assert_eq!(&rest, &expected_rest);
    let mut joined: Vec<u8> = events.iter().flat_map(|e| e.to_vec()).collect();
    joined.extend(rest.iter().flat_map(|r| r.to_vec()));
    prop_assert_eq!(joined, bytes);
    for event in &events {
        prop_assert!(event.ends_with(b"\n\n") || event.ends_with(b"\r\r") || event.ends_with(b"\r\n"));
        // `event_data` must take anything.
        let _ = switchboard_llm::sse::event_data(event);
    }
    prop_assert!(splitter.is_empty());
    Ok(())
}

// === OpenAI passthrough ===

/// OpenAI chunks, some carrying usage (usage-only chunks included), some mutated.
pub fn openai_stream() -> BoxedStrategy<(Vec<u8>, Vec<usize>, bool, Ending)> {
    let chunk = (0usize..4, mutations(2), text()).prop_map(|(kind, muts, content)| {
        let value = match kind {
            0 => json!({"id":"c","choices":[{"index":0,"delta":{"content":content}}],"usage":null}),
            1 => json!({"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8,
                "prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}),
            2 => json!({"choices":[{"index":0,"delta":{"content":content}}],"usage":{"prompt_tokens":10,"completion_tokens":3}}),
            _ => json!({"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}),
        };
        sse_event(None, mutate(value, &muts).to_string().as_bytes(), false)
    });
    let frame = prop_oneof![6 => chunk, 1 => Just(b"data: [DONE]\n\n".to_vec()), 1 => sse_like_bytes()];
    (proptest::collection::vec(frame, 0..12), cuts(), any::<bool>(), ending())
        .prop_map(|(frames, cut_at, strip, ending)| (frames.concat(), cut_at, strip, ending))
        .boxed()
}

/// Events pass byte for byte, in order, except a usage-only chunk the client did not ask for
/// and, then, the `"usage":null` fields; an event cut off (its last `data:` line cannot end a
/// JSON object or `[DONE]`) becomes one error event and nothing follows it; usage is the last
/// report; a failure adds exactly one error event unless one was sent.
pub fn check_passthrough(
    (bytes, cut_at, strip, ending): (Vec<u8>, Vec<usize>, bool, Ending),
) -> Result<(), TestCaseError> {
    let mut translator = OpenAiPassthrough::new(strip);
    let run = drive(&mut translator, &cut(bytes.clone(), &cut_at), ending);
    let mut expected_usage = Usage::default();
    let mut closed = false;
    for step in &run.steps {
        if closed {
            prop_assert!(step.out.is_empty());
            continue;
        }
        if cut_off(&step.frame) {
            prop_assert_eq!(step.out.len(), 1);
            prop_assert!(is_terminal(&step.out[0]));
            closed = true;
            continue;
        }
        // A chunk whose (first) usage is `"usage":null` reports nothing.
        let reported = switchboard_llm::sse::event_data(&step.frame)
            .filter(|_| memchr_usage(&step.frame) && null_usage_at(&step.frame).is_none())
            .and_then(|data| Usage::from_openai_chunk(&data));
        if let Some((usage, usage_only)) = reported {
            expected_usage = usage;
            if usage_only && strip {
                prop_assert!(step.out.is_empty());
                prop_assert_eq!(step.usage, expected_usage);
                continue;
            }
        }
        let expected = match null_usage_at(&step.frame) {
            Some(at) if strip => Bytes::from([&step.frame[..at], &step.frame[at + 13..]].concat()),
            _ => step.frame.clone(),
        };
        prop_assert_eq!(step.out.as_slice(), std::slice::from_ref(&expected));
        prop_assert_eq!(step.usage, expected_usage);
    }
    match ending {
        Ending::End => prop_assert!(run.tail.is_empty()),
        Ending::Fail(_) if closed => prop_assert!(run.tail.is_empty()),
        Ending::Fail(_) => {
            prop_assert_eq!(run.tail.len(), 1);
            prop_assert!(is_terminal(&run.tail[0]));
        }
    }
    let out: usize = run.all().map(Bytes::len).sum();
    prop_assert!(out <= bytes.len() + EVENT_OVERHEAD);
    Ok(())
}

/// Where the frame's first `"usage"` is `,"usage":null`, if it is.
fn null_usage_at(frame: &[u8]) -> Option<usize> {
    let at = frame.windows(7).position(|w| w == b"\"usage\"")?.checked_sub(1)?;
    frame[at..].starts_with(b",\"usage\":null").then_some(at)
}

/// The last non-blank line is `data:` and does not end in `}` or `]`.
fn cut_off(frame: &[u8]) -> bool {
    let text = String::from_utf8_lossy(frame);
    let Some(last) = text.trim_end_matches(|c: char| c.is_ascii_whitespace()).rsplit('\n').next() else {
        return false;
    };
    last.starts_with("data:") && !(last.ends_with('}') || last.ends_with(']'))
}

fn memchr_usage(frame: &[u8]) -> bool {
    frame.windows(7).any(|w| w == b"\"usage\"")
}

// === Anthropic ===

/// Documented Messages stream events (<https://docs.anthropic.com/en/api/messages-streaming>).
fn anthropic_event(kind: usize, text: String, index: u32, tokens: u64) -> (&'static str, Value) {
    match kind {
        0 => (
            "message_start",
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",
            "model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":tokens,"output_tokens":1,
            "cache_read_input_tokens":5,"cache_creation_input_tokens":2}}}),
        ),
        1 => (
            "content_block_start",
            json!({"type":"content_block_start","index":index,"content_block":{"type":"text","text":text}}),
        ),
        2 => (
            "content_block_start",
            json!({"type":"content_block_start","index":index,
            "content_block":{"type":"tool_use","id":"toolu_1","name":text,"input":{}}}),
        ),
        3 => (
            "content_block_start",
            json!({"type":"content_block_start","index":index,
            "content_block":{"type":"tool_use","id":"toolu_2","name":"json_response","input":{}}}),
        ),
        4 => (
            "content_block_start",
            json!({"type":"content_block_start","index":index,"content_block":{"type":"thinking","thinking":""}}),
        ),
        5 => (
            "content_block_delta",
            json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":text}}),
        ),
        6 => (
            "content_block_delta",
            json!({"type":"content_block_delta","index":index,"delta":{"type":"input_json_delta","partial_json":text}}),
        ),
        7 => (
            "content_block_delta",
            json!({"type":"content_block_delta","index":index,"delta":{"type":"thinking_delta","thinking":text}}),
        ),
        8 => ("content_block_stop", json!({"type":"content_block_stop","index":index})),
        9 => (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":text,"stop_sequence":null},"usage":{"output_tokens":tokens}}),
        ),
        10 => (
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"input_tokens":tokens,
            "output_tokens":tokens,"cache_read_input_tokens":tokens,"cache_creation_input_tokens":tokens}}),
        ),
        11 => ("ping", json!({"type":"ping"})),
        12 => ("error", json!({"type":"error","error":{"type":"overloaded_error","message":text}})),
        _ => ("message_stop", json!({"type":"message_stop"})),
    }
}

fn anthropic_frame() -> BoxedStrategy<Vec<u8>> {
    // The error event (12) is rarer: it ends the stream.
    let kind = prop_oneof![12 => 0usize..12, 1 => 12usize..14];
    let event = (kind, text(), 0u32..4, any::<u64>(), rare_mutations(2), any::<bool>()).prop_map(
        |(kind, text, index, tokens, muts, named)| {
            let (name, value) = anthropic_event(kind, text, index, tokens % 1000);
            let value = mutate(value, &muts);
            sse_event(named.then_some(name), value.to_string().as_bytes(), false)
        },
    );
    prop_oneof![
        30 => event,
        1 => json_value().prop_map(|v| sse_event(None, v.to_string().as_bytes(), false)),
        1 => sse_like_bytes(),
    ]
    .boxed()
}

pub fn anthropic_stream() -> BoxedStrategy<(Vec<u8>, Vec<usize>, bool, Ending)> {
    let start = anthropic_event(0, String::new(), 0, 3);
    let start = sse_event(Some(start.0), start.1.to_string().as_bytes(), false);
    let stop = sse_event(Some("message_stop"), br#"{"type":"message_stop"}"#, false);
    (proptest::collection::vec(anthropic_frame(), 0..16), any::<bool>(), cuts(), any::<bool>(), ending())
        .prop_map(move |(frames, finished, cut_at, include_usage, ending)| {
            let mut bytes = start.clone();
            bytes.extend(frames.concat());
            if finished {
                bytes.extend_from_slice(&stop);
            }
            (bytes, cut_at, include_usage, ending)
        })
        .boxed()
}

pub fn check_anthropic(
    (bytes, cut_at, include_usage, ending): (Vec<u8>, Vec<usize>, bool, Ending),
) -> Result<(), TestCaseError> {
    let mut translator = hub(AnthropicStream::new(), include_usage);
    let run = drive(&mut translator, &cut(bytes, &cut_at), ending);
    check_hub_output(&run, ending)?;
    check_hub_usage(&run, AnthropicStream::new())?;
    // Cached tokens are part of `input` (Anthropic reports them apart; the mapping adds them in).
    for step in &run.steps {
        let u = step.usage;
        prop_assert!(u.input >= u.cache_read.max(u.cache_write), "{u:?}");
    }
    Ok(())
}

/// Anthropic's reports are running totals in which a field left out keeps its value: when no
/// reported count goes down, the total the translator keeps never goes down either.
pub fn anthropic_reports() -> BoxedStrategy<Vec<[Option<u64>; 4]>> {
    // Per report and field: absent, or an increment (huge ones included) over the last value.
    let step = prop_oneof![1 => Just(None), 2 => (0u64..1000).prop_map(Some), 1 => Just(Some(u64::MAX / 3))];
    proptest::collection::vec([step.clone(), step.clone(), step.clone(), step], 1..10)
        .prop_map(|steps| {
            let mut last = [0u64; 4];
            steps
                .into_iter()
                .map(|report| {
                    let mut out = [None; 4];
                    for (i, inc) in report.into_iter().enumerate() {
                        if let Some(inc) = inc {
                            last[i] = last[i].saturating_add(inc);
                            out[i] = Some(last[i]);
                        }
                    }
                    out
                })
                .collect()
        })
        .boxed()
}

pub fn check_anthropic_usage_never_decreases(reports: Vec<[Option<u64>; 4]>) -> Result<(), TestCaseError> {
    let mut translator = hub(AnthropicStream::new(), true);
    let mut last = Usage::default();
    for (i, report) in reports.iter().enumerate() {
        let mut usage = serde_json::Map::new();
        for (name, value) in
            ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"]
                .into_iter()
                .zip(report)
        {
            if let Some(value) = value {
                usage.insert(name.into(), json!(value));
            }
        }
        let event = if i == 0 {
            json!({"type":"message_start","message":{"id":"m","model":"c","usage":usage}})
        } else {
            json!({"type":"message_delta","delta":{},"usage":usage})
        };
        translator.event(Bytes::from(sse_event(None, event.to_string().as_bytes(), false)), &mut Vec::new());
        let now = translator.usage();
        for (before, after) in [
            (last.input, now.input),
            (last.output, now.output),
            (last.cache_read, now.cache_read),
            (last.cache_write, now.cache_write),
        ] {
            prop_assert!(after >= before, "went down: {last:?} → {now:?} on {event}");
        }
        last = now;
    }
    Ok(())
}

// === Gemini ===

/// Documented `streamGenerateContent?alt=sse` chunks (<https://ai.google.dev/api/generate-content>).
fn gemini_chunk(kind: usize, text: String, tokens: u64) -> Value {
    let usage = json!({"promptTokenCount":tokens,"candidatesTokenCount":tokens,"totalTokenCount":tokens,
        "thoughtsTokenCount":tokens,"cachedContentTokenCount":tokens,"toolUsePromptTokenCount":tokens});
    match kind {
        0 => json!({"candidates":[{"content":{"parts":[{"text":text}],"role":"model"},"index":0}],
            "usageMetadata":usage,"modelVersion":"gemini-2.5-flash","responseId":"r1"}),
        1 => json!({"candidates":[{"content":{"parts":[{"text":"t","thought":true},
            {"functionCall":{"name":text,"args":{"city":"Paris","n":[1,2]}}},{"functionCall":{"name":"f"}}],"role":"model"},
            "finishReason":"STOP","index":0}],"usageMetadata":usage}),
        2 => json!({"candidates":[{"finishReason":text}]}),
        3 => {
            json!({"candidates":[{"finishReason":"MAX_TOKENS","content":{"parts":[{"text":text},{"text":""}]}}]})
        }
        4 => json!({"promptFeedback":{"blockReason":"OTHER"},"usageMetadata":{"promptTokenCount":tokens}}),
        _ => json!({"error":{"code":503,"message":text,"status":"UNAVAILABLE"}}),
    }
}

fn gemini_frame() -> BoxedStrategy<Vec<u8>> {
    // The error chunk (5) is rarer: it ends the stream.
    let kind = prop_oneof![12 => 0usize..5, 1 => Just(5usize)];
    let chunk = (kind, text(), any::<u64>(), rare_mutations(3)).prop_map(|(kind, text, tokens, muts)| {
        let value = mutate(gemini_chunk(kind, text, tokens % 100_000), &muts);
        sse_event(None, value.to_string().as_bytes(), true)
    });
    prop_oneof![
        30 => chunk,
        1 => json_value().prop_map(|v| sse_event(None, v.to_string().as_bytes(), true)),
        1 => sse_like_bytes(),
    ]
    .boxed()
}

pub fn gemini_stream() -> BoxedStrategy<(Vec<u8>, Vec<usize>, bool, Ending)> {
    (proptest::collection::vec(gemini_frame(), 0..16), cuts(), any::<bool>(), ending())
        .prop_map(|(frames, cut_at, include_usage, ending)| (frames.concat(), cut_at, include_usage, ending))
        .boxed()
}

pub fn check_gemini(
    (bytes, cut_at, include_usage, ending): (Vec<u8>, Vec<usize>, bool, Ending),
) -> Result<(), TestCaseError> {
    let mut translator = hub(GeminiStream::new(), include_usage);
    let run = drive(&mut translator, &cut(bytes, &cut_at), ending);
    check_hub_output(&run, ending)?;
    check_hub_usage(&run, GeminiStream::new())?;
    // Thinking tokens are part of `output` (Gemini reports them apart; the mapping adds them in).
    for step in &run.steps {
        prop_assert!(step.usage.output >= step.usage.reasoning, "{:?}", step.usage);
    }
    Ok(())
}

/// Arbitrary bytes, not shaped like any provider, into every translator.
pub fn check_any_bytes_everywhere(
    (bytes, cut_at, ending): (Vec<u8>, Vec<usize>, Ending),
) -> Result<(), TestCaseError> {
    let pieces = cut(bytes, &cut_at);
    let run = drive(&mut hub(AnthropicStream::new(), true), &pieces, ending);
    check_hub_output(&run, ending)?;
    let run = drive(&mut hub(GeminiStream::new(), false), &pieces, ending);
    check_hub_output(&run, ending)?;
    drive(&mut OpenAiPassthrough::new(true), &pieces, ending);
    // Bedrock's translator, behind its own (binary) frame decoder and behind SSE's.
    let run = crate::bedrock::drive(&mut hub(BedrockStream::new(), true), &pieces, ending);
    check_hub_output(&run, ending)?;
    let run = drive(&mut hub(BedrockStream::new(), true), &pieces, ending);
    check_hub_output(&run, ending)
}
