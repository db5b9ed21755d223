//! Hub stream events rendered as a Messages API event stream.
//!
//! The documented order (<https://docs.anthropic.com/en/api/messages-streaming>):
//! `message_start` (the message with empty content), then per content block
//! `content_block_start`, `content_block_delta`s (`text_delta`; `input_json_delta` pieces of a
//! tool call's input), `content_block_stop`; then one `message_delta` (stop reason, usage) and
//! `message_stop`. Blocks are numbered from 0 in order and never interleave, so a text block is
//! closed when a tool call starts, and text after a tool call opens a new block.
//!
//! Usage: hub streams may report it after the finish reason (OpenAI sends it in a last chunk),
//! so `message_delta` waits for the end of the stream and carries the final total. Its counts
//! are cumulative, input and cache ones included: a provider such as OpenAI reports nothing
//! before the end, so `message_start` said 0 input tokens, and the official SDKs' accumulators
//! take `input_tokens` and the cache counts from `message_delta` when present
//! (`anthropic/lib/streaming/_messages.py`, `accumulate_event`).

use super::error::{sse_event, stream_error_event};
use super::response::{MessagesUsage, message_id, messages_usage, stop_reason};
use crate::Usage;
use crate::hub::{FinishReason, StreamEvent};
use crate::stream::{ClientRenderer, StreamFailure};
use bytes::Bytes;
use serde::Serialize;

/// The content block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(u32),
    Tool(u32),
}

/// Renders hub stream events as Messages API events.
#[derive(Debug)]
pub struct MessageStreamRenderer {
    /// The model name the client asked for: the message names it, as a complete answer does.
    model: String,
    id: String,
    /// `message_start` was written.
    started: bool,
    open: Option<Open>,
    /// The index the next content block gets.
    next_block: u32,
    /// Content block index of each hub tool call, by the call's hub index.
    tool_blocks: Vec<(u32, u32)>,
    finish: Option<FinishReason>,
    usage: Usage,
    /// `message_stop` or an error was written: nothing more may follow.
    closed: bool,
}

impl MessageStreamRenderer {
    pub fn new(model: &str) -> Self {
        MessageStreamRenderer {
            model: model.to_owned(),
            id: message_id(""),
            started: false,
            open: None,
            next_block: 0,
            tool_blocks: Vec::new(),
            finish: None,
            usage: Usage::default(),
            closed: false,
        }
    }

    /// `message_start`, once. Written at the first event after the hub's `Start` rather than
    /// at it, so a usage the provider reports with its first event (Anthropic's input tokens)
    /// is in it.
    fn start(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        #[derive(Serialize)]
        struct MessageStart<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            message: Message<'a>,
        }
        #[derive(Serialize)]
        struct Message<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'static str,
            role: &'static str,
            model: &'a str,
            content: [(); 0],
            stop_reason: Option<&'static str>,
            stop_sequence: Option<&'static str>,
            usage: MessagesUsage,
        }
        let event = MessageStart {
            kind: "message_start",
            message: Message {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: messages_usage(&self.usage),
            },
        };
        out.push(event_json("message_start", &event));
    }

    fn open_block(&mut self, open: fn(u32) -> Open, block: StartBlock<'_>, out: &mut Vec<Bytes>) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some(open(index));
        #[derive(Serialize)]
        struct BlockStart<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            index: u32,
            content_block: StartBlock<'a>,
        }
        let event = BlockStart { kind: "content_block_start", index, content_block: block };
        out.push(event_json("content_block_start", &event));
        index
    }

    fn close_block(&mut self, out: &mut Vec<Bytes>) {
        #[derive(Serialize)]
        struct BlockStop {
            #[serde(rename = "type")]
            kind: &'static str,
            index: u32,
        }
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            out.push(event_json("content_block_stop", &BlockStop { kind: "content_block_stop", index }));
        }
    }

    fn delta(index: u32, delta: Delta<'_>, out: &mut Vec<Bytes>) {
        #[derive(Serialize)]
        struct BlockDelta<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            index: u32,
            delta: Delta<'a>,
        }
        out.push(event_json(
            "content_block_delta",
            &BlockDelta { kind: "content_block_delta", index, delta },
        ));
    }

    fn text(&mut self, text: &str, out: &mut Vec<Bytes>) {
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => self.open_block(Open::Text, StartBlock::Text { text: "" }, out),
        };
        Self::delta(index, Delta::TextDelta { text }, out);
    }
}

/// A block as `content_block_start` announces it: empty, its content follows in deltas.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text { text: &'static str },
    ToolUse { id: &'a str, name: &'a str, input: EmptyObject },
}

/// `{}`
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta<'a> {
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

fn event_json(name: &str, data: &impl Serialize) -> Bytes {
    // Plain structs of strings and numbers: serialization cannot fail.
    sse_event(name, &serde_json::to_vec(data).unwrap_or_default())
}

