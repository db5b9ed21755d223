//! ConverseStream's events → hub stream events.
//!
//! Each event is one AWS event-stream message (framed by [`crate::eventstream`], CRCs checked
//! here by `aws-smithy-eventstream`): the `:event-type` header names it and the payload is JSON.
//! The documented sequence: `messageStart {role}`; per content block an optional
//! `contentBlockStart` (tool blocks only: `start.toolUse {toolUseId, name}`), `contentBlockDelta`s
//! (`delta.text`, or `delta.toolUse.input` pieces of a tool call's input JSON) and
//! `contentBlockStop`; then `messageStop {stopReason}` and `metadata {usage, metrics}`.
//! A message with `:message-type: exception` (`modelStreamErrorException`, `throttlingException`,
//! ...) ends the stream with an error.

use super::response::{WireUsage, finish_reason};
use super::{JSON_TOOL, RESPONSE_ID};
use crate::hub::{FinishReason, StreamError, StreamEvent};
use crate::stream::ProviderStream;
use aws_smithy_eventstream::frame::read_message_from;
use aws_smithy_types::event_stream::{HeaderValue, Message};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u32,
    start: StartMember,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartMember {
    #[serde(default)]
    tool_use: Option<StartToolUse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartToolUse {
    tool_use_id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u32,
    delta: DeltaMember,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeltaMember {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    tool_use: Option<DeltaToolUse>,
}

#[derive(Deserialize)]
struct DeltaToolUse {
    input: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ExceptionBody {
    #[serde(default)]
    message: String,
}

/// What a content block is, by its index in the message.
#[derive(Clone, Copy)]
enum BlockKind {
    /// A tool call, numbered among this answer's calls.
    Tool(u32),
    /// The tool a JSON response format became: its input is the answer's text.
    JsonAnswer,
}

/// Parses one ConverseStream into hub events.
pub struct BedrockStream {
    /// The answer's id for the client (Bedrock's stream names none).
    id: String,
    /// Tool blocks by content block index (text blocks have no start event and need no entry).
    blocks: HashMap<u32, BlockKind>,
    tool_calls: u32,
    json_answer: bool,
    started: bool,
    stopped: bool,
}

impl Default for BedrockStream {
    fn default() -> Self {
        Self::with_id(RESPONSE_ID.to_owned())
    }
}

impl BedrockStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream whose answer the client knows by `id` (the gateway uses the request id AWS
    /// returns in `x-amzn-RequestId`).
    pub fn with_id(id: String) -> Self {
        BedrockStream {
            id,
            blocks: HashMap::new(),
            tool_calls: 0,
            json_answer: false,
            started: false,
            stopped: false,
        }
    }

    fn start(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            events.push(StreamEvent::Start { id: self.id.clone(), model: String::new() });
        }
    }

    fn event(&mut self, kind: &str, payload: &[u8], events: &mut Vec<StreamEvent>) -> Result<(), String> {
        let bad = |err: serde_json::Error| format!("a {kind} event that does not parse: {err}");
        match kind {
            "messageStart" => self.start(events),
            "contentBlockStart" => {
                let start: BlockStart = serde_json::from_slice(payload).map_err(bad)?;
                self.start(events);
                if let Some(tool) = start.start.tool_use {
                    let block = if tool.name == JSON_TOOL {
                        self.json_answer = true;
                        BlockKind::JsonAnswer
                    } else {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        events.push(StreamEvent::ToolCallStart {
                            index: call,
                            id: tool.tool_use_id,
                            name: tool.name,
                        });
                        BlockKind::Tool(call)
                    };
                    self.blocks.insert(start.content_block_index, block);
                }
            }
            "contentBlockDelta" => {
                let delta: BlockDelta = serde_json::from_slice(payload).map_err(bad)?;
                self.start(events);
                let block = self.blocks.get(&delta.content_block_index).copied();
                match (block, delta.delta.text, delta.delta.tool_use) {
                    (None, Some(text), _) if !text.is_empty() => events.push(StreamEvent::Text(text)),
                    (_, _, Some(piece)) if piece.input.is_empty() => {}
                    (Some(BlockKind::Tool(call)), _, Some(piece)) => {
                        events.push(StreamEvent::ToolCallArguments { index: call, fragment: piece.input })
                    }
                    (Some(BlockKind::JsonAnswer), _, Some(piece)) => {
                        events.push(StreamEvent::Text(piece.input))
                    }
                    // Reasoning deltas, or tool input for a block never started: not for the client.
                    _ => {}
                }
            }
            "messageStop" => {
                let stop: MessageStop = serde_json::from_slice(payload).map_err(bad)?;
                self.stopped = true;
                let mut finish = finish_reason(stop.stop_reason.as_deref());
                if self.json_answer && finish == FinishReason::ToolCalls {
                    finish = FinishReason::Stop;
                }
                events.push(StreamEvent::Finish(finish));
            }
            "metadata" => {
                let metadata: Metadata = serde_json::from_slice(payload).map_err(bad)?;
                if let Some(usage) = metadata.usage {
                    // A total for the whole answer: set, never added.
                    events.push(StreamEvent::Usage(usage.to_usage()));
                }
            }
            // contentBlockStop, and event types added after this was written.
            _ => {}
        }
        Ok(())
    }
}

/// A string header of `message`.
fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.headers().iter().find(|h| h.name().as_str() == name).and_then(|h| match h.value() {
        HeaderValue::String(value) => Some(value.as_str()),
        _ => None,
    })
}

impl ProviderStream for BedrockStream {
    fn frame(&mut self, frame: &[u8], events: &mut Vec<StreamEvent>) {
        let message = match read_message_from(frame) {
            Ok(message) => message,
            Err(err) => {
                events.push(StreamEvent::Error(StreamError {
                    kind: "invalid_upstream_event".into(),
                    message: format!("an event-stream message that does not decode: {err}"),
                }));
                return;
            }
        };
        match header(&message, ":message-type") {
            Some("event") => {
                let kind = header(&message, ":event-type").unwrap_or_default();
                if let Err(message) = self.event(kind, message.payload(), events) {
                    events.push(StreamEvent::Error(StreamError {
                        kind: "invalid_upstream_event".into(),
                        message,
                    }));
                }
            }
            Some("exception") => {
                // The stream's failure: the translator ends the client's stream with this error.
                self.stopped = true;
                let kind = header(&message, ":exception-type").unwrap_or("exception").to_owned();
                let text = serde_json::from_slice::<ExceptionBody>(message.payload())
                    .map(|b| b.message)
                    .unwrap_or_default();
                events.push(StreamEvent::Error(StreamError { kind, message: text }));
            }
            Some("error") => {
                self.stopped = true;
                let kind = header(&message, ":error-code").unwrap_or("error").to_owned();
                let text = header(&message, ":error-message").unwrap_or_default().to_owned();
                events.push(StreamEvent::Error(StreamError { kind, message: text }));
            }
            _ => {}
        }
    }

    fn end(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.stopped {
            events.push(StreamEvent::Error(StreamError {
                kind: "upstream_stream_error".into(),
                message: "the stream ended before messageStop".into(),
            }));
        }
    }
}

/// Encodes an event-stream message as the service sends it (tests and property tests).
pub fn encode_event(message_type: &str, type_header: (&str, &str), payload: &[u8]) -> Vec<u8> {
    use aws_smithy_types::event_stream::Header;
    let message = Message::new(bytes::Bytes::copy_from_slice(payload))
        .add_header(Header::new(":message-type", HeaderValue::String(message_type.to_owned().into())))
        .add_header(Header::new(
            type_header.0.to_owned(),
            HeaderValue::String(type_header.1.to_owned().into()),
        ))
        .add_header(Header::new(":content-type", HeaderValue::String("application/json".into())));
    let mut out = Vec::new();
    // Writing to a Vec only fails for headers over the format's limits, which these are not.
    let _ = aws_smithy_eventstream::frame::write_message_to(&message, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Usage;

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        encode_event("event", (":event-type", kind), payload.as_bytes())
    }

    fn parse(frames: &[Vec<u8>]) -> Vec<StreamEvent> {
        let mut stream = BedrockStream::new();
        let mut out = Vec::new();
        for frame in frames {
            stream.frame(frame, &mut out);
        }
        stream.end(&mut out);
        out
    }

    #[test]
    fn a_tool_use_stream() {
        let events = parse(&[
            event("messageStart", r#"{"role":"assistant","p":"abc"}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":0,"delta":{"text":"Let me call f."}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
            event(
                "contentBlockStart",
                r#"{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"f"}}}"#,
            ),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\""}}}"#),
            event("contentBlockDelta", r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":":1}"}}}"#),
            event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
            event("messageStop", r#"{"stopReason":"tool_use"}"#),
            event(
                "metadata",
                r#"{"usage":{"inputTokens":5,"outputTokens":3,"totalTokens":8,"cacheReadInputTokens":2},"metrics":{"latencyMs":42}}"#,
            ),
        ]);
        assert_eq!(events[0], StreamEvent::Start { id: RESPONSE_ID.into(), model: String::new() });
        assert_eq!(events[1], StreamEvent::Text("Let me call f.".into()));
        assert_eq!(
            events[2],
            StreamEvent::ToolCallStart { index: 0, id: "tooluse_1".into(), name: "f".into() }
        );
        assert_eq!(events[4], StreamEvent::ToolCallArguments { index: 0, fragment: ":1}".into() });
        assert_eq!(events[5], StreamEvent::Finish(FinishReason::ToolCalls));
        assert_eq!(
            events[6],
            StreamEvent::Usage(Usage { input: 7, output: 3, cache_read: 2, ..Usage::default() })
        );
        assert_eq!(events.len(), 7);
    }

    #[test]
    fn exceptions_corrupt_frames_and_early_ends_are_errors() {
        let exception = encode_event(
            "exception",
            (":exception-type", "modelStreamErrorException"),
            br#"{"message":"Model stream error","originalStatusCode":529}"#,
        );
        let events = parse(&[event("messageStart", r#"{"role":"assistant"}"#), exception]);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Error(StreamError {
                kind: "modelStreamErrorException".into(),
                message: "Model stream error".into()
            }))
        );
        let mut corrupt = event("messageStart", r#"{"role":"assistant"}"#);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        assert!(matches!(&parse(&[corrupt])[0], StreamEvent::Error(e) if e.kind == "invalid_upstream_event"));
        let events = parse(&[event("messageStart", r#"{"role":"assistant"}"#)]);
        assert!(
            matches!(events.last(), Some(StreamEvent::Error(e)) if e.message.contains("before messageStop"))
        );
    }
}
