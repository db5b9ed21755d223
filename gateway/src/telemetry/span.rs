//! The spans: a request's SERVER span ([`RequestSpan`], held by its ledger) and a CLIENT span
//! per upstream attempt ([`Attempt`]), with the GenAI semantic conventions' attributes
//! (<https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/>).

use super::Telemetry;
use super::scan::{self, Output, RequestParams};
use crate::error::{UpstreamError, UpstreamErrorKind};
use crate::inbound::{Api, Inbound};
use crate::upstream::Upstream;
use http::{HeaderMap, HeaderValue, Uri};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, Span};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use switchboard_llm::Usage;

/// A request's SERVER span and what it learns before it ends (in the ledger's drop).
pub struct RequestSpan {
    span: Span,
    tracer: SdkTracer,
    capture: bool,
    operation: &'static str,
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

impl Telemetry {
    /// Starts a request's span: a child of the client's `traceparent` when it sent one.
    pub fn request(&self, method: &http::Method, headers: &HeaderMap) -> Box<RequestSpan> {
        let parent = if headers.contains_key("traceparent") {
            TraceContextPropagator::new().extract(&Headers(headers))
        } else {
            Context::new()
        };
        // Renamed `{operation} {model}` once the body says what it is.
        let span = self
            .tracer()
            .span_builder(method.as_str().to_owned())
            .with_kind(SpanKind::Server)
            .start_with_context(self.tracer(), &parent);
        Box::new(RequestSpan {
            span,
            tracer: self.tracer().clone(),
            capture: self.capture_content(),
            operation: "",
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
    pub backend: Option<&'a str>,
}

impl RequestSpan {
    /// The parsed request: the span's name and the request attributes.
    pub fn request(&mut self, inbound: &Inbound<'_>, body: &[u8]) {
        self.operation = match inbound.api() {
            Api::Embeddings => "embeddings",
            Api::ChatCompletions | Api::Messages | Api::Responses => "chat",
        };
        let model = inbound.model();
        self.span.update_name(format!("{} {model}", self.operation));
        self.span.set_attribute(KeyValue::new("gen_ai.operation.name", self.operation));
        self.span.set_attribute(KeyValue::new("gen_ai.request.model", model.to_owned()));
        let params = RequestParams::read(body);
        if let Some(max_tokens) = params.max_tokens() {
            self.span.set_attribute(KeyValue::new("gen_ai.request.max_tokens", max_tokens as i64));
        }
        if let Some(temperature) = params.temperature {
            self.span.set_attribute(KeyValue::new("gen_ai.request.temperature", temperature));
        }
        if let Some(top_p) = params.top_p {
            self.span.set_attribute(KeyValue::new("gen_ai.request.top_p", top_p));
        }
        if self.capture {
            if let Some(messages) = scan::input_messages(body) {
                self.span.set_attribute(KeyValue::new("gen_ai.input.messages", messages));
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
        if !self.response_model
            && let Some(model) = scan::response_model(frame)
        {
            self.response_model = true;
            self.span.set_attribute(KeyValue::new("gen_ai.response.model", model.to_owned()));
        }
        scan::finish_reasons(frame, &mut self.finish_reasons);
        if let Some(output) = &mut self.output {
            output.read(frame);
        }
    }

    /// Starts the CLIENT span of one attempt at `upstream`, for the backend's `model`.
    pub fn attempt(&mut self, upstream: &Upstream, model: &str) -> Attempt {
        self.attempts += 1;
        let parent = Context::new().with_remote_span_context(self.span.span_context().clone());
        let provider = provider_name(upstream);
        let mut span = self
            .tracer
            .span_builder(format!("{} {model}", self.operation))
            .with_kind(SpanKind::Client)
            .start_with_context(&self.tracer, &parent);
        span.set_attributes([
            KeyValue::new("gen_ai.operation.name", self.operation),
            KeyValue::new("gen_ai.provider.name", provider),
            KeyValue::new("gen_ai.request.model", model.to_owned()),
            KeyValue::new("switchboard.backend", upstream.name().to_string()),
        ]);
        let context = span.span_context();
        let traceparent =
            format!("00-{}-{}-{:02x}", context.trace_id(), context.span_id(), context.trace_flags());
        let tracestate = context.trace_state().header();
        let local = AttemptLocal {
            traceparent: HeaderValue::from_str(&traceparent).ok(),
            tracestate: (!tracestate.is_empty()).then(|| HeaderValue::from_str(&tracestate).ok()).flatten(),
            server: Arc::default(),
        };
        Attempt { span: Some(span), provider, local }
    }

    /// Ends `attempt` with its outcome; a reply makes its provider and server the request's.
    pub fn attempted(&mut self, mut attempt: Attempt, outcome: Result<(), &UpstreamError>) {
        let Some(mut span) = attempt.span.take() else { return };
        let server = attempt.local.server.get();
        if let Some((address, port)) = server {
            span.set_attribute(KeyValue::new("server.address", address.to_string()));
            span.set_attribute(KeyValue::new("server.port", i64::from(*port)));
        }
        match outcome {
            Ok(_) => {
                span.set_attribute(KeyValue::new("switchboard.outcome", "ok"));
                self.span.set_attribute(KeyValue::new("gen_ai.provider.name", attempt.provider));
                if let Some((address, port)) = server {
                    self.span.set_attribute(KeyValue::new("server.address", address.to_string()));
                    self.span.set_attribute(KeyValue::new("server.port", i64::from(*port)));
                }
            }
            Err(err) => {
                let outcome = if err.is_retryable() { "retryable_error" } else { "error" };
                span.set_attribute(KeyValue::new("switchboard.outcome", outcome));
                let error_type = match &err.kind {
                    UpstreamErrorKind::Status { status, .. } => {
                        span.set_attribute(KeyValue::new(
                            "http.response.status_code",
                            i64::from(status.as_u16()),
                        ));
                        status.as_str().to_owned()
                    }
                    UpstreamErrorKind::Connect(_) => "connect_error".to_owned(),
                    UpstreamErrorKind::Timeout(_) => "timeout".to_owned(),
                    UpstreamErrorKind::InvalidResponse(_) => "invalid_response".to_owned(),
                    UpstreamErrorKind::Token(_) => "token_error".to_owned(),
                };
                span.set_attribute(KeyValue::new("error.type", error_type));
                span.set_status(Status::error(err.to_string()));
            }
        }
        span.end();
    }

    /// Ends the span with what the ledger settled.
    pub fn end(mut self, settled: &Settled<'_>) {
        let span = &mut self.span;
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(settled.status)));
        if let Some(usage) = settled.usage {
            span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", usage.input as i64));
            span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", usage.output as i64));
        }
        if !self.finish_reasons.is_empty() {
            let reasons: Vec<StringValue> =
                self.finish_reasons.iter().map(|r| StringValue::from(*r)).collect();
            span.set_attribute(KeyValue::new(
                "gen_ai.response.finish_reasons",
                Value::Array(Array::String(reasons)),
            ));
        }
        if let Some(output) = &self.output
            && settled.usage.is_some()
        {
            let messages = output.messages(self.finish_reasons.first().copied());
            span.set_attribute(KeyValue::new("gen_ai.output.messages", messages));
        }
        for (key, value) in [
            ("switchboard.route", settled.route),
            ("switchboard.key_id", settled.key),
            ("switchboard.backend", settled.backend),
        ] {
            if let Some(value) = value {
                span.set_attribute(KeyValue::new(key, value.to_owned()));
            }
        }
        if self.attempts > 0 {
            span.set_attribute(KeyValue::new("switchboard.attempts", self.attempts));
        }
        let error_type = match (self.error_type.take(), settled.status) {
            (Some(error), _) => Some(error.into_string()),
            // The client went away before the last byte.
            (None, 499) => Some("client_closed".to_owned()),
            (None, status) if status >= 500 => Some(status.to_string()),
            _ => None,
        };
        if let Some(error_type) = error_type {
            span.set_status(Status::error(error_type.clone()));
            span.set_attribute(KeyValue::new("error.type", error_type));
        }
        span.end();
    }
}

/// The conventions' well-known `gen_ai.provider.name` for each provider type. The built-in mock
/// speaks OpenAI's API but is no OpenAI service: `switchboard.mock`, in our own namespace.
fn provider_name(upstream: &Upstream) -> &'static str {
    match upstream {
        Upstream::OpenAi(_) => "openai",
        Upstream::Anthropic(_) => "anthropic",
        Upstream::Gemini(_) => "gcp.gemini",
        Upstream::Vertex(_) => "gcp.vertex_ai",
        Upstream::AzureOpenAi(_) => "azure.ai.openai",
        Upstream::Bedrock(_) => "aws.bedrock",
        Upstream::Mock(_) => "switchboard.mock",
    }
}

/// One attempt's CLIENT span, and the context its upstream request carries.
pub struct Attempt {
    span: Option<Span>,
    provider: &'static str,
    local: AttemptLocal,
}

impl Drop for Attempt {
    fn drop(&mut self) {
        // Dropped unended: the request's deadline passed during the attempt.
        if let Some(span) = &mut self.span {
            span.set_attribute(KeyValue::new("switchboard.outcome", "deadline"));
            span.set_attribute(KeyValue::new("error.type", "timeout"));
            span.set_status(Status::error("the request's deadline passed"));
            span.end();
        }
    }
}

/// What the executor sees of the attempt it sends for: the headers to add, and where it
/// records the server it reached.
#[derive(Clone)]
struct AttemptLocal {
    traceparent: Option<HeaderValue>,
    tracestate: Option<HeaderValue>,
    server: Arc<OnceLock<(Box<str>, u16)>>,
}

tokio::task_local! {
    static ATTEMPT: AttemptLocal;
}

/// Runs `send` (one attempt's `upstream.send`) with the attempt's context visible to the
/// executor; without an attempt (tracing off) it is `send` itself.
pub async fn propagate<F: Future>(attempt: Option<&Attempt>, send: F) -> F::Output {
    match attempt {
        Some(attempt) => ATTEMPT.scope(attempt.local.clone(), send).await,
        None => send.await,
    }
}

/// Called by the executor for every provider request: adds the attempt's `traceparent` (and
/// `tracestate`) and notes the server. Nothing when no attempt is being traced.
pub fn stamp(uri: &Uri, headers: &mut HeaderMap) {
    let _ = ATTEMPT.try_with(|attempt| {
        if let Some(value) = &attempt.traceparent {
            headers.insert("traceparent", value.clone());
        }
        if let Some(value) = &attempt.tracestate {
            headers.insert("tracestate", value.clone());
        }
        if let Some(host) = uri.host() {
            let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("http") { 80 } else { 443 });
            let _ = attempt.server.set((host.into(), port));
        }
    });
}