/// The error type a provider's in-stream error becomes: `overloaded_error` for the provider's
/// "busy, try again" errors (Anthropic's own, Google's `UNAVAILABLE` and `RESOURCE_EXHAUSTED`,
/// Bedrock's throttling and unavailability), which clients retry; `api_error` for the rest.
fn client_error_type(kind: &str) -> &'static str {
    const OVERLOADED: [&str; 5] = [
        "overloaded_error",
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "throttlingException",
        "serviceUnavailableException",
    ];
    if OVERLOADED.iter().any(|busy| busy.eq_ignore_ascii_case(kind)) {
        "overloaded_error"
    } else {
        "api_error"
    }
}

impl ClientRenderer for MessageStreamRenderer {
    fn render(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => {
                if !self.started {
                    self.id = message_id(id);
                }
                return;
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Error(error) => {
                self.closed = true;
                let message = format!("the provider reported an error: {}", error.message);
                out.push(stream_error_event(client_error_type(&error.kind), &message));
                return;
            }
            _ => {}
        }
        self.start(out);
        match event {
            StreamEvent::Text(text) if !text.is_empty() => self.text(text, out),
            StreamEvent::ToolCallStart { index, id, name } => {
                let block = StartBlock::ToolUse { id, name, input: EmptyObject {} };
                let block_index = self.open_block(Open::Tool, block, out);
                self.tool_blocks.push((*index, block_index));
            }
            StreamEvent::ToolCallArguments { index, fragment } if !fragment.is_empty() => {
                // Providers send each call's arguments before the next call starts; should one
                // interleave them, the piece still goes to its own block (clients index the
                // message's content by it) rather than being lost. Arguments of a call that
                // never started have no block to go to (no provider parser emits them).
                if let Some(&(_, block)) = self.tool_blocks.iter().find(|(call, _)| call == index) {
                    Self::delta(block, Delta::InputJsonDelta { partial_json: fragment }, out);
                }
            }
            StreamEvent::Finish(reason) => {
                self.finish = Some(*reason);
                self.close_block(out);
            }
            _ => {}
        }
    }

