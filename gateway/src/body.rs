//! Response bodies: complete JSON, relayed upstream event streams, mock streams.
//!
//! [`GatewayBody`] is the one body type the server sends. It carries the request's [`Ledger`]
//! so the request is accounted for when the last byte is out (or the client leaves), and it forwards
//! stream events as they arrive: nothing is collected, each event is its own frame.

use crate::ledger::Ledger;
use crate::upstream::MockStream;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchboard_llm::eventstream::{FrameError, MessageSplitter};
use switchboard_llm::sse::{EventSplitter, EventTooLarge};
use switchboard_llm::stream::{StreamFailure, StreamTranslator, join};
use tokio::time::Sleep;

pub struct GatewayBody {
    kind: Kind,
    ledger: Option<Ledger>,
}

enum Kind {
    Full(Option<Bytes>),
    Relay(Box<SseRelay>),
}

impl GatewayBody {
    pub fn full(bytes: Bytes) -> Self {
        GatewayBody { kind: Kind::Full(Some(bytes)), ledger: None }
    }

    pub fn relay(relay: Box<SseRelay>) -> Self {
        GatewayBody { kind: Kind::Relay(relay), ledger: None }
    }

    pub fn attach(&mut self, ledger: Ledger) {
        self.ledger = Some(ledger);
    }

    /// For a relayed stream: `hook`'s future runs to completion before the stream's last events
    /// go out (a stored response is saved before the client can ask to continue it). `false`
    /// for a full body, which has no last events to hold.
    pub fn before_end(&mut self, hook: ClosingHook) -> bool {
        match &mut self.kind {
            Kind::Relay(relay) => {
                relay.closing_hook = Some(hook);
                true
            }
            Kind::Full(_) => false,
        }
    }
}

/// Work a stream's end waits for (see [`GatewayBody::before_end`]).
pub type ClosingHook = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

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
            Kind::Relay(relay) => ready!(relay.poll_event(cx, this.ledger.as_mut())),
        };
        if let Some(ledger) = &mut this.ledger {
            match &next {
                Some(bytes) => ledger.observe(bytes),
                None => ledger.finish(),
            }
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
            && let Some(ledger) = &mut self.ledger
        {
            ledger.finish();
        }
    }
}

/// Where a relayed stream's bytes come from.
pub enum Source {
    /// An HTTP upstream's response body.
    Http(Incoming),
    /// The built-in mock, which writes what an OpenAI upstream would.
    Mock(MockStream),
}

impl Source {
    /// The next piece of bytes (`Ok(None)`: a frame without data, such as trailers).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Option<Bytes>, hyper::Error>>> {
        match self {
            Source::Http(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map(|frame| frame.into_data().ok()))),
            Source::Mock(stream) => stream.poll_event(cx).map(|event| event.map(|bytes| Ok(Some(bytes)))),
        }
    }
}

/// How an upstream stream's bytes divide into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events (OpenAI, Anthropic, Gemini).
    Sse,
    /// AWS event-stream binary messages (`application/vnd.amazon.eventstream`, Bedrock).
    AwsEventStream,
}

/// A frame decoder: bytes in, complete frames out, at most one incomplete frame held (capped).
enum Decoder {
    Sse(EventSplitter),
    AwsEventStream(MessageSplitter),
}

impl Decoder {
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Bytes>, StreamFailure> {
        match self {
            Decoder::Sse(splitter) => {
                splitter.push(chunk).map_err(|EventTooLarge| StreamFailure::EventTooLarge)
            }
            Decoder::AwsEventStream(splitter) => splitter.push(chunk).map_err(|err| match err {
                FrameError::TooLarge => StreamFailure::EventTooLarge,
                FrameError::Invalid => StreamFailure::InvalidFrame,
            }),
        }
    }

    fn finish(&mut self) -> Option<Bytes> {
        match self {
            Decoder::Sse(splitter) => splitter.finish(),
            Decoder::AwsEventStream(splitter) => splitter.finish(),
        }
    }
}

/// Drives a [`StreamTranslator`] over an upstream event stream: the only code that reads an
/// upstream body. It splits bytes into frames (SSE events, or AWS event-stream messages; see
/// [`Framing`]), translates each, and sends what one upstream chunk produced as one frame, at once.
///
/// A stream that goes silent for longer than `idle_timeout` is ended with an error event: a hung
/// upstream must not hold a client (and a connection) forever.
pub struct SseRelay {
    upstream: Source,
    decoder: Decoder,
    translator: Box<dyn StreamTranslator>,
    /// Reused output buffer, so steady-state streaming does not allocate per chunk.
    out: Vec<Bytes>,
    done: bool,
    idle_timeout: Duration,
    idle: Pin<Box<Sleep>>,
    /// Started when the stream is done; its last events wait for it.
    closing_hook: Option<ClosingHook>,
    closing: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Events [`SseRelay::prime`] read before the body was polled, not yet told to the ledger.
    primed_events: u64,
    /// When the whole stream must be over (a route's total time limit).
    end_by: Option<Pin<Box<Sleep>>>,
}

/// Why a stream failed before its first event reached the client: the attempt failed, and
/// another backend may still serve the request.
#[derive(Debug)]
pub struct StartFailure(pub String);

impl SseRelay {
    /// Boxed: a relay is ten times the size of a full body, and most replies are full.
    pub fn new(upstream: Source, translator: Box<dyn StreamTranslator>, idle_timeout: Duration) -> Box<Self> {
        Self::with_framing(upstream, Framing::Sse, translator, idle_timeout)
    }

