//! The spans: a request's SERVER span ([`RequestSpan`], held by its ledger) and a CLIENT span
//! per upstream attempt ([`Attempt`]), with the GenAI semantic conventions' attributes
//! (<https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/>).
//!
//! A span is its OTLP `Span` message being written ([`otlp`]): ids, kind and start time when it
//! starts, each attribute when the request learns it (nothing is copied to be kept for later;
//! what never changes, a backend's attributes or the operation's name, is copied in already
//! encoded), the rest when it ends; then the buffer goes to the export queue as it is. A trace
//! the sampler does not record has no buffer, and only its context travels.

use super::Telemetry;
use super::backend::BackendAttributes;
use super::export::Batcher;
use super::otlp::{self, Value, span as field};
use super::sampler::Sampler;
use super::scan::{self, Output, RequestParams, StopField};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::{Api, Inbound};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{IdGenerator as _, RandomIdGenerator};
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};
use switchboard_llm::Usage;

/// What every span shares: where finished ones go and which traces are recorded.
pub(super) struct Recorder {
    batcher: Batcher,
    sampler: Sampler,
    capture: bool,
}

impl Recorder {
    pub(super) fn new(batcher: Batcher, sampler: Sampler, capture: bool) -> Recorder {
        Recorder { batcher, sampler, capture }
    }
}

/// Room for a span's fields without growing: a request span with every attribute is ~600 bytes.
const REQUEST_SPAN_CAPACITY: usize = 768;
const ATTEMPT_SPAN_CAPACITY: usize = 384;

/// A request's SERVER span and what it learns before it ends (in the ledger's drop).
pub struct RequestSpan {
    recorder: Arc<Recorder>,
    /// The `Span` message so far; `None` when the trace is not sampled.
    buf: Option<Vec<u8>>,
    trace_id: [u8; 16],
    span_id: [u8; 8],
    /// W3C trace flags: sampled or not.
    flags: u8,
    /// The client's `tracestate`, passed on to every attempt.
    trace_state: Option<HeaderValue>,
    /// The span's name until the body says what the request is.
    method: &'static str,
    /// What the body says the request is (its name from then on).
    operation: Operation,
    /// Where the answer says why it stopped, in the client's dialect.
    stop_field: StopField,
    attempts: i64,
    response_model: bool,
    finish_reasons: Vec<&'static str>,
    /// The answer's content, gathered only when content capture is on.
    output: Option<Box<Output>>,
    error_type: Option<Box<str>>,
}

/// Reads W3C trace context from the client's request headers.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

fn now_unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Telemetry {
    /// Starts a request's span: a child of the client's `traceparent` when it sent one.
    pub fn request(&self, method: &Method, headers: &HeaderMap) -> Box<RequestSpan> {
        let parent = headers
            .contains_key(&TRACEPARENT)
            .then(|| TraceContextPropagator::new().extract(&Headers(headers)).span().span_context().clone())
            .filter(|parent| parent.is_valid());
        let ids = RandomIdGenerator::default();
        let trace_id = parent.as_ref().map_or_else(|| ids.new_trace_id(), |p| p.trace_id()).to_bytes();
        let span_id = ids.new_span_id().to_bytes();
        let recorder = &self.recorder;
        let sampled = recorder.sampler.sampled(parent.as_ref().map(|p| p.is_sampled()), &trace_id);
        let trace_state = parent
            .as_ref()
            .map(|p| p.trace_state().header())
            .filter(|state| !state.is_empty())
            .and_then(|state| HeaderValue::from_str(&state).ok());
        let buf = sampled.then(|| {
            let mut buf = recorder.batcher.buffer(REQUEST_SPAN_CAPACITY);
            otlp::put_bytes(&mut buf, field::TRACE_ID, &trace_id);
            otlp::put_bytes(&mut buf, field::SPAN_ID, &span_id);
            let mut flags = u32::from(sampled) | field::FLAGS_HAS_IS_REMOTE;
            if let Some(parent) = &parent {
                otlp::put_bytes(&mut buf, field::PARENT_SPAN_ID, &parent.span_id().to_bytes());
                flags |= field::FLAGS_IS_REMOTE;
            }
            if let Some(state) = &trace_state {
                otlp::put_bytes(&mut buf, field::TRACE_STATE, state.as_bytes());
            }
            otlp::put_fixed32(&mut buf, field::FLAGS, flags);
            otlp::put_varint(&mut buf, field::KIND, field::KIND_SERVER);
            otlp::put_fixed64(&mut buf, field::START_TIME, now_unix_nanos());
            buf
        });
        let method = match *method {
            Method::GET => "GET",
            Method::POST => "POST",
            Method::DELETE => "DELETE",
            _ => "HTTP",
        };
        Box::new(RequestSpan {
            recorder: recorder.clone(),
            buf,
            trace_id,
            span_id,
            flags: u8::from(sampled),
            trace_state,
            method,
            operation: Operation::Unnamed,
            stop_field: StopField::None,
            attempts: 0,
            response_model: false,
            finish_reasons: Vec::new(),
            output: None,
            error_type: None,
        })
    }
}

