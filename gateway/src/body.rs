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
use switchboard_llm::sse::EventSplitter;
use switchboard_llm::stream::StreamTranslator;
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

/// Drives a [`StreamTranslator`] over an upstream event stream: the only code that reads an
/// upstream body. It splits bytes into SSE events (holding at most one incomplete event),
/// translates each, and sends what one upstream chunk produced as one frame, at once.
///
/// A stream that goes silent for longer than `idle_timeout` is ended with an error event: a hung
/// upstream must not hold a client (and a connection) forever.
pub struct SseRelay {
    upstream: Incoming,
    splitter: EventSplitter,
    translator: Box<dyn StreamTranslator>,
    /// Reused output buffer, so steady-state streaming does not allocate per chunk.
    out: Vec<Bytes>,
    done: bool,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl SseRelay {
    pub fn new(upstream: Incoming, translator: Box<dyn StreamTranslator>, idle_timeout: Duration) -> Self {
        SseRelay {
            upstream,
            splitter: EventSplitter::default(),
            translator,
            out: Vec::new(),
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
            let mut usage = Usage::default();
            match frame {
                Some(Ok(frame)) => {
                    let Ok(chunk) = frame.into_data() else { continue };
                    let Ok(events) = self.splitter.push(&chunk) else {
                        self.done = true;
                        return Poll::Ready(Some(error_event("an upstream event exceeded the size limit")));
                    };
                    for event in events {
                        self.translator.event(event, &mut usage, &mut self.out);
                    }
                }
                Some(Err(err)) => {
                    // The status line is long gone; tell the client in-band, as OpenAI does.
                    self.done = true;
                    tracing::warn!(error = %err, "upstream stream broke off");
                    self.out.push(error_event("the upstream stream broke off"));
                }
                None => {
                    self.done = true;
                    // An unterminated last event is still an event.
                    if let Some(rest) = self.splitter.finish() {
                        self.translator.event(rest, &mut usage, &mut self.out);
                    }
                    self.translator.end(&mut self.out);
                }
            }
            if let Some(completion) = completion.as_deref_mut() {
                completion.add_usage(usage);
            }
            match self.out.len() {
                0 => continue,
                1 => return Poll::Ready(self.out.pop()),
                _ => {
                    let mut joined = BytesMut::with_capacity(self.out.iter().map(Bytes::len).sum());
                    self.out.drain(..).for_each(|event| joined.extend_from_slice(&event));
                    return Poll::Ready(Some(joined.freeze()));
                }
            }
        }
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
