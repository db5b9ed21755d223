//! Response bodies: `MockBody` (a single pre-built buffer, an SSE chat stream, or pre-built
//! frames that may end in a dropped connection) and the cancel-safe `SseStream` state machine
//! that emits one `chat.completion.chunk` per body frame.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::Shared;
use crate::json::{push_str, push_u64};
use crate::stats::bump;

/// The response body type of every route.
#[derive(Debug)]
pub(crate) enum MockBody {
    /// A complete body, sent as one frame (hyper sets `content-length`).
    Full(Option<Bytes>),
    /// A chat completion event stream.
    Sse(Box<SseStream>),
    /// Pre-built frames, one per poll (the less common answers: tool calls, broken answers,
    /// Responses event streams); with `cut`, the body then fails, so hyper drops the connection
    /// without ending the body. `hold` (a slow-first-token fault) delays the first frame.
    Frames {
        frames: VecDeque<Bytes>,
        cut: bool,
        pause: Option<Pin<Box<Sleep>>>,
        hold: Option<Pin<Box<Sleep>>>,
    },
}

impl MockBody {
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Full(Some(bytes.into()))
    }

    /// Pre-built frames; with `cut`, the connection then drops.
    pub(crate) fn frames(frames: VecDeque<Bytes>, cut: bool) -> Self {
        Self::Frames { frames, cut, pause: None, hold: None }
    }

    /// Pre-built frames whose first one waits `hold` (counted from now).
    pub(crate) fn held_frames(frames: VecDeque<Bytes>, cut: bool, hold: Option<Duration>) -> Self {
        let hold = hold.map(|d| Box::pin(tokio::time::sleep(d)));
        Self::Frames { frames, cut, pause: None, hold }
    }
}

/// How long a cut body waits after its last frame before dropping the connection.
const CUT_PAUSE: Duration = Duration::from_millis(20);

/// The body error that drops the connection mid-answer (`*-disconnect`, a stream-cut fault).
#[derive(Debug)]
pub(crate) struct Cut;

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("mock upstream: connection dropped mid-answer")
    }
}