/// What the ledger knows at the end.
pub struct Settled<'a> {
    pub status: u16,
    /// `None` when no backend answered.
    pub usage: Option<&'a Usage>,
    pub route: Option<&'a str>,
    pub key: Option<&'a str>,
}

pub(super) fn attribute(buf: &mut Vec<u8>, key: &str, value: Value<'_>) {
    otlp::put_attribute(buf, field::ATTRIBUTES, key, value);
}

/// An attribute whose key and value never change, encoded once to be copied into every span.
fn encoded(key: &str, value: &str) -> Box<[u8]> {
    let mut buf = Vec::new();
    attribute(&mut buf, key, Value::Str(value));
    buf.into()
}

/// What the request does, in the conventions' `gen_ai.operation.name` words; `Unnamed` until
/// its body is parsed.
#[derive(Debug, Clone, Copy)]
enum Operation {
    Unnamed,
    Chat,
    Embeddings,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::Unnamed => "",
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
        }
    }

    /// `gen_ai.operation.name`, encoded once per operation.
    fn attribute(self) -> &'static [u8] {
        static CHAT: LazyLock<Box<[u8]>> = LazyLock::new(|| encoded("gen_ai.operation.name", "chat"));
        static EMBEDDINGS: LazyLock<Box<[u8]>> =
            LazyLock::new(|| encoded("gen_ai.operation.name", "embeddings"));
        match self {
            Operation::Unnamed => &[],
            Operation::Chat => &CHAT,
            Operation::Embeddings => &EMBEDDINGS,
        }
    }
}

impl RequestSpan {
    /// The parsed request: the span's name and the request attributes.
    pub fn request(&mut self, inbound: &Inbound<'_>, body: &[u8]) {
        (self.operation, self.stop_field) = match inbound.api() {
            Api::Embeddings => (Operation::Embeddings, StopField::None),
            Api::ChatCompletions => (Operation::Chat, StopField::FinishReason),
            Api::Messages => (Operation::Chat, StopField::StopReason),
            Api::Responses => (Operation::Chat, StopField::None),
        };
        let Some(buf) = &mut self.buf else { return };
        let model = inbound.model();
        otlp::put_name(buf, &[self.operation.name(), " ", model]);
        buf.extend_from_slice(self.operation.attribute());
        attribute(buf, "gen_ai.request.model", Value::Str(model));
        let params = match inbound {
            Inbound::OpenAi { request, .. } => {
                RequestParams::from_members(|key| request.body.get(key).map(|raw| raw.get()))
            }
            Inbound::Messages(_) | Inbound::Responses(_) => RequestParams::read(body),
        };
        if let Some(max_tokens) = params.max_tokens() {
            attribute(buf, "gen_ai.request.max_tokens", Value::Int(max_tokens as i64));
        }
        if let Some(temperature) = params.temperature {
            attribute(buf, "gen_ai.request.temperature", Value::Double(temperature));
        }
        if let Some(top_p) = params.top_p {
            attribute(buf, "gen_ai.request.top_p", Value::Double(top_p));
        }
        if self.recorder.capture {
            if let Some(messages) = scan::input_messages(body) {
                attribute(buf, "gen_ai.input.messages", Value::Str(&messages));
            }
            self.output = Some(Box::default());
        }
    }

    /// The request failed with an error the gateway answered (its OpenAI code or type).
    pub fn failed(&mut self, error_type: &str) {
        self.error_type = Some(error_type.into());
    }

