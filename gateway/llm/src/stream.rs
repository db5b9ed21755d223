//! Stream translation: a pure state machine per (upstream dialect → client API) pair.
//!
//! The gateway's body adapter splits the upstream byte stream into SSE events and hands each
//! complete event to a [`StreamTranslator`], which decides what the client receives and reports
//! usage. No sockets here, so every translator is tested by feeding it recorded events.

use crate::Usage;
use crate::sse::event_data;
use bytes::Bytes;

/// Turns upstream SSE events into client SSE events.
pub trait StreamTranslator: Send {
    /// One complete upstream event (with its terminating blank line) in; the events for the
    /// client appended to `out` (none, one, or several). Usage the event reports is added to
    /// `usage`.
    fn event(&mut self, event: Bytes, usage: &mut Usage, out: &mut Vec<Bytes>);

    /// The upstream stream ended cleanly; anything still owed to the client goes to `out`.
    fn end(&mut self, _out: &mut Vec<Bytes>) {}
}

/// OpenAI-format upstream to an OpenAI-format client: events pass through byte for byte.
///
/// The gateway always asks OpenAI-compatible upstreams for usage
/// (`stream_options.include_usage`), which adds a final chunk with `choices: []` and the usage.
/// When the client did not ask for it, that chunk is dropped here after its usage is counted,
/// so the client receives exactly the stream it requested.
#[derive(Debug)]
pub struct OpenAiPassthrough {
    strip_usage_chunk: bool,
}

impl OpenAiPassthrough {
    pub fn new(strip_usage_chunk: bool) -> Self {
        OpenAiPassthrough { strip_usage_chunk }
    }
}

impl StreamTranslator for OpenAiPassthrough {
    fn event(&mut self, event: Bytes, usage: &mut Usage, out: &mut Vec<Bytes>) {
        // Only events that can carry usage are parsed; the rest are forwarded untouched.
        if memchr::memmem::find(&event, b"\"usage\"").is_some()
            && let Some(data) = event_data(&event)
            && let Some((reported, usage_only)) = Usage::from_chunk(&data)
        {
            usage.prompt_tokens += reported.prompt_tokens;
            usage.completion_tokens += reported.completion_tokens;
            if usage_only && self.strip_usage_chunk {
                return;
            }
        }
        out.push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as an OpenAI-compatible server sends it with `include_usage` on.
    const RECORDED: [&str; 5] = [
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":1,\"total_tokens\":8}}\n\n",
        "data: [DONE]\n\n",
    ];

    fn run(translator: &mut dyn StreamTranslator) -> (Vec<String>, Usage) {
        let mut usage = Usage::default();
        let mut out = Vec::new();
        for event in RECORDED {
            translator.event(Bytes::from_static(event.as_bytes()), &mut usage, &mut out);
        }
        translator.end(&mut out);
        (out.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect(), usage)
    }

    #[test]
    fn strips_the_usage_chunk_the_client_did_not_ask_for() {
        let (out, usage) = run(&mut OpenAiPassthrough::new(true));
        let expected: Vec<&str> =
            RECORDED.iter().copied().filter(|e| !e.contains("\"choices\":[]")).collect();
        assert_eq!(out, expected);
        assert_eq!(usage, Usage { prompt_tokens: 7, completion_tokens: 1 });
    }

    #[test]
    fn keeps_every_event_byte_for_byte_when_usage_was_asked_for() {
        let (out, usage) = run(&mut OpenAiPassthrough::new(false));
        assert_eq!(out, RECORDED);
        assert_eq!(usage.total(), 8);
    }

    #[test]
    fn usage_inside_a_content_chunk_is_counted_and_kept() {
        // Some servers (vLLM with continuous usage stats) report usage on content chunks.
        let event = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n\n";
        let (mut usage, mut out) = (Usage::default(), Vec::new());
        OpenAiPassthrough::new(true).event(Bytes::from_static(event.as_bytes()), &mut usage, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(usage.total(), 5);
    }
}
