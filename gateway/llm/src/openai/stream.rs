//! OpenAI-compatible `chat.completion.chunk` streams → hub stream events.
//!
//! Reference: <https://platform.openai.com/docs/api-reference/chat-streaming> and the streaming
//! section of <https://platform.openai.com/docs/guides/function-calling>. Every event is
//! `data: <chunk>`; text arrives in `delta.content` pieces; a tool call arrives in
//! `delta.tool_calls` entries keyed by `index`, the first with `id` and `function.name`, the
//! rest with pieces of `function.arguments`; `finish_reason` is set on the last choice chunk;
//! with `stream_options.include_usage`, a chunk with `choices: []` carries the usage; `[DONE]`
//! ends the stream. An error after the status line arrives as an `{"error":{...}}` chunk.
//!
//! What compatible servers do differently, and is read here:
//! - a whole call in one entry (Ollama), or `id` and `name` repeated on every piece (vLLM): a
//!   piece whose id is the call's own continues it;
//! - calls all numbered 0, or not numbered (some Ollama and llama.cpp versions): a piece with a
//!   new id and a name starts a new call;
//! - usage on every chunk as the running total (vLLM's `continuous_usage_stats`): each report
//!   replaces the last, never adds to it;
//! - a first chunk with no choices, id or model (Azure's prompt filter results): skipped.
//!
//! A stream that ends without a finish reason was cut short and is reported as an error; one
//! that ends after it without `[DONE]` is not (the answer is whole, though its usage may be
//! missing).

use super::response::{arguments_text, finish_reason, parse_error};
use crate::Usage;
use crate::hub::{StreamError, StreamEvent};
use crate::sse::event_data;
use crate::stream::ProviderStream;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    /// `null` in some servers' usage chunk.
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    /// Kept raw: a usage of an unexpected shape costs the count, not the stream.
    #[serde(default)]
    usage: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireCallPiece>>,
}

/// One `delta.tool_calls` entry.
#[derive(Deserialize)]
struct WireCallPiece {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionPiece>,
}

#[derive(Deserialize)]
struct WireFunctionPiece {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<Box<RawValue>>,
}

/// A tool call of the answer, as its pieces arrive.
struct Call {
    /// The id the upstream gave it (empty until it does).
    id: String,
    /// Its number among the answer's calls, once announced (which needs a name).
    hub_index: Option<u32>,
    /// Arguments that came before the name, held until the call is announced.
    held: String,
}

impl Call {
    /// Starts this call as the answer's `index`th, with the arguments it held. A call the
    /// upstream gave no id gets one, as Gemini's calls do: the client sends it back with the
    /// result.
    fn announce(&mut self, index: u32, name: String, events: &mut Vec<StreamEvent>) {
        self.hub_index = Some(index);
        let id = if self.id.is_empty() { format!("call_{index}") } else { self.id.clone() };
        events.push(StreamEvent::ToolCallStart { index, id, name });
        if !self.held.is_empty() {
            events.push(StreamEvent::ToolCallArguments { index, fragment: std::mem::take(&mut self.held) });
        }
    }
}

/// Parses one OpenAI-compatible stream into hub events.
#[derive(Default)]
pub struct OpenAiStream {
    started: bool,
    calls: Vec<Call>,
    /// The upstream's `index` → the latest call in `calls` with it.
    by_index: HashMap<u32, usize>,
    announced: u32,
    refused: bool,
    finished: bool,
    /// An error was reported: nothing more is owed.
    failed: bool,
    /// `[DONE]` or an error: nothing more is read.
    closed: bool,
}

impl OpenAiStream {
    pub fn new() -> Self {
        Self::default()
    }

    fn error(&mut self, kind: impl Into<String>, message: impl Into<String>, events: &mut Vec<StreamEvent>) {
        self.closed = true;
        self.failed = true;
        events.push(StreamEvent::Error(StreamError { kind: kind.into(), message: message.into() }));
    }