    /// A piece of the answer as the client receives it (the whole body, or a stream frame).
    pub fn observe(&mut self, frame: &[u8]) {
        let Some(buf) = &mut self.buf else { return };
        if !self.response_model
            && let Some(model) = scan::response_model(frame)
        {
            self.response_model = true;
            attribute(buf, "gen_ai.response.model", Value::Str(model));
        }
        scan::finish_reasons(frame, self.stop_field, &mut self.finish_reasons);
        if let Some(output) = &mut self.output {
            output.read(frame);
        }
    }

    /// Starts the CLIENT span of one attempt at a backend (its `model`, and the `attributes`
    /// its config gave it).
    pub fn attempt(&mut self, attributes: &BackendAttributes, model: &str) -> Attempt {
        self.attempts += 1;
        let span_id = RandomIdGenerator::default().new_span_id();
        let buf = self.buf.is_some().then(|| {
            let mut buf = self.recorder.batcher.buffer(ATTEMPT_SPAN_CAPACITY);
            otlp::put_bytes(&mut buf, field::TRACE_ID, &self.trace_id);
            otlp::put_bytes(&mut buf, field::SPAN_ID, &span_id.to_bytes());
            otlp::put_bytes(&mut buf, field::PARENT_SPAN_ID, &self.span_id);
            otlp::put_fixed32(&mut buf, field::FLAGS, u32::from(self.flags) | field::FLAGS_HAS_IS_REMOTE);
            otlp::put_varint(&mut buf, field::KIND, field::KIND_CLIENT);
            otlp::put_fixed64(&mut buf, field::START_TIME, now_unix_nanos());
            otlp::put_name(&mut buf, &[self.operation.name(), " ", model]);
            buf.extend_from_slice(self.operation.attribute());
            buf.extend_from_slice(attributes.attempt());
            buf
        });
        let headers = TraceHeaders {
            traceparent: traceparent(&self.trace_id, &span_id.to_bytes(), self.flags),
            tracestate: self.trace_state.clone(),
        };
        Attempt { recorder: self.recorder.clone(), buf, headers }
    }

    /// Ends `attempt` (at the backend with `attributes`) with its outcome; a reply makes its
    /// provider, server and backend name the request's.
    pub fn attempted(
        &mut self,
        mut attempt: Attempt,
        attributes: &BackendAttributes,
        outcome: Result<(), &UpstreamError>,
    ) {
        let (Some(mut buf), Some(request)) = (attempt.buf.take(), &mut self.buf) else { return };
        match outcome {
            Ok(_) => {
                static OK: LazyLock<Box<[u8]>> = LazyLock::new(|| encoded("switchboard.outcome", "ok"));
                buf.extend_from_slice(&OK);
                request.extend_from_slice(attributes.answered());
            }
            Err(err) => {
                let outcome = if err.is_retryable() { "retryable_error" } else { "error" };
                attribute(&mut buf, "switchboard.outcome", Value::Str(outcome));
                let error_type = match &err.kind {
                    UpstreamErrorKind::Status { status, .. } => {
                        attribute(
                            &mut buf,
                            "http.response.status_code",
                            Value::Int(i64::from(status.as_u16())),
                        );
                        status.as_str()
                    }
                    UpstreamErrorKind::Connect(_) => "connect_error",
                    UpstreamErrorKind::Timeout(_) => "timeout",
                    UpstreamErrorKind::InvalidResponse(_) => "invalid_response",
                    UpstreamErrorKind::Token(_) => "token_error",
                };
                attribute(&mut buf, "error.type", Value::Str(error_type));
                otlp::put_error_status(&mut buf, &err.to_string());
            }
        }
        otlp::put_fixed64(&mut buf, field::END_TIME, now_unix_nanos());
        self.recorder.batcher.push(buf);
    }

