//! Fault injection at run time: a [`Fault`] set on a running mock (with
//! [`MockUpstream::set_fault`](crate::MockUpstream::set_fault), or `POST /_mock/fault` on the
//! binary) applies to every chat completions, Responses and embeddings request, whatever its
//! model, until changed. Resilience tests use it to make one backend fail and recover while the
//! gateway keeps sending the same model.
//!
//! A plan injects its fault into one request in `one_in`: the 1st, the `one_in + 1`-th, ... since
//! the plan was set (a counter, not a random draw, so a test knows exactly how many requests were
//! hit: `faults_injected` in the stats). With concurrent requests, which ones are hit depends on
//! arrival order; how many does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use hyper::header::{HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Deserialize;

use crate::behavior::{bad_request, status_error};
use crate::body::MockBody;
use crate::stats::{Stats, bump};

/// A fault the mock injects into requests (see the module docs for which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and an OpenAI-style error body (as an `error-<status>` model
    /// does; 529 is Anthropic's "overloaded"), with `Retry-After: <seconds>` when
    /// `retry_after` is set and without one otherwise (even for 429).
    Status {
        /// The HTTP status; one outside 400..=599 is answered as 500.
        status: u16,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Wait this long before the response head, then answer normally.
    Delay(Duration),
    /// Drop the TCP connection with a reset (`SO_LINGER` 0, so the peer sees RST), without any
    /// response bytes.
    Reset,
    /// Streams: the response head, the role chunk (chat) or opening events (Responses), and this
    /// many content chunks (`delta` events), then the connection drops without the end of the
    /// body (no `[DONE]`, no `response.completed`). Other requests: the connection closes
    /// before the head.
    StreamCut {
        /// Content chunks sent before the cut.
        after_chunks: u32,
    },
    /// Streams: the head at once, then no body bytes until this delay has passed (so the first
    /// content chunk comes after it). Other requests: as [`Fault::Delay`].
    SlowFirstToken(Duration),
}

/// The plan in force: a fault and how often it hits.
#[derive(Debug)]
struct Plan {
    fault: Fault,
    one_in: u64,
    /// Requests seen since the plan was set.
    seen: AtomicU64,
}

/// The current plan, swapped without locks; read once per request.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    plan: ArcSwapOption<Plan>,
}

impl Faults {
    /// Sets (or clears) the plan; its request counter starts at zero. `one_in` 0 counts as 1.
    pub(crate) fn set(&self, fault: Option<Fault>, one_in: u32) {
        let plan = fault
            .map(|fault| Arc::new(Plan { fault, one_in: u64::from(one_in.max(1)), seen: AtomicU64::new(0) }));
        self.plan.store(plan);
    }

    /// The fault this request gets, if any (counted in `faults_injected`).
    pub(crate) fn pick(&self, stats: &Stats) -> Option<Fault> {
        let guard = self.plan.load();
        let plan = guard.as_ref()?;
        let n = plan.seen.fetch_add(1, Ordering::Relaxed);
        (n % plan.one_in == 0).then(|| {
            bump(&stats.faults_injected);
            plan.fault
        })
    }
}

/// How a stream is bent by a fault; the default leaves it alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct StreamShape {
    /// Drop the connection after this many content chunks.
    pub(crate) cut_after: Option<u32>,
    /// Hold the body's first bytes this long.
    pub(crate) first_delay: Option<Duration>,
}

/// What the server does with a request that got a fault.
#[derive(Debug)]
pub(crate) enum Injection {
    /// Answer with this instead of the route's answer.
    Respond(Box<Response<MockBody>>),
    /// Close the connection without a response; `reset`: with RST rather than FIN.
    Drop { reset: bool },
    /// Wait, then answer normally.
    Wait(Duration),
    /// Answer normally with the stream bent so.
    Shape(StreamShape),
}

/// Just enough of a request body to tell a stream from a plain request.
#[derive(Deserialize)]
struct StreamFlag {
    #[serde(default)]
    stream: Option<bool>,
}

impl Fault {
    /// Whether handling this fault depends on the request being a stream.
    fn needs_stream_flag(self) -> bool {
        matches!(self, Fault::StreamCut { .. } | Fault::SlowFirstToken(_))
    }