    pub fn with_framing(
        upstream: Source,
        framing: Framing,
        translator: Box<dyn StreamTranslator>,
        idle_timeout: Duration,
    ) -> Box<Self> {
        let decoder = match framing {
            Framing::Sse => Decoder::Sse(EventSplitter::default()),
            Framing::AwsEventStream => Decoder::AwsEventStream(MessageSplitter::default()),
        };
        Box::new(SseRelay {
            upstream,
            decoder,
            translator,
            out: Vec::new(),
            done: false,
            idle_timeout,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            closing_hook: None,
            closing: None,
            primed_events: 0,
            end_by: None,
        })
    }

    /// The longest silence allowed between events.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Tightens the longest silence allowed between events (a route's limit below its
    /// provider's).
    pub fn tighten_idle_timeout(&mut self, idle: Duration) {
        if idle < self.idle_timeout {
            self.idle_timeout = idle;
            self.idle.as_mut().reset(tokio::time::Instant::now() + idle);
        }
    }

    /// Ends the stream with an error event at `deadline`, wherever it is.
    pub fn end_by(&mut self, deadline: tokio::time::Instant) {
        self.end_by = Some(Box::pin(tokio::time::sleep_until(deadline)));
    }

    /// Reads the upstream until the stream has its first event for the client, or fails. Until
    /// then the client has received nothing, so a failure here (the upstream broke off, sent
    /// garbage, ended empty) can still move on to another backend; once this returns `Ok`, the
    /// attempt has answered and the stream is the client's. The caller bounds the wait.
    pub async fn prime(&mut self) -> Result<(), StartFailure> {
        std::future::poll_fn(|cx| self.poll_prime(cx)).await?;
        self.idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
        Ok(())
    }

    fn poll_prime(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StartFailure>> {
        loop {
            match ready!(self.upstream.poll_chunk(cx)) {
                Some(Ok(None)) => {}
                Some(Ok(Some(chunk))) => {
                    let events = self.decoder.push(&chunk).map_err(|failure| {
                        StartFailure(format!("the stream's first event is unreadable: {failure:?}"))
                    })?;
                    self.primed_events += events.len() as u64;
                    for event in events {
                        self.translator.event(event, &mut self.out);
                    }
                    if !self.out.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                }
                Some(Err(err)) => {
                    return Poll::Ready(Err(StartFailure(format!(
                        "the stream broke off before its first event: {err}"
                    ))));
                }
                None => {
                    return Poll::Ready(Err(StartFailure("the stream ended before its first event".into())));
                }
            }
        }
    }

    fn poll_event(&mut self, cx: &mut Context<'_>, mut ledger: Option<&mut Ledger>) -> Poll<Option<Bytes>> {
        if self.primed_events > 0 {
            if let Some(ledger) = ledger.as_deref_mut() {
                ledger.relayed(self.primed_events);
                ledger.set_usage(self.translator.usage());
            }
            self.primed_events = 0;
            if let Some(frame) = join(&mut self.out) {
                return Poll::Ready(Some(frame));
            }
        }
        if !self.done
            && let Some(end_by) = self.end_by.as_mut()
            && end_by.as_mut().poll(cx).is_ready()
        {
            tracing::warn!("stream cut at the route's total time limit");
            self.end_by = None;
            self.fail(StreamFailure::TimeLimit, ledger.as_deref_mut());
        }
        loop {
            if let Some(closing) = self.closing.as_mut() {
                ready!(closing.as_mut().poll(cx));
                self.closing = None;
            }
            if self.done {
                if let Some(hook) = self.closing_hook.take() {
                    self.closing = Some(hook());
                    continue;
                }
                // The last events, then the end.
                return Poll::Ready(join(&mut self.out));
            }
            let frame = match self.upstream.poll_chunk(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    ready!(self.idle.as_mut().poll(cx));
                    tracing::warn!(idle_ms = self.idle_timeout.as_millis() as u64, "upstream stream stalled");
                    self.fail(StreamFailure::Stalled, ledger.as_deref_mut());
                    continue;
                }
            };
            self.idle.as_mut().reset(tokio::time::Instant::now() + self.idle_timeout);
            match frame {
                Some(Ok(None)) => continue,
                Some(Ok(Some(chunk))) => match self.decoder.push(&chunk) {
                    Ok(events) => {
                        if let Some(ledger) = ledger.as_deref_mut() {
                            ledger.relayed(events.len() as u64);
                        }
                        for event in events {
                            self.translator.event(event, &mut self.out);
                        }
                    }
                    Err(failure) => self.fail(failure, ledger.as_deref_mut()),
                },
                Some(Err(err)) => {
                    // The status line is long gone; the client is told in-band, in its dialect.
                    tracing::warn!(error = %err, "upstream stream broke off");
                    self.fail(StreamFailure::BrokenOff, ledger.as_deref_mut());
                }
                None => {
                    self.done = true;
                    // An unterminated last event is still an event.
                    if let Some(rest) = self.decoder.finish() {
                        self.translator.event(rest, &mut self.out);
                    }
                    self.translator.end(&mut self.out);
                }
            }
            // A running total: set, never added (the translator keeps it).
            if let Some(ledger) = ledger.as_deref_mut() {
                ledger.set_usage(self.translator.usage());
            }
            if !self.done
                && let Some(frame) = join(&mut self.out)
            {
                return Poll::Ready(Some(frame));
            }
        }
    }

    /// Ends the stream with an error event in the client's dialect (its status went out with the
    /// first event), and makes it the request's error for metrics, the access log and the trace.
    fn fail(&mut self, failure: StreamFailure, ledger: Option<&mut Ledger>) {
        if let Some(ledger) = ledger {
            ledger.stream_failed(failure);
        }
        self.done = true;
        self.translator.fail(failure, &mut self.out);
    }
}
