//! Stream translation: a pure state machine per (upstream dialect → client API) pair.
//!
//! The gateway's relay splits the upstream byte stream into frames (SSE events) and hands each
//! complete one to a [`StreamTranslator`], which decides what the client receives and keeps the
//! usage reported so far. The relay also tells it how the stream ended, cleanly ([`end`]) or not
//! ([`fail`]), so the translator, which knows the client's dialect, writes the closing or error
//! events: one place per dialect. No sockets here: every translator is tested by feeding it
//! recorded events.
//!
//! [`end`]: StreamTranslator::end
//! [`fail`]: StreamTranslator::fail

use crate::Usage;
use crate::hub::StreamEvent;
use crate::openai::ChunkRenderer;
use crate::sse::event_data;
use bytes::{Bytes, BytesMut};

/// Why a stream ended before its upstream finished it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFailure {
    /// The upstream connection broke off.
    BrokenOff,
    /// Nothing arrived for longer than the provider's timeout.
    Stalled,
    /// One event was larger than the relay accepts.
    EventTooLarge,
    /// The bytes cannot be framed (an event-stream prelude with an impossible length).
    InvalidFrame,
    /// The request reached its route's total time limit.
    TimeLimit,
}

impl StreamFailure {
    /// What the client is told (no upstream detail: it may name internal hosts).
    pub fn message(self) -> &'static str {
        match self {
            StreamFailure::BrokenOff => "the upstream stream broke off",
            StreamFailure::Stalled => "the upstream stream stalled",
            StreamFailure::EventTooLarge => "an upstream event exceeded the size limit",
            StreamFailure::InvalidFrame => "the upstream stream is not validly framed",
            StreamFailure::TimeLimit => "the request reached its time limit",
        }
    }
}

/// Turns upstream frames into client events.
pub trait StreamTranslator: Send {
    /// One complete upstream frame in; the events for the client appended to `out` (none, one or
    /// several).
    fn event(&mut self, frame: Bytes, out: &mut Vec<Bytes>);

    /// The upstream stream ended cleanly; anything still owed to the client goes to `out`.
    fn end(&mut self, _out: &mut Vec<Bytes>) {}

    /// The stream cannot go on; the client is told in its own dialect, in `out`.
    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>);

    /// Usage reported so far: a running total, replaced by every report (never summed twice).
    fn usage(&self) -> Usage;
}

/// OpenAI-format upstream to an OpenAI-format client: events pass through byte for byte.
///
/// The gateway always asks OpenAI-compatible upstreams for usage
/// (`stream_options.include_usage`), which adds a final chunk with `choices: []` and the usage,
/// and `"usage":null` on every other chunk. When the client did not ask for it, that chunk is
/// dropped here after its usage is read and the `"usage":null` fields are cut, so the client
/// receives exactly the stream it requested.
///
/// An event whose data is cut off (its last `data:` line does not end a JSON object or
/// `[DONE]`: what a truncated or proxy-mangled stream looks like) ends the stream with an error
/// event instead of reaching the client's JSON parser; what follows it is dropped. This is an
/// O(1) look at the event's end, not a parse: parsing every chunk would cost the passthrough
/// its speed, and a chunk mangled in the middle still passes.
#[derive(Debug)]
pub struct OpenAiPassthrough {
    strip_usage_chunk: bool,
    usage: Usage,
    /// An error event was sent: nothing more goes to the client.
    closed: bool,
}

/// What `include_usage` adds to every chunk but the usage chunk (OpenAI writes compact JSON).
const NULL_USAGE: &[u8] = b",\"usage\":null";

impl OpenAiPassthrough {
    pub fn new(strip_usage_chunk: bool) -> Self {
        OpenAiPassthrough { strip_usage_chunk, usage: Usage::default(), closed: false }
    }
}

/// Whether an event's last line is `data:` whose value cannot be a whole JSON object or
/// `[DONE]` (it does not end in `}` or `]`).
fn cut_off(event: &[u8]) -> bool {
    let Some(end) = event.iter().rposition(|b| !b.is_ascii_whitespace()) else { return false };
    let line = memchr::memrchr(b'\n', &event[..end]).map_or(0, |i| i + 1);
    event[line..].starts_with(b"data:") && !matches!(event[end], b'}' | b']')
}