    /// What to do with a request `body` (embeddings never stream: `may_stream` false).
    pub(crate) fn inject(self, may_stream: bool, body: &[u8]) -> Injection {
        // Parsing the body a second time only happens under a stream fault, off the normal path.
        let streaming = || {
            may_stream
                && self.needs_stream_flag()
                && serde_json::from_slice::<StreamFlag>(body).is_ok_and(|f| f.stream == Some(true))
        };
        match self {
            Fault::Status { status, retry_after } => {
                Injection::Respond(Box::new(status_response(status, retry_after)))
            }
            Fault::Delay(delay) => Injection::Wait(delay),
            Fault::Reset => Injection::Drop { reset: true },
            Fault::StreamCut { after_chunks } => {
                if streaming() {
                    Injection::Shape(StreamShape { cut_after: Some(after_chunks), first_delay: None })
                } else {
                    Injection::Drop { reset: false }
                }
            }
            Fault::SlowFirstToken(delay) => {
                if streaming() {
                    Injection::Shape(StreamShape { cut_after: None, first_delay: Some(delay) })
                } else {
                    Injection::Wait(delay)
                }
            }
        }
    }
}

fn status_response(status: u16, retry_after: Option<u64>) -> Response<MockBody> {
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = status_error(status);
    let headers = response.headers_mut();
    // `status_error` gives every 429 a Retry-After; a fault says exactly whether there is one.
    headers.remove(RETRY_AFTER);
    if let Some(seconds) = retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The body of `POST /_mock/fault`: `{"fault": "none" | "status" | "delay" | "reset" |
/// "stream_cut" | "slow_first_token", ..., "one_in": n}`.
#[derive(Deserialize)]
struct Control {
    #[serde(flatten)]
    fault: ControlFault,
    #[serde(default)]
    one_in: Option<u32>,
}

#[derive(Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
enum ControlFault {
    None,
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    Delay {
        ms: u64,
    },
    Reset,
    StreamCut {
        after_chunks: u32,
    },
    SlowFirstToken {
        ms: u64,
    },
}

/// `POST /_mock/fault`: sets the plan from `body` (204), or refuses it (400).
pub(crate) fn control(faults: &Faults, body: &[u8]) -> Response<MockBody> {
    let control: Control = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => return bad_request(&format!("bad fault: {e}")),
    };
    let fault = match control.fault {
        ControlFault::None => None,
        ControlFault::Status { status, retry_after } => {
            if !(400..=599).contains(&status) {
                return bad_request("'status' must be between 400 and 599");
            }
            Some(Fault::Status { status, retry_after })
        }
        ControlFault::Delay { ms } => Some(Fault::Delay(Duration::from_millis(ms))),
        ControlFault::Reset => Some(Fault::Reset),
        ControlFault::StreamCut { after_chunks } => Some(Fault::StreamCut { after_chunks }),
        ControlFault::SlowFirstToken { ms } => Some(Fault::SlowFirstToken(Duration::from_millis(ms))),
    };
    if control.one_in == Some(0) {
        return bad_request("'one_in' must be at least 1");
    }
    faults.set(fault, control.one_in.unwrap_or(1));
    let mut response = Response::new(MockBody::full(bytes::Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// The service error that makes hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mock upstream: connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// A per-connection flag: set, the connection's socket is closed with RST (see `server.rs`).
pub(crate) type ResetFlag = Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_in_n_hits_the_first_of_every_n() {
        let (faults, stats) = (Faults::default(), Stats::default());
        assert_eq!(faults.pick(&stats), None);
        faults.set(Some(Fault::Reset), 3);
        let hits: Vec<bool> = (0..7).map(|_| faults.pick(&stats).is_some()).collect();
        assert_eq!(hits, [true, false, false, true, false, false, true]);
        assert_eq!(stats.snapshot().faults_injected, 3);
        faults.set(Some(Fault::Delay(Duration::from_millis(1))), 2);
        assert_eq!(
            faults.pick(&stats),
            Some(Fault::Delay(Duration::from_millis(1))),
            "a new plan counts from 0"
        );
        faults.set(None, 1);
        assert_eq!(faults.pick(&stats), None);
        assert_eq!(stats.snapshot().faults_injected, 4);
    }

    #[test]
    fn stream_faults_depend_on_the_stream_flag() {
        let cut = Fault::StreamCut { after_chunks: 2 };
        let stream = br#"{"model":"m","stream":true}"#;
        assert!(matches!(cut.inject(true, stream), Injection::Shape(s) if s.cut_after == Some(2)));
        assert!(matches!(cut.inject(true, br#"{"model":"m"}"#), Injection::Drop { reset: false }));
        assert!(matches!(cut.inject(false, stream), Injection::Drop { reset: false }), "embeddings");
        let slow = Fault::SlowFirstToken(Duration::from_millis(5));
        assert!(matches!(slow.inject(true, b"not json"), Injection::Wait(_)));
    }

    #[test]
    fn status_outside_the_error_range_is_a_500() {
        assert_eq!(status_response(200, None).status(), 500);
        assert_eq!(status_response(529, None).status(), 529);
        let r = status_response(429, None);
        assert!(r.headers().get(RETRY_AFTER).is_none());
        assert_eq!(status_response(503, Some(2)).headers()[RETRY_AFTER], "2");
    }
}
