//! Gemini's `streamGenerateContent?alt=sse` → hub stream events.
//!
//! Every event is `data: <GenerateContentResponse>` (no `event:` lines, lines ending `\r\n`):
//! text arrives in pieces, a function call whole in one chunk, `finishReason` on the last
//! chunk, and `usageMetadata` on every chunk as the running total (set, never summed). An error
//! after the status line arrives as a chunk `{"error": {...}}`. A stream that ends without a
//! finish reason was cut short, and is reported so.

use super::response::{WireErrorEnvelope, WireResponse, arguments, call_id, finish_reason};
use crate::Usage;
use crate::hub::{FinishReason, StreamError, StreamEvent};
use crate::sse::event_data;
use crate::stream::ProviderStream;

/// Parses one Gemini stream into hub events.
#[derive(Default)]
pub struct GeminiStream {
    started: bool,
    tool_calls: u32,
    finished: bool,
    /// An error was reported: nothing more is owed.
    failed: bool,
}

impl GeminiStream {
    pub fn new() -> Self {
        Self::default()
    }

    fn error(&mut self, kind: impl Into<String>, message: impl Into<String>, events: &mut Vec<StreamEvent>) {
        self.failed = true;
        events.push(StreamEvent::Error(StreamError { kind: kind.into(), message: message.into() }));
    }
}

impl ProviderStream for GeminiStream {
    fn frame(&mut self, frame: &[u8], events: &mut Vec<StreamEvent>) {
        let Some(data) = event_data(frame) else { return };
        if data.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if memchr::memmem::find(&data, b"\"error\"").is_some()
            && let Ok(envelope) = serde_json::from_slice::<WireErrorEnvelope>(&data)
        {
            let kind = envelope.error.kind();
            self.error(kind, envelope.error.message, events);
            return;
        }
        let chunk = match serde_json::from_slice::<WireResponse>(&data) {
            Ok(chunk) => chunk,
            Err(err) => {
                self.error(
                    "invalid_upstream_event",
                    format!("an event that is not a Gemini response: {err}"),
                    events,
                );
                return;
            }
        };
        if !self.started {
            self.started = true;
            events.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
            });
        }
        let mut finish = None;
        match chunk.candidates.into_iter().next() {
            Some(candidate) => {
                for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                    if part.thought == Some(true) {
                        continue;
                    }
                    if let Some(call) = part.function_call {
                        let index = self.tool_calls;
                        self.tool_calls += 1;
                        events.push(StreamEvent::ToolCallStart {
                            index,
                            id: call_id(index),
                            name: call.name,
                        });
                        events.push(StreamEvent::ToolCallArguments {
                            index,
                            fragment: arguments(call.args.as_deref()),
                        });
                    } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                        events.push(StreamEvent::Text(text));
                    }
                }
                if let Some(reason) = candidate.finish_reason.filter(|r| r != "FINISH_REASON_UNSPECIFIED") {
                    finish = Some(finish_reason(&reason, self.tool_calls > 0));
                }
            }
            // A blocked prompt: no candidates, a reason in the feedback.
            None if chunk.prompt_feedback.and_then(|f| f.block_reason).is_some() => {
                finish = Some(FinishReason::ContentFilter);
            }
            None => {}
        }
        if let Some(finish) = finish
            && !self.finished
        {
            self.finished = true;
            events.push(StreamEvent::Finish(finish));
        }
        if let Some(usage) = &chunk.usage_metadata {
            events.push(StreamEvent::Usage(Usage::from(usage)));
        }
    }

    fn end(&mut self, events: &mut Vec<StreamEvent>) {
        if !self.finished && !self.failed {
            self.error("upstream_stream_error", "the stream ended before a finish reason", events);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(events: &[&str]) -> Vec<StreamEvent> {
        let mut stream = GeminiStream::new();
        let mut out = Vec::new();
        for event in events {
            stream.frame(event.as_bytes(), &mut out);
        }
        stream.end(&mut out);
        out
    }

    #[test]
    fn text_then_a_function_call_with_running_usage() {
        let events = parse(&[
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Let me\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 2,\"totalTokenCount\": 11},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"thinking\", \"thought\": true},{\"text\": \" check.\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 3,\"totalTokenCount\": 12},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\",\"args\": {\"city\": \"Paris\"}}},{\"functionCall\": {\"name\": \"get_time\",\"args\": {}}}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 9,\"candidatesTokenCount\": 5,\"totalTokenCount\": 38,\"thoughtsTokenCount\": 24},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n",
        ]);
        assert_eq!(
            events,
            vec![
                StreamEvent::Start { id: "r1".into(), model: "gemini-2.5-flash".into() },
                StreamEvent::Text("Let me".into()),
                StreamEvent::Usage(Usage { input: 9, output: 2, ..Usage::default() }),
                StreamEvent::Text(" check.".into()),
                StreamEvent::Usage(Usage { input: 9, output: 3, ..Usage::default() }),
                StreamEvent::ToolCallStart { index: 0, id: "call_0".into(), name: "get_weather".into() },
                StreamEvent::ToolCallArguments { index: 0, fragment: r#"{"city":"Paris"}"#.into() },
                StreamEvent::ToolCallStart { index: 1, id: "call_1".into(), name: "get_time".into() },
                StreamEvent::ToolCallArguments { index: 1, fragment: "{}".into() },
                StreamEvent::Finish(FinishReason::ToolCalls),
                StreamEvent::Usage(Usage { input: 9, output: 29, reasoning: 24, ..Usage::default() }),
            ]
        );
    }

    #[test]
    fn finish_reasons_in_a_stream() {
        let events = parse(&[
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a b c\"}],\"role\":\"model\"},\"finishReason\":\"MAX_TOKENS\"}]}\r\n\r\n",
        ]);
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::Length)));
        let events = parse(&["data: {\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0}]}\r\n\r\n"]);
        assert_eq!(events.last(), Some(&StreamEvent::Finish(FinishReason::ContentFilter)));
        let events = parse(&[
            "data: {\"promptFeedback\":{\"blockReason\":\"OTHER\"},\"usageMetadata\":{\"promptTokenCount\":4}}\r\n\r\n",
        ]);
        assert_eq!(events[1], StreamEvent::Finish(FinishReason::ContentFilter));
        assert_eq!(events[2], StreamEvent::Usage(Usage { input: 4, ..Usage::default() }));
    }

    #[test]
    fn an_error_chunk_and_an_early_end() {
        let events = parse(&[
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"}}]}\r\n\r\n",
            "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
        ]);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Error(StreamError {
                kind: "UNAVAILABLE".into(),
                message: "The model is overloaded.".into()
            }))
        );
        assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Error(_))).count(), 1);
        let events = parse(&[
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}],\"role\":\"model\"}}]}\r\n\r\n",
        ]);
        assert!(
            matches!(events.last(), Some(StreamEvent::Error(e)) if e.message == "the stream ended before a finish reason"),
            "{events:?}"
        );
    }

    #[test]
    fn garbage_is_reported_and_comments_skipped() {
        let events = parse(&[": keep-alive\r\n\r\n", "data: {\"candidates\": [{\"content\r\n\r\n"]);
        assert!(
            matches!(&events[0], StreamEvent::Error(e) if e.kind == "invalid_upstream_event"),
            "{events:?}"
        );
        assert_eq!(events.len(), 1, "no second error at the end");
    }
}