    /// Ends the span with what the ledger settled.
    pub fn end(mut self, settled: &Settled<'_>) {
        let Some(mut buf) = self.buf.take() else { return };
        let buf = &mut buf;
        if let Operation::Unnamed = self.operation {
            otlp::put_name(buf, &[self.method]);
        }
        attribute(buf, "http.response.status_code", Value::Int(i64::from(settled.status)));
        if let Some(usage) = settled.usage {
            attribute(buf, "gen_ai.usage.input_tokens", Value::Int(usage.input as i64));
            attribute(buf, "gen_ai.usage.output_tokens", Value::Int(usage.output as i64));
        }
        if !self.finish_reasons.is_empty() {
            attribute(buf, "gen_ai.response.finish_reasons", Value::Strs(&self.finish_reasons));
        }
        if let Some(output) = &self.output
            && settled.usage.is_some()
        {
            let messages = output.messages(self.finish_reasons.first().copied());
            attribute(buf, "gen_ai.output.messages", Value::Str(&messages));
        }
        // The answering backend's name came with its provider and server (`attempted`).
        for (key, value) in [("switchboard.route", settled.route), ("switchboard.key_id", settled.key)] {
            if let Some(value) = value {
                attribute(buf, key, Value::Str(value));
            }
        }
        if self.attempts > 0 {
            attribute(buf, "switchboard.attempts", Value::Int(self.attempts));
        }
        let status_text;
        let error_type = match (&self.error_type, settled.status) {
            (Some(error), _) => Some(&**error),
            // The client went away before the last byte.
            (None, 499) => Some("client_closed"),
            (None, status) if status >= 500 => {
                status_text = status.to_string();
                Some(status_text.as_str())
            }
            _ => None,
        };
        if let Some(error_type) = error_type {
            otlp::put_error_status(buf, error_type);
            attribute(buf, "error.type", Value::Str(error_type));
        }
        otlp::put_fixed64(buf, field::END_TIME, now_unix_nanos());
        self.recorder.batcher.push(std::mem::take(buf));
    }
}

/// `00-{trace id}-{span id}-{flags}` in lowercase hex (W3C Trace Context), written without
/// the formatting machinery: this runs for every attempt.
fn traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], flags: u8) -> [u8; 55] {
    use crate::hex::write_lower as hex;
    let mut out = [b'-'; 55];
    out[..2].copy_from_slice(b"00");
    hex(&mut out[3..35], trace_id);
    hex(&mut out[36..52], span_id);
    hex(&mut out[53..], &[flags]);
    out
}

/// One attempt's CLIENT span, and the context its upstream request carries.
pub struct Attempt {
    recorder: Arc<Recorder>,
    /// The `Span` message so far; `None` when the trace is not sampled.
    buf: Option<Vec<u8>>,
    headers: TraceHeaders,
}

impl Attempt {
    /// The trace context for the attempt's requests to the provider (`upstream::Call::trace`).
    pub fn trace_headers(&self) -> &TraceHeaders {
        &self.headers
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // Dropped unended: the request's deadline passed during the attempt.
        if let Some(mut buf) = self.buf.take() {
            attribute(&mut buf, "switchboard.outcome", Value::Str("deadline"));
            attribute(&mut buf, "error.type", Value::Str("timeout"));
            otlp::put_error_status(&mut buf, "the request's deadline passed");
            otlp::put_fixed64(&mut buf, field::END_TIME, now_unix_nanos());
            self.recorder.batcher.push(buf);
        }
    }
}

/// The W3C Trace Context an attempt's upstream requests carry: the attempt's span as their
/// parent. It goes to the executor with the call, which adds it after signing (a mesh proxy
/// that rewrites `traceparent` on the way out must not break a request's signature). Not
/// through a task-local: wrapping the attempt's future in one moved that whole future, ~10k
/// instructions of `memcpy` per request traced or not, and swapped the context in and out on
/// every poll (bench/results.md "Tracing on vs off").
#[derive(Debug)]
pub struct TraceHeaders {
    /// The `traceparent` header's value.
    traceparent: [u8; 55],
    tracestate: Option<HeaderValue>,
}

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

impl TraceHeaders {
    /// Adds `traceparent` (and `tracestate`) to a request to the provider.
    pub fn stamp(&self, headers: &mut HeaderMap) {
        // Hex digits and dashes are always a valid header value.
        if let Ok(value) = HeaderValue::from_bytes(&self.traceparent) {
            headers.insert(TRACEPARENT.clone(), value);
        }
        if let Some(value) = &self.tracestate {
            headers.insert(TRACESTATE.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn traceparent_is_the_w3c_header() {
        let trace_id =
            [0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36];
        let span_id = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];
        assert_eq!(
            &super::traceparent(&trace_id, &span_id, 1)[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert!(super::traceparent(&[0xff; 16], &[0; 8], 0).ends_with(b"-0000000000000000-00"));
    }
}