impl std::error::Error for Cut {}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Self::Sse(s) => s.poll_next(cx).map(|o| o.map(|r| r.map(Frame::data))),
            Self::Frames { frames, cut, pause, hold } => {
                if let Some(wait) = hold {
                    ready!(wait.as_mut().poll(cx));
                    *hold = None;
                }
                if let Some(frame) = frames.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                if !*cut {
                    return Poll::Ready(None);
                }
                // Pending first, so hyper flushes what was sent before the connection drops
                // (failing at once would lose the buffered head and frames with it).
                let pause = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(CUT_PAUSE)));
                ready!(pause.as_mut().poll(cx));
                Poll::Ready(Some(Err(Cut)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Full(b) => b.is_none(),
            Self::Sse(s) => s.phase == Phase::Finished,
            Self::Frames { frames, cut, .. } => frames.is_empty() && !cut,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Self::Sse(_) | Self::Frames { .. } => SizeHint::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Role,
    Content,
    Finish,
    Usage,
    Done,
    Finished,
    /// A stream-cut fault: waiting for hyper to flush, then the body fails.
    Cutting,
    /// Cut (neither completed nor aborted by the client).
    Cut,
}

const ROLE_CHOICE: &[u8] =
    br#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]"#;
const CONTENT_OPEN: &[u8] = br#"{"index":0,"delta":{"content":"#;
const CONTENT_CLOSE: &[u8] = br#"},"logprobs":null,"finish_reason":null}]"#;
const FINISH_CHOICE: &[u8] = br#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#;
const DONE: &[u8] = b"data: [DONE]\n\n";
const MIDSTREAM_ERROR: &[u8] = b"data: {\"error\":{\"message\":\"upstream failed mid-stream\",\
\"type\":\"server_error\",\"param\":null,\"code\":\"server_error\"}}\n\n";

/// What a stream should look like; built by the chat handler.
#[derive(Debug)]
pub(crate) struct StreamPlan {
    pub(crate) id: u64,
    pub(crate) created: u64,
    /// The request's model, already JSON-escaped (with quotes).
    pub(crate) model_json: Vec<u8>,
    pub(crate) reply: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    /// Reported as `prompt_tokens_details.cached_tokens` (`*-cache`).
    pub(crate) cached_tokens: Option<u64>,
    pub(crate) include_usage: bool,
    /// Every chunk carries the running usage total, as vLLM's `continuous_usage_stats` does.
    pub(crate) continuous_usage: bool,
    /// Sleep before each content chunk.
    pub(crate) delay: Option<Duration>,
    /// Send the role chunk and this many content chunks, then an error event and stop.
    pub(crate) fail_after: Option<u32>,
    /// A stream-cut fault: the role chunk and this many content chunks, then the connection
    /// drops.
    pub(crate) cut_after: Option<u32>,
    /// A slow-first-token fault: the role chunk (so every body byte) waits this long.
    pub(crate) first_delay: Option<Duration>,
}

/// `{"prompt_tokens":..,"completion_tokens":..,"total_tokens":..}`, with OpenAI's
/// `prompt_tokens_details` and `completion_tokens_details` when `cached` is set.
pub(crate) fn push_usage(buf: &mut Vec<u8>, prompt: u64, completion: u64, cached: Option<u64>) {
    buf.extend_from_slice(b"{\"prompt_tokens\":");
    push_u64(buf, prompt);
    buf.extend_from_slice(b",\"completion_tokens\":");
    push_u64(buf, completion);
    buf.extend_from_slice(b",\"total_tokens\":");
    push_u64(buf, prompt + completion);
    if let Some(cached) = cached {
        buf.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
        push_u64(buf, cached);
        buf.extend_from_slice(
            b",\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\
\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}",
        );
    }
    buf.extend_from_slice(b"}");
}

/// SSE chat stream: never buffers more than one event; dropping it mid-way counts an abort.
#[derive(Debug)]
pub(crate) struct SseStream {
    shared: Arc<Shared>,
    /// `data: {"id":..,"object":"chat.completion.chunk",..,"choices":[`
    head: Vec<u8>,
    reply: String,
    pos: usize,
    sent_content: u32,
    prompt_tokens: u64,
    completion_tokens: u64,
    cached_tokens: Option<u64>,
    include_usage: bool,
    continuous_usage: bool,
    delay: Option<Duration>,
    fail_after: Option<u32>,
    cut_after: Option<u32>,
    first_delay: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    armed: bool,
    phase: Phase,
}

impl SseStream {
    pub(crate) fn new(shared: Arc<Shared>, plan: StreamPlan) -> Self {
        bump(&shared.stats.streams_started);
        let mut head = Vec::with_capacity(128 + plan.model_json.len());
        head.extend_from_slice(b"data: {\"id\":\"chatcmpl-mock-");
        push_u64(&mut head, plan.id);
        head.extend_from_slice(b"\",\"object\":\"chat.completion.chunk\",\"created\":");
        push_u64(&mut head, plan.created);
        head.extend_from_slice(b",\"model\":");
        head.extend_from_slice(&plan.model_json);
        head.extend_from_slice(b",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
        Self {
            shared,
            head,
            reply: plan.reply,
            pos: 0,
            sent_content: 0,
            prompt_tokens: plan.prompt_tokens,
            completion_tokens: plan.completion_tokens,
            cached_tokens: plan.cached_tokens,
            include_usage: plan.include_usage,
            continuous_usage: plan.continuous_usage,
            delay: plan.delay,
            fail_after: plan.fail_after,
            cut_after: plan.cut_after,
            first_delay: plan.first_delay,
            sleep: None,
            armed: false,
            phase: Phase::Role,
        }
    }

    /// One event: head + `choice` + usage tail.
    fn event(&self, choice: &[u8], word: Option<&str>) -> Bytes {
        let extra = word.map_or(0, |w| w.len() + CONTENT_OPEN.len() + CONTENT_CLOSE.len() + 8);
        let mut buf = Vec::with_capacity(self.head.len() + choice.len() + extra + 24);
        buf.extend_from_slice(&self.head);
        if let Some(w) = word {
            buf.extend_from_slice(CONTENT_OPEN);
            push_str(&mut buf, w);
            buf.extend_from_slice(CONTENT_CLOSE);
        } else {
            buf.extend_from_slice(choice);
        }
        if self.continuous_usage {
            buf.extend_from_slice(b",\"usage\":");
            self.push_usage(&mut buf, u64::from(self.sent_content));
            buf.extend_from_slice(b"}\n\n");
        } else if self.include_usage {
            buf.extend_from_slice(b",\"usage\":null}\n\n");
        } else {
            buf.extend_from_slice(b"}\n\n");
        }
        Bytes::from(buf)
    }

    fn usage_event(&self) -> Bytes {
        let mut buf = Vec::with_capacity(self.head.len() + 96);
        buf.extend_from_slice(&self.head);
        buf.extend_from_slice(b"],\"usage\":");
        self.push_usage(&mut buf, self.completion_tokens);
        buf.extend_from_slice(b"}\n\n");
        Bytes::from(buf)
    }

    fn push_usage(&self, buf: &mut Vec<u8>, completion_tokens: u64) {
        push_usage(buf, self.prompt_tokens, completion_tokens, self.cached_tokens);
    }

    /// The next content piece: a word plus the whitespace after it (leading whitespace of
    /// the reply goes with the first word), so the pieces concatenate back to the reply.
    fn next_word(&mut self) -> Option<(usize, usize)> {
        let rest = &self.reply[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let lead = rest.len() - rest.trim_start().len();
        let word_end = rest[lead..].find(char::is_whitespace).map_or(rest.len(), |i| lead + i);
        let tail = &rest[word_end..];
        let end = word_end + (tail.len() - tail.trim_start().len());
        let start = self.pos;
        self.pos += end;
        Some((start, self.pos))
    }

    /// Waits out `delay`, if any (re-armed after each `Ready`). `Ready` means "go".
    fn poll_wait(&mut self, cx: &mut Context<'_>, delay: Option<Duration>) -> Poll<()> {
        let Some(delay) = delay else {
            return Poll::Ready(());
        };
        if !self.armed {
            let deadline = Instant::now() + delay;
            match &mut self.sleep {
                Some(s) => s.as_mut().reset(deadline),
                None => self.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        if let Some(s) = &mut self.sleep {
            ready!(s.as_mut().poll(cx));
        }
        self.armed = false;
        Poll::Ready(())
    }

    fn finish(&mut self, last: Bytes) -> Poll<Option<Result<Bytes, Cut>>> {
        self.phase = Phase::Finished;
        bump(&self.shared.stats.streams_completed);
        Poll::Ready(Some(Ok(last)))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Cut>>> {
        loop {
            match self.phase {
                Phase::Role => {
                    ready!(self.poll_wait(cx, self.first_delay));
                    self.phase = Phase::Content;
                    return Poll::Ready(Some(Ok(self.event(ROLE_CHOICE, None))));
                }
                Phase::Content => {
                    if self.cut_after.is_some_and(|n| self.sent_content >= n) {
                        self.phase = Phase::Cutting;
                        continue;
                    }
                    if self.fail_after.is_some_and(|n| self.sent_content >= n) {
                        return self.finish(Bytes::from_static(MIDSTREAM_ERROR));
                    }
                    if self.pos >= self.reply.len() {
                        self.phase = Phase::Finish;
                        continue;
                    }
                    ready!(self.poll_wait(cx, self.delay));
                    let Some((start, end)) = self.next_word() else {
                        self.phase = Phase::Finish;
                        continue;
                    };
                    self.sent_content += 1;
                    return Poll::Ready(Some(Ok(self.event(b"", Some(&self.reply[start..end])))));
                }
                Phase::Finish => {
                    // A cut stream never ends properly, even when the reply is shorter.
                    if self.cut_after.is_some() {
                        self.phase = Phase::Cutting;
                        continue;
                    }
                    if self.fail_after.is_some() {
                        return self.finish(Bytes::from_static(MIDSTREAM_ERROR));
                    }
                    self.phase = if self.include_usage { Phase::Usage } else { Phase::Done };
                    return Poll::Ready(Some(Ok(self.event(FINISH_CHOICE, None))));
                }
                Phase::Usage => {
                    self.phase = Phase::Done;
                    return Poll::Ready(Some(Ok(self.usage_event())));
                }
                Phase::Done => return self.finish(Bytes::from_static(DONE)),
                Phase::Cutting => {
                    // Pending first, so hyper flushes the chunks sent before the connection drops.
                    ready!(self.poll_wait(cx, Some(CUT_PAUSE)));
                    self.phase = Phase::Cut;
                    return Poll::Ready(Some(Err(Cut)));
                }
                Phase::Finished | Phase::Cut => return Poll::Ready(None),
            }
        }
    }
}

impl Drop for SseStream {
    fn drop(&mut self) {
        if !matches!(self.phase, Phase::Finished | Phase::Cut) {
            bump(&self.shared.stats.streams_aborted);
        }
    }
}