    /// The slot in `calls` a piece belongs to, a new one if it starts a call.
    fn slot(&mut self, piece: &WireCallPiece) -> usize {
        let new_id = piece.id.as_deref().filter(|id| !id.is_empty());
        let named = piece.function.as_ref().and_then(|f| f.name.as_deref()).is_some_and(|n| !n.is_empty());
        let current = match piece.index {
            Some(index) => self.by_index.get(&index).copied(),
            None => self.calls.len().checked_sub(1),
        };
        if let Some(slot) = current {
            let call = &self.calls[slot];
            // A different id with a name is another call under the same number (or none); a
            // different id without one is a server that re-ids every piece: the same call.
            let another = named && new_id.is_some_and(|id| !call.id.is_empty() && call.id != id);
            if !another {
                return slot;
            }
        }
        let slot = self.calls.len();
        self.calls.push(Call { id: String::new(), hub_index: None, held: String::new() });
        if let Some(index) = piece.index {
            self.by_index.insert(index, slot);
        }
        slot
    }

    fn tool_call_piece(&mut self, piece: WireCallPiece, events: &mut Vec<StreamEvent>) {
        let slot = self.slot(&piece);
        let (name, arguments) = match piece.function {
            Some(function) => {
                (function.name.filter(|n| !n.is_empty()), arguments_text(function.arguments.as_deref()))
            }
            None => (None, String::new()),
        };
        let call = &mut self.calls[slot];
        if call.id.is_empty()
            && let Some(id) = piece.id
        {
            call.id = id;
        }
        let index = match (call.hub_index, name) {
            (Some(index), _) => index,
            (None, Some(name)) => {
                let index = self.announced;
                self.announced += 1;
                call.announce(index, name, events);
                index
            }
            (None, None) => {
                call.held.push_str(&arguments);
                return;
            }
        };
        if !arguments.is_empty() {
            events.push(StreamEvent::ToolCallArguments { index, fragment: arguments });
        }
    }

    /// Calls whose name never came are announced nameless before the answer ends: their
    /// arguments are the model's output, and the client decides what a nameless call means.
    fn announce_held(&mut self, events: &mut Vec<StreamEvent>) {
        for call in self.calls.iter_mut().filter(|c| c.hub_index.is_none()) {
            call.announce(self.announced, String::new(), events);
            self.announced += 1;
        }
    }
}

impl ProviderStream for OpenAiStream {
    fn frame(&mut self, frame: &[u8], events: &mut Vec<StreamEvent>) {
        if self.closed {
            return;
        }
        let Some(data) = event_data(frame) else { return };
        let data = data.trim_ascii();
        if data.is_empty() {
            return;
        }
        if data == b"[DONE]" {
            self.closed = true;
            return;
        }
        // Only a chunk that names `error` can be one: the common chunk is parsed once.
        if memchr::memmem::find(data, b"\"error\"").is_some()
            && let Some((kind, message)) = parse_error(data)
        {
            self.error(kind, message, events);
            return;
        }
        let chunk = match serde_json::from_slice::<WireChunk>(data) {
            Ok(chunk) => chunk,
            Err(err) => {
                self.error(
                    "invalid_upstream_event",
                    format!("an event that is not a chat completion chunk: {err}"),
                    events,
                );
                return;
            }
        };
        let choices = chunk.choices.unwrap_or_default();
        if !self.started && (!choices.is_empty() || chunk.usage.is_some()) {
            self.started = true;
            events.push(StreamEvent::Start {
                id: chunk.id.unwrap_or_default(),
                model: chunk.model.unwrap_or_default(),
            });
        }
        // The gateway never asks for more than one choice.
        for choice in choices.into_iter().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    events.push(StreamEvent::Text(text));
                }
                // The hub has no refusal: its text is the answer, flagged by the finish reason.
                if let Some(refusal) = delta.refusal.filter(|r| !r.is_empty()) {
                    self.refused = true;
                    events.push(StreamEvent::Text(refusal));
                }
                for piece in delta.tool_calls.unwrap_or_default() {
                    self.tool_call_piece(piece, events);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty())
                && !self.finished
            {
                self.finished = true;
                self.announce_held(events);
                events.push(StreamEvent::Finish(finish_reason(
                    Some(&reason),
                    self.announced > 0,
                    self.refused,
                )));
            }
        }
        if let Some(usage) = chunk.usage.and_then(|raw| Usage::from_openai_usage(raw.get().as_bytes())) {
            events.push(StreamEvent::Usage(usage));
        }
    }

    fn end(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.finished && !self.failed {
            self.error("upstream_stream_error", "the stream ended before a finish reason", events);
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