impl StreamTranslator for OpenAiPassthrough {
    fn event(&mut self, event: Bytes, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        if cut_off(&event) {
            self.closed = true;
            out.push(crate::openai::stream_error_event(
                "the upstream sent an event that is not JSON",
                "invalid_upstream_event",
            ));
            return;
        }
        // Only events that can carry usage are parsed; the rest are forwarded untouched.
        if let Some(at) = memchr::memmem::find(&event, b"\"usage\"") {
            // `"usage":null` carries nothing to read; the client that did not ask for usage
            // does not see it.
            let null_at =
                at.checked_sub(1).filter(|&s| event.get(s..s + NULL_USAGE.len()) == Some(NULL_USAGE));
            if let Some(start) = null_at {
                if self.strip_usage_chunk {
                    let mut cut = BytesMut::with_capacity(event.len() - NULL_USAGE.len());
                    cut.extend_from_slice(&event[..start]);
                    cut.extend_from_slice(&event[start + NULL_USAGE.len()..]);
                    out.push(cut.freeze());
                    return;
                }
            } else if let Some(data) = event_data(&event)
                && let Some((reported, usage_only)) = Usage::from_openai_chunk(&data)
            {
                // A running total (vLLM's continuous usage stats repeat it on every chunk).
                self.usage = reported;
                if usage_only && self.strip_usage_chunk {
                    return;
                }
            }
        }
        out.push(event);
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if !self.closed {
            self.closed = true;
            out.push(crate::openai::stream_error_event(failure.message(), "upstream_stream_error"));
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

/// A provider's stream parser: its frames in, hub events out. One per provider dialect; the
/// client's dialect is rendered from the hub events by [`HubTranslator`].
pub trait ProviderStream: Send {
    /// One complete upstream frame (an SSE event, an event-stream message).
    fn frame(&mut self, frame: &[u8], events: &mut Vec<StreamEvent>);

    /// The upstream ended cleanly; a stream its provider did not finish reports an error here.
    fn end(&mut self, _events: &mut Vec<StreamEvent>) {}
}

/// A client dialect's stream writer: hub events in, the client's events out. One per client
/// dialect (OpenAI chat chunks, Anthropic Messages events, OpenAI Responses events); the provider
/// side is a [`ProviderStream`].
pub trait ClientRenderer: Send {
    /// Appends the client events for `event` to `out`.
    fn render(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>);

    /// The stream ended cleanly: whatever closes it in this dialect.
    fn end(&mut self, out: &mut Vec<Bytes>);

    /// The stream cannot go on: the client is told in its own dialect.
    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>);
}

/// A renderer chosen at run time (the client's API is known per request).
impl<R: ClientRenderer + ?Sized> ClientRenderer for Box<R> {
    fn render(&mut self, event: &StreamEvent, out: &mut Vec<Bytes>) {
        (**self).render(event, out);
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        (**self).end(out);
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        (**self).fail(failure, out);
    }
}

/// A provider's stream rendered for a client, through the hub.
pub struct HubTranslator<P, R = ChunkRenderer> {
    provider: P,
    renderer: R,
    usage: Usage,
    /// Reused between frames.
    events: Vec<StreamEvent>,
}

impl<P: ProviderStream, R: ClientRenderer> HubTranslator<P, R> {
    pub fn new(provider: P, renderer: R) -> Self {
        HubTranslator { provider, renderer, usage: Usage::default(), events: Vec::new() }
    }

    fn render(&mut self, out: &mut Vec<Bytes>) {
        for event in self.events.drain(..) {
            if let StreamEvent::Usage(usage) = &event {
                self.usage = *usage;
            }
            self.renderer.render(&event, out);
        }
    }
}

impl<P: ProviderStream, R: ClientRenderer> StreamTranslator for HubTranslator<P, R> {
    fn event(&mut self, frame: Bytes, out: &mut Vec<Bytes>) {
        self.provider.frame(&frame, &mut self.events);
        self.render(out);
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        self.provider.end(&mut self.events);
        self.render(out);
        self.renderer.end(out);
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        self.renderer.fail(failure, out);
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

/// A provider's stream forwarded byte for byte to a client of the same API (the Messages API
/// to an Anthropic backend). The provider's parser reads each frame only for its usage and to
/// notice a stream the provider did not finish; `error_event` writes the dialect's in-stream
/// error for a stream that cannot go on.
pub struct Forwarded<P> {
    provider: P,
    error_event: fn(&str) -> Bytes,
    usage: Usage,
    events: Vec<StreamEvent>,
    /// An error event went out (the provider's or ours): nothing more follows.
    closed: bool,
}

impl<P: ProviderStream> Forwarded<P> {
    pub fn new(provider: P, error_event: fn(&str) -> Bytes) -> Self {
        Forwarded { provider, error_event, usage: Usage::default(), events: Vec::new(), closed: false }
    }

    /// Reads what the parser made of the last frame; whether it reported an error.
    fn read_events(&mut self) -> bool {
        let mut error = false;
        for event in self.events.drain(..) {
            match event {
                StreamEvent::Usage(usage) => self.usage = usage,
                StreamEvent::Error(_) => error = true,
                _ => {}
            }
        }
        error
    }
}

impl<P: ProviderStream> StreamTranslator for Forwarded<P> {
    fn event(&mut self, frame: Bytes, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.provider.frame(&frame, &mut self.events);
        // The provider's own error event reaches the client as it is, and ends the stream.
        self.closed = self.read_events();
        out.push(frame);
    }

    fn end(&mut self, out: &mut Vec<Bytes>) {
        if self.closed {
            return;
        }
        self.provider.end(&mut self.events);
        if self.read_events() {
            self.closed = true;
            out.push((self.error_event)("the upstream stream ended before the answer was complete"));
        }
    }

    fn fail(&mut self, failure: StreamFailure, out: &mut Vec<Bytes>) {
        if !self.closed {
            self.closed = true;
            out.push((self.error_event)(failure.message()));
        }
    }

    fn usage(&self) -> Usage {
        self.usage
    }
}

/// Joins events into one frame (what one upstream chunk produced goes out as one write).
pub fn join(events: &mut Vec<Bytes>) -> Option<Bytes> {
    match events.len() {
        0 => None,
        1 => events.pop(),
        _ => {
            let mut joined = BytesMut::with_capacity(events.iter().map(Bytes::len).sum());
            events.drain(..).for_each(|event| joined.extend_from_slice(&event));
            Some(joined.freeze())
        }
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

    fn run(translator: &mut dyn StreamTranslator, events: &[&'static str]) -> Vec<String> {
        let mut out = Vec::new();
        for event in events {
            translator.event(Bytes::from_static(event.as_bytes()), &mut out);
        }
        translator.end(&mut out);
        out.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect()
    }

    #[test]
    fn strips_the_usage_chunk_the_client_did_not_ask_for() {
        let mut translator = OpenAiPassthrough::new(true);
        let out = run(&mut translator, &RECORDED);
        let expected: Vec<String> = RECORDED
            .iter()
            .filter(|e| !e.contains("\"choices\":[]"))
            .map(|e| e.replace(",\"usage\":null", ""))
            .collect();
        assert_eq!(out, expected, "the usage chunk and the `usage: null` fields are gone");
        assert_eq!(translator.usage(), Usage { input: 7, output: 1, ..Usage::default() });
    }

    #[test]
    fn keeps_every_event_byte_for_byte_when_usage_was_asked_for() {
        let mut translator = OpenAiPassthrough::new(false);
        assert_eq!(run(&mut translator, &RECORDED), RECORDED);
        assert_eq!(translator.usage().total(), 8);
    }

    #[test]
    fn cumulative_usage_on_every_chunk_is_set_not_summed() {
        // vLLM with `continuous_usage_stats`: every chunk carries the running total. The real
        // usage of this stream is 10 in, 4 out (summing the chunks would give 50 in, 14 out).
        const VLLM: [&str; 6] = [
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":0,\"total_tokens\":10}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,\"total_tokens\":11}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":2,\"total_tokens\":12}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"c\"}}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13}}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4,\"total_tokens\":14}}\n\n",
            "data: [DONE]\n\n",
        ];
        let mut translator = OpenAiPassthrough::new(true);
        let out = run(&mut translator, &VLLM);
        assert_eq!(out.len(), 6, "content chunks carrying usage are kept");
        assert_eq!(translator.usage(), Usage { input: 10, output: 4, ..Usage::default() });
    }

    #[test]
    fn a_cut_off_event_ends_the_stream_with_an_error() {
        let mut translator = OpenAiPassthrough::new(false);
        let out = run(
            &mut translator,
            &[
                RECORDED[0],
                "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"te\n\n",
                RECORDED[4],
            ],
        );
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[1].contains("invalid_upstream_event"), "{out:?}");
        let mut more = Vec::new();
        translator.fail(StreamFailure::BrokenOff, &mut more);
        assert!(more.is_empty(), "one error event");
        assert!(!cut_off(b": keep-alive comment\n\n") && !cut_off(b"data: [DONE]\r\n\r\n"));
    }

    #[test]
    fn a_failure_becomes_an_openai_error_event() {
        let mut out = Vec::new();
        OpenAiPassthrough::new(true).fail(StreamFailure::Stalled, &mut out);
        let event = String::from_utf8(out[0].to_vec()).unwrap();
        assert_eq!(
            event,
            "data: {\"error\":{\"message\":\"the upstream stream stalled\",\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_stream_error\"}}\n\n"
        );
    }

    #[test]
    fn events_of_one_chunk_go_out_as_one_frame() {
        let mut events = vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")];
        assert_eq!(join(&mut events), Some(Bytes::from_static(b"ab")));
        assert!(events.is_empty());
        assert_eq!(join(&mut events), None);
    }
}
