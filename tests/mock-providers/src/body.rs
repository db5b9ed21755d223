//! Response bodies: one complete buffer, or a list of pre-built frames (SSE events) sent one per
//! body frame with optional pacing, ending normally or by cutting the connection.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// How a framed body ends after its last frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The body finishes normally (the terminating chunk is written).
    Complete,
    /// The body fails, which makes hyper abort the connection: the client sees the frames sent
    /// so far, then the connection closes without the end of the chunked body.
    Cut,
}

/// The error a [`End::Cut`] body returns, so that hyper closes the connection.
#[derive(Debug)]
pub(crate) struct Disconnect;

impl fmt::Display for Disconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock provider: deliberate mid-response disconnect")
    }
}

impl std::error::Error for Disconnect {}

/// The body type of every response.
#[derive(Debug)]
pub(crate) enum MockBody {
    /// A complete body in one frame (hyper sets `content-length`).
    Full(Option<Bytes>),
    /// Frames sent one at a time (chunked transfer encoding).
    Frames(Box<Frames>),
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    /// `frames` one per body frame, `pace` apart (zero: no timer at all), then `end`.
    pub(crate) fn frames(frames: Vec<Bytes>, pace: Duration, end: End) -> Self {
        Self::Frames(Box::new(Frames {
            queue: frames.into(),
            pace,
            end,
            sleep: None,
            sent_any: false,
            cut_armed: false,
            done: false,
        }))
    }
}

#[derive(Debug)]
pub(crate) struct Frames {
    queue: VecDeque<Bytes>,
    pace: Duration,
    end: End,
    sleep: Option<Pin<Box<Sleep>>>,
    sent_any: bool,
    /// A cut yields once before failing, so hyper flushes the frames already written.
    cut_armed: bool,
    done: bool,
}

impl Frames {
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Disconnect>>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sent_any && !self.pace.is_zero() {
            let pace = self.pace;
            let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(pace)));
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        if let Some(frame) = self.queue.pop_front() {
            self.sent_any = true;
            return Poll::Ready(Some(Ok(frame)));
        }
        match self.end {
            End::Complete => {
                self.done = true;
                Poll::Ready(None)
            }
            End::Cut if !self.cut_armed => {
                // hyper writes frames into its buffer and flushes when the body is pending;
                // failing right away could drop what was buffered, so yield once first.
                self.cut_armed = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            End::Cut => {
                self.done = true;
                Poll::Ready(Some(Err(Disconnect)))
            }
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Disconnect;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Disconnect>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Frames(f) => f.poll_next(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Frames(f) => f.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Frames(_) => SizeHint::default(),
        }
    }
}
