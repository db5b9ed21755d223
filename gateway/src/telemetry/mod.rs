//! OpenTelemetry traces, opt-in: one SERVER span per request following the GenAI semantic
//! conventions and one CLIENT span per upstream attempt, exported over OTLP (gRPC or
//! HTTP/protobuf) in batches by a background task.
//!
//! Off (no endpoint configured, or `OTEL_SDK_DISABLED=true`), [`Telemetry`] is never built and
//! the request path carries `None`: no span objects, no extra clock reads, no header parsing.
//!
//! On, the request path only creates spans and hands finished ones to a bounded queue
//! ([`export::Batcher`]); a full queue drops the span and counts it. Export runs on its own task
//! with a timeout, so a collector that is down or slow never slows or fails a request.
//!
//! Where the spans come from: the request's [`Ledger`](crate::ledger::Ledger) holds its
//! [`RequestSpan`] (it knows the key, route, provider, usage and status, and ends once); the
//! forwarding loop opens an [`Attempt`] around each `upstream.send`, whose W3C `traceparent` the
//! executor (`upstream/exec.rs`) adds to the provider request ([`stamp`]).

mod export;
mod scan;
mod span;

pub use span::{Attempt, RequestSpan, Settled, propagate, stamp};

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanExporter as _};
use prometheus_client::metrics::counter::Counter;
use std::time::Duration;

/// The trace settings given as flags (the standard `OTEL_*` variables are read at start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFlags {
    /// `--otlp-endpoint`: the collector's base URL (as `OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub endpoint: Option<String>,
    /// `--otlp-protocol`: `grpc` or `http/protobuf`.
    pub protocol: Option<String>,
    /// `--otlp-capture-content`: prompts and completions in spans.
    pub capture_content: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// What the flags and the environment decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The traces endpoint when a flag named it; `None`: the exporter reads the `OTEL_*`
    /// endpoint variables itself.
    pub endpoint: Option<String>,
    pub protocol: Protocol,
    pub capture_content: bool,
}

/// Tracing is on when an endpoint is configured (the flag, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
/// or `OTEL_EXPORTER_OTLP_ENDPOINT`) and neither `OTEL_SDK_DISABLED=true` nor
/// `OTEL_TRACES_EXPORTER=none` turns it off. A flag wins over its variable.
pub fn settings(
    flags: &TraceFlags,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Settings>, String> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"))
    {
        return Ok(None);
    }
    let configured = flags.endpoint.is_some()
        || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some();
    if !configured {
        return Ok(None);
    }
    let protocol = flags
        .protocol
        .clone()
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"))
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    let protocol = match protocol.as_deref().map(str::trim) {
        // The specification's default.
        None | Some("http/protobuf" | "http") => Protocol::HttpProtobuf,
        Some("grpc") => Protocol::Grpc,
        Some(other) => {
            return Err(format!("OTLP protocol {other:?} is not supported: use grpc or http/protobuf"));
        }
    };
    // The flag is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT: HTTP appends the signal's path.
    let endpoint = flags.endpoint.as_ref().map(|base| match protocol {
        Protocol::Grpc => base.clone(),
        Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
    });
    let capture_content = flags.capture_content
        || env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok(Some(Settings { endpoint, protocol, capture_content }))
}

/// The tracer and its export pipeline; built once at start (inside the runtime), shared by
/// every request.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture_content: bool,
    flush: export::Flush,
}

impl Telemetry {
    /// Builds the exporter and starts the export task; `None` when tracing is off. Must run
    /// inside the tokio runtime.
    /// `dropped` counts spans lost to a full export queue.
    pub fn start(flags: &TraceFlags, dropped: Counter) -> Result<Option<Telemetry>, String> {
        let Some(settings) = settings(flags, |name| std::env::var(name).ok())? else { return Ok(None) };
        let resource = resource();
        let invalid = |err: opentelemetry_otlp::ExporterBuildError| format!("OTLP exporter: {err}");
        let batcher = match settings.protocol {
            Protocol::Grpc => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let mut exporter = builder.build().map_err(invalid)?;
                exporter.set_resource(&resource);
                export::Batcher::start(exporter, export::Limits::from_env(), dropped.clone())
            }
            Protocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if let Some(endpoint) = &settings.endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                let mut exporter = builder.build().map_err(invalid)?;
                exporter.set_resource(&resource);
                export::Batcher::start(exporter, export::Limits::from_env(), dropped.clone())
            }
        };
        let (processor, flush) = batcher;
        let provider =
            SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource).build();
        let scope = opentelemetry::InstrumentationScope::builder("switchboard-gateway")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let tracer = provider.tracer_with_scope(scope);
        tracing::info!(
            protocol = ?settings.protocol,
            endpoint = settings.endpoint.as_deref().unwrap_or("(from OTEL_EXPORTER_OTLP_*)"),
            capture_content = settings.capture_content,
            "exporting traces over OTLP"
        );
        Ok(Some(Telemetry { provider, tracer, capture_content: settings.capture_content, flush }))
    }

    /// Exports what is queued (at shutdown), waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        self.flush.flush(timeout).await;
    }

    pub(crate) fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    pub(crate) fn capture_content(&self) -> bool {
        self.capture_content
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Stops the processor; queued spans were flushed by `flush` at shutdown.
        let _ = self.provider.shutdown_with_timeout(Duration::from_millis(100));
    }
}

/// `service.name` is ours unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` name it;
/// the SDK's detectors read both.
fn resource() -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    let builder = if named { builder } else { builder.with_service_name("switchboard-gateway") };
    builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build()
}

#[cfg(test)]
mod tests;
