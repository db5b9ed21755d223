//! Response bodies: complete JSON, relayed upstream event streams, mock streams.
//!
//! [`GatewayBody`] is the one body type the server sends. It carries the request's [`Completion`]
//! so metrics are recorded when the last byte is out (or the client leaves), and it forwards
//! stream events as they arrive: nothing is collected, each event is its own frame.

use crate::metrics::Completion;
use crate::upstream::MockStream;
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchboard_llm::Usage;
use switchboard_llm::sse::{EventSplitter, event_data};
use tokio::time::Sleep;

pub struct GatewayBody {
    kind: Kind,
    completion: Option<Completion>,
}

enum Kind {
    Full(Option<Bytes>),
    Relay(SseRelay),
    Mock(MockStream),
}

impl GatewayBody {
    pub fn full(bytes: Bytes) -> Self {
        GatewayBody { kind: Kind::Full(Some(bytes)), completion: None }
    }

    pub fn relay(relay: SseRelay) -> Self {
        GatewayBody { kind: Kind::Relay(relay), completion: None }
    }

    pub fn mock(stream: MockStream) -> Self {
        GatewayBody { kind: Kind::Mock(stream), completion: None }
    }

    pub fn attach(&mut self, completion: Completion) {
        self.completion = Some(completion);
    }
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = match &mut this.kind {
            Kind::Full(bytes) => bytes.take(),
            Kind::Relay(relay) => ready!(relay.poll_event(cx, this.completion.as_mut())),
            Kind::Mock(stream) => ready!(stream.poll_event(cx, this.completion.as_mut())),
        };
        if next.is_none()
            && let Some(completion) = &mut this.completion
        {
            completion.finish();
        }
        Poll::Ready(next.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(&self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Full(None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for GatewayBody {
    fn drop(&mut self) {
        // A full body whose last frame was taken is complete even if hyper never polled again.
        if matches!(self.kind, Kind::Full(None))
            && let Some(completion) = &mut self.completion
        {
            completion.finish();
        }
    }
}

/// Relays an OpenAI-format event stream from an HTTP upstream, event by event.
///
/// Usage is read from the stream's usage chunk for metrics. The gateway always asks upstreams for
/// that chunk (`stream_options.include_usage`); when the client did not ask for it, it is
/// dropped here so the client sees exactly the stream it requested.
///
/// A stream that goes silent for longer than `idle_timeout` is ended with an error event: a hung
/// upstream must not hold a client (and a connection) forever.
pub struct SseRelay {
    upstream: Incoming,
    splitter: EventSplitter,
    strip_usage_chunk: bool,
    done: bool,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl SseRelay {
    pub fn new(upstream: Incoming, strip_usage_chunk: bool, idle_timeout: Duration) -> Self {
        SseRelay {
            upstream,
            splitter: EventSplitter::default(),
            strip_usage_chunk,
            done: false,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        mut completion: Option<&mut Completion>,
    ) -> Poll<Option<Bytes>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut self.upstream).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    ready!(self.idle.as_mut().poll(cx));
                    self.done = true;
                    tracing::warn!(idle_ms = self.idle_timeout.as_millis() as u64, "upstream stream stalled");
                    return Poll::Ready(Some(error_event("the upstream stream stalled")));
                }
            };
            self.idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
            match frame {
                Some(Ok(frame)) => {
                    let Ok(chunk) = frame.into_data() else { continue };
                    match self.relay_chunk(&chunk, completion.as_deref_mut()) {
                        Ok(Some(out)) => return Poll::Ready(Some(out)),
                        Ok(None) => continue,
                        Err(message) => {
                            self.done = true;
                            return Poll::Ready(Some(error_event(message)));
                        }
                    }
                }
                Some(Err(err)) => {
                    // The status line is long gone; tell the client in-band, as OpenAI does.
                    self.done = true;
                    tracing::warn!(error = %err, "upstream stream broke off");
                    return Poll::Ready(Some(error_event("the upstream stream broke off")));
                }
                None => {
                    self.done = true;
                    // An unterminated last event is forwarded as is rather than lost.
                    return Poll::Ready(self.splitter.finish());
                }
            }
        }
    }

    /// Turns one upstream chunk into what the client gets: the complete events it finishes, minus
    /// a stripped usage chunk. `None` when nothing is complete yet.
    fn relay_chunk(
        &mut self,
        chunk: &[u8],
        completion: Option<&mut Completion>,
    ) -> Result<Option<Bytes>, &'static str> {
        let events = self.splitter.push(chunk).map_err(|_| "an upstream event exceeded the size limit")?;
        if events.is_empty() {
            return Ok(None);
        }
        // Fast path: only events that might carry usage are parsed.
        let mut usage = Usage::default();
        let mut out: Option<BytesMut> = None;
        let mut kept = Vec::with_capacity(events.len());
        for event in events {
            let mut keep = true;
            if memchr::memmem::find(&event, b"\"usage\"").is_some()
                && let Some(data) = event_data(&event)
                && let Some((chunk_usage, usage_only)) = Usage::from_chunk(&data)
            {
                usage.prompt_tokens += chunk_usage.prompt_tokens;
                usage.completion_tokens += chunk_usage.completion_tokens;
                keep = !(usage_only && self.strip_usage_chunk);
            }
            if keep {
                kept.push(event);
            }
        }
        if let Some(completion) = completion {
            completion.add_usage(usage);
        }
        Ok(match kept.len() {
            0 => None,
            1 => kept.pop(),
            _ => {
                let buffer =
                    out.get_or_insert_with(|| BytesMut::with_capacity(kept.iter().map(Bytes::len).sum()));
                kept.iter().for_each(|e| buffer.extend_from_slice(e));
                out.map(BytesMut::freeze)
            }
        })
    }
}

fn error_event(message: &str) -> Bytes {
    let body = crate::error::envelope(message, "server_error", None, Some("upstream_stream_error"));
    let mut event = BytesMut::with_capacity(body.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(&body);
    event.extend_from_slice(b"\n\n");
    event.freeze()
}