    /// The last block's stop, `message_delta` with the stop reason and the final usage, and
    /// `message_stop`.
    fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.start(out);
        self.close_block(out);
        #[derive(Serialize)]
        struct MessageDelta {
            #[serde(rename = "type")]
            kind: &'static str,
            delta: StopDelta,
            usage: MessagesUsage,
        }
        #[derive(Serialize)]
        struct StopDelta {
            stop_reason: &'static str,
            stop_sequence: Option<&'static str>,
        }
        // A provider that ended cleanly without a reason finished its turn.
        let finish = self.finish.unwrap_or(FinishReason::Stop);
        let event = MessageDelta {
            kind: "message_delta",
            delta: StopDelta {
                stop_reason: stop_reason(finish, !self.tool_blocks.is_empty()),
                stop_sequence: None,
            },
            usage: messages_usage(&self.usage),
        };
        out.push(event_json("message_delta", &event));
        out.push(sse_event("message_stop", br#"{"type":"message_stop"}"#));
    }

    /// One `error` event: Anthropic's in-stream error, which the SDKs raise as an API error.
    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.closed = true;
        out.push(stream_error_event("api_error", failure.message()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::StreamError;

    fn render(events: &[StreamEvent], renderer: &mut MessageStreamRenderer) -> String {
        let mut out = Vec::new();
        for event in events {
            renderer.render(event, &mut out);
        }
        renderer.end(&mut out);
        out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
    }

    /// The event names, in order.
    fn names(stream: &str) -> Vec<&str> {
        stream.lines().filter_map(|line| line.strip_prefix("event: ")).collect()
    }

    /// An OpenAI-shaped hub stream (usage after the finish reason): text, then a tool call in
    /// pieces.
    fn text_then_tool_call() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start { id: "chatcmpl-9".into(), model: "gpt-4.1-2025-04-14".into() },
            StreamEvent::Text("Okay, let".into()),
            StreamEvent::Text("'s check.".into()),
            StreamEvent::ToolCallStart { index: 0, id: "call_01T1".into(), name: "get_weather".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: String::new() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{\"location\":".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: " \"SF\"}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(Usage {
                input: 472,
                output: 89,
                cache_read: 400,
                cache_write: 0,
                reasoning: 0,
            }),
        ]
    }

    #[test]
    fn text_then_a_tool_call_in_the_documented_order() {
        // The tool-use example of https://docs.anthropic.com/en/api/messages-streaming, as the
        // gateway writes it from an OpenAI backend's stream.
        let stream = render(&text_then_tool_call(), &mut MessageStreamRenderer::new("claude-public"));
        let expected = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_chatcmpl-9\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-public\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}}}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay, let\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"'s check.\"}}\n\n",
            "event: content_block_stop\n",
            "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\n",
            "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_01T1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\":\"}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\" \\\"SF\\\"}\"}}\n\n",
            "event: content_block_stop\n",
            "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":72,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":400,\"output_tokens\":89}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}\n\n",
        );
        assert_eq!(stream, expected);
    }

    #[test]
    fn usage_reported_with_the_start_is_in_message_start() {
        // An Anthropic-shaped provider reports input tokens in its first event.
        let events = [
            StreamEvent::Start { id: "msg_01".into(), model: "claude".into() },
            StreamEvent::Usage(Usage { input: 25, output: 1, ..Usage::default() }),
            StreamEvent::Text("Hi".into()),
            StreamEvent::Finish(FinishReason::Stop),
            StreamEvent::Usage(Usage { input: 25, output: 15, ..Usage::default() }),
        ];
        let stream = render(&events, &mut MessageStreamRenderer::new("m"));
        let first = stream.lines().nth(1).unwrap();
        assert!(first.contains("\"id\":\"msg_01\"") && first.contains("\"input_tokens\":25,"), "{first}");
        assert!(stream.contains("\"stop_reason\":\"end_turn\""), "{stream}");
        assert!(stream.contains("\"input_tokens\":25,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":15}"));
    }

    #[test]
    fn blocks_are_numbered_in_order_and_never_interleave() {
        let events = [
            StreamEvent::Start { id: "x".into(), model: String::new() },
            StreamEvent::ToolCallStart { index: 0, id: "a".into(), name: "f".into() },
            StreamEvent::ToolCallStart { index: 1, id: "b".into(), name: "g".into() },
            StreamEvent::ToolCallArguments { index: 1, fragment: "{}".into() },
            StreamEvent::Text(String::new()),
            StreamEvent::Text("after".into()),
            // Gemini's finish for an answer with calls.
            StreamEvent::Finish(FinishReason::Stop),
        ];
        let stream = render(&events, &mut MessageStreamRenderer::new("m"));
        assert_eq!(
            names(&stream),
            [
                "message_start",
                "content_block_start",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let starts: Vec<&str> =
            stream.lines().filter(|l| l.starts_with("data: {\"type\":\"content_block_start")).collect();
        assert!(starts[2].contains("\"index\":2") && starts[2].contains("\"type\":\"text\""), "{stream}");
        assert!(stream.contains("\"index\":1,\"delta\":{\"type\":\"input_json_delta\""), "{stream}");
        assert!(stream.contains("\"stop_reason\":\"tool_use\""), "answers with calls stop for tool use");
    }

    #[test]
    fn an_empty_stream_is_still_a_whole_message() {
        let stream = render(&[], &mut MessageStreamRenderer::new("m"));
        assert_eq!(names(&stream), ["message_start", "message_delta", "message_stop"]);
        assert!(stream.contains("\"id\":\"msg_\"") && stream.contains("\"stop_reason\":\"end_turn\""));
        let limited = [StreamEvent::Text("a".into()), StreamEvent::Finish(FinishReason::Length)];
        assert!(
            render(&limited, &mut MessageStreamRenderer::new("m")).contains("\"stop_reason\":\"max_tokens\"")
        );
    }

    #[test]
    fn a_provider_error_ends_the_stream_with_one_error_event() {
        let mut renderer = MessageStreamRenderer::new("m");
        let mut out = Vec::new();
        for event in [
            StreamEvent::Start { id: "x".into(), model: String::new() },
            StreamEvent::Text("a".into()),
            StreamEvent::Error(StreamError {
                kind: "UNAVAILABLE".into(),
                message: "The model is overloaded.".into(),
            }),
            StreamEvent::Text("b".into()),
        ] {
            renderer.render(&event, &mut out);
        }
        renderer.end(&mut out);
        renderer.fail(StreamFailure::BrokenOff, &mut out);
        let stream: String = out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect();
        assert_eq!(names(&stream), ["message_start", "content_block_start", "content_block_delta", "error"]);
        assert!(stream.ends_with(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"the provider reported an error: The model is overloaded.\"}}\n\n"
        ));
        let mut out = Vec::new();
        let mut renderer = MessageStreamRenderer::new("m");
        renderer.render(
            &StreamEvent::Error(StreamError {
                kind: "modelStreamErrorException".into(),
                message: "x".into(),
            }),
            &mut out,
        );
        assert!(std::str::from_utf8(&out[0]).unwrap().contains("\"type\":\"api_error\""));
    }

    #[test]
    fn a_broken_stream_ends_with_an_api_error() {
        let mut renderer = MessageStreamRenderer::new("m");
        let mut out = Vec::new();
        renderer.render(&StreamEvent::Text("partial".into()), &mut out);
        renderer.fail(StreamFailure::Stalled, &mut out);
        renderer.end(&mut out);
        let stream: String = out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect();
        assert_eq!(names(&stream), ["message_start", "content_block_start", "content_block_delta", "error"]);
        assert!(stream.ends_with(
            "data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream stream stalled\"}}\n\n"
        ));
    }
}
