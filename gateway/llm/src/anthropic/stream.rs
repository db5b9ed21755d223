//! Anthropic's streamed Messages events → hub stream events.
//!
//! The documented sequence (<https://docs.anthropic.com/en/api/messages-streaming>):
//! `message_start` (id, model, input usage), then per content block `content_block_start`,
//! `content_block_delta`s (`text_delta`, or `input_json_delta` pieces of a tool call's input),
//! `content_block_stop`; then `message_delta` (stop reason, cumulative usage) and
//! `message_stop`. `ping` may come anywhere; `error` ends the stream.

use super::JSON_TOOL;
use super::response::{WireError, WireUsage, finish_reason};
use crate::Usage;
use crate::hub::{FinishReason, StreamError, StreamEvent};
use crate::sse::event_data;
use crate::stream::ProviderStream;
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: MessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop {},
    Ping {},
    Error {
        error: WireError,
    },
}

#[derive(Deserialize)]
struct StartMessage {
    id: String,
    model: String,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    /// Thinking and signature deltas: not part of an OpenAI answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// What an Anthropic content block is, by its index in the message.
#[derive(Clone, Copy)]
enum BlockKind {
    Text,
    /// A tool call, numbered among this answer's calls.
    Tool(u32),
    /// The tool a JSON response format became: its input is the answer's text.
    JsonAnswer,
    Ignored,
}

/// Parses one Anthropic stream into hub events.
#[derive(Default)]
pub struct AnthropicStream {
    blocks: HashMap<u32, BlockKind>,
    tool_calls: u32,
    usage: Usage,
    uncached_input: u64,
    json_answer: bool,
    stopped: bool,
}

impl AnthropicStream {
    pub fn new() -> Self {
        Self::default()
    }

    fn report_usage(&mut self, usage: &WireUsage, events: &mut Vec<StreamEvent>) {
        usage.update(&mut self.usage, &mut self.uncached_input);
        events.push(StreamEvent::Usage(self.usage));
    }
}

impl ProviderStream for AnthropicStream {
    fn frame(&mut self, frame: &[u8], events: &mut Vec<StreamEvent>) {
        let Some(data) = event_data(frame) else { return };
        let event = match serde_json::from_slice::<Event>(&data) {
            Ok(event) => event,
            // An event type added after this was written: skip it, as the docs ask clients to.
            Err(_) if serde_json::from_slice::<serde_json::Value>(&data).is_ok() => return,
            Err(err) => {
                events.push(StreamEvent::Error(StreamError {
                    kind: "invalid_upstream_event".into(),
                    message: format!("an event that is not JSON: {err}"),
                }));
                return;
            }
        };
        match event {
            Event::MessageStart { message } => {
                events.push(StreamEvent::Start { id: message.id, model: message.model });
                if let Some(usage) = &message.usage {
                    self.report_usage(usage, events);
                }
            }
            Event::ContentBlockStart { index, content_block } => {
                let kind = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            events.push(StreamEvent::Text(text));
                        }
                        BlockKind::Text
                    }
                    StartBlock::ToolUse { name, .. } if name == JSON_TOOL => {
                        self.json_answer = true;
                        BlockKind::JsonAnswer
                    }
                    StartBlock::ToolUse { id, name } => {
                        let call = self.tool_calls;
                        self.tool_calls += 1;
                        events.push(StreamEvent::ToolCallStart { index: call, id, name });
                        BlockKind::Tool(call)
                    }
                    StartBlock::Other => BlockKind::Ignored,
                };
                self.blocks.insert(index, kind);
            }
            Event::ContentBlockDelta { index, delta } => {
                let kind = self.blocks.get(&index).copied().unwrap_or(BlockKind::Ignored);
                match (kind, delta) {
                    (BlockKind::Text, Delta::Text { text }) => events.push(StreamEvent::Text(text)),
                    // The API opens every tool input with an empty piece: nothing to send.
                    (_, Delta::InputJson { partial_json }) if partial_json.is_empty() => {}
                    (BlockKind::Tool(call), Delta::InputJson { partial_json }) => {
                        events.push(StreamEvent::ToolCallArguments { index: call, fragment: partial_json })
                    }
                    (BlockKind::JsonAnswer, Delta::InputJson { partial_json }) => {
                        events.push(StreamEvent::Text(partial_json))
                    }
                    _ => {}
                }
            }
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    let mut finish = finish_reason(delta.stop_reason.as_deref());
                    if self.json_answer && finish == FinishReason::ToolCalls {
                        finish = FinishReason::Stop;
                    }
                    events.push(StreamEvent::Finish(finish));
                }
                if let Some(usage) = &usage {
                    self.report_usage(usage, events);
                }
            }
            Event::MessageStop {} => self.stopped = true,
            Event::ContentBlockStop {} | Event::Ping {} => {}
            Event::Error { error } => {
                self.stopped = true;
                events.push(StreamEvent::Error(StreamError { kind: error.kind, message: error.message }));
            }
        }
    }

    fn end(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.stopped {
            events.push(StreamEvent::Error(StreamError {
                kind: "upstream_stream_error".into(),
                message: "the stream ended before message_stop".into(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(events: &[&str]) -> Vec<StreamEvent> {
        let mut stream = AnthropicStream::new();
        let mut out = Vec::new();
        for event in events {
            stream.frame(event.as_bytes(), &mut out);
        }
        stream.end(&mut out);
        out
    }

    #[test]
    fn the_documented_tool_use_stream() {
        // The tool-use example of the streaming docs, `partial_json` cut finer.
        let events = parse(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-opus-4-1\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2,\"cache_read_input_tokens\":100}}}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: ping\ndata: {\"type\": \"ping\"}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Okay\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1\",\"name\":\"get_weather\",\"input\":{}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"loc\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ation\\\": \\\"SF\\\"}\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ]);
        let arguments: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallArguments { index: 0, fragment } => Some(fragment.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(arguments, r#"{"location": "SF"}"#);
        assert_eq!(events[0], StreamEvent::Start { id: "msg_014p".into(), model: "claude-opus-4-1".into() });
        assert!(events.contains(&StreamEvent::Text("Okay".into())));
        assert!(events.contains(&StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_01T1".into(),
            name: "get_weather".into()
        }));
        assert!(events.contains(&StreamEvent::Finish(FinishReason::ToolCalls)));
        // Cumulative: the message_delta's output replaces message_start's 2; input keeps the cache.
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Usage(Usage { input: 572, output: 89, cache_read: 100, ..Usage::default() }))
        );
    }

    #[test]
    fn an_error_event_and_an_early_end() {
        let events = parse(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        ]);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Error(StreamError {
                kind: "overloaded_error".into(),
                message: "Overloaded".into()
            }))
        );
        let events = parse(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\"}}\n\n",
        ]);
        assert!(
            matches!(events.last(), Some(StreamEvent::Error(e)) if e.message.contains("before message_stop"))
        );
    }

    #[test]
    fn unknown_events_are_skipped_and_garbage_reported() {
        let events = parse(&[
            "event: brand_new\ndata: {\"type\":\"brand_new\",\"x\":1}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ]);
        assert!(events.is_empty(), "{events:?}");
        let events = parse(&["data: {not json\n\n", "data: {\"type\":\"message_stop\"}\n\n"]);
        assert!(matches!(&events[0], StreamEvent::Error(e) if e.kind == "invalid_upstream_event"));
    }
}
