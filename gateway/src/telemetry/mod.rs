//! OpenTelemetry traces, opt-in: one SERVER span per request following the GenAI semantic
//! conventions and one CLIENT span per upstream attempt, exported over OTLP (gRPC or
//! HTTP/protobuf) in batches by a background task.
//!
//! Off (no endpoint configured, or `OTEL_SDK_DISABLED=true`), [`Telemetry`] is never built and
//! the request path carries `None`: no span objects, no extra clock reads, no header parsing.
//!
//! On, a span is a buffer the request path writes its OTLP protobuf fields into as it learns
//! them ([`otlp`]); a finished span is copied into its thread's chunk of spans for export
//! ([`export::Batcher`]), and a full queue drops it and counts it. Export runs on its own task
//! with a timeout ([`transport`]), so a collector that is down or slow never slows or fails a
//! request.
//!
//! Where the spans come from: the request's [`Ledger`](crate::ledger::Ledger) holds its
//! [`RequestSpan`] (it knows the key, route, provider, usage and status, and ends once); the
//! forwarding loop opens an [`Attempt`] around each `upstream.send`, whose W3C trace context
//! ([`TraceHeaders`]) goes with the attempt's call for the executor (`upstream/exec.rs`) to add
//! to the provider request.

mod backend;
mod export;
mod otlp;
mod sampler;
mod scan;
mod span;
mod transport;

pub use backend::BackendAttributes;
pub use span::{Attempt, RequestSpan, Settled, TraceHeaders};

use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use prometheus_client::metrics::counter::Counter;
use sampler::Sampler;
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
    /// Where export requests go: for HTTP the full URL (`.../v1/traces`), for gRPC the base.
    pub endpoint: String,
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS` or `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: ExportHeaders,
    /// One export request's limit (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, `..._TIMEOUT`, ms).
    pub timeout: Duration,
    pub sampler: Sampler,
    pub capture_content: bool,
}

/// Headers sent with every export request: often a collector's API key, so `Debug` shows only
/// their names.
#[derive(Clone, Default, PartialEq)]
pub struct ExportHeaders(Vec<(String, String)>);

impl ExportHeaders {
    /// `key1=value1,key2=value2`, values percent-decoded (the OTLP exporter specification).
    fn parse(list: &str) -> Result<ExportHeaders, String> {
        let mut headers = Vec::new();
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            let Some((name, value)) = pair.split_once('=') else {
                return Err(
                    "OTEL_EXPORTER_OTLP_HEADERS: expected name=value pairs separated by commas".into()
                );
            };
            let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
            headers.push((name.trim().to_ascii_lowercase(), value.into_owned()));
        }
        Ok(ExportHeaders(headers))
    }

    fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }
}

impl std::fmt::Debug for ExportHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
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
    // The flag is a base URL like OTEL_EXPORTER_OTLP_ENDPOINT: HTTP appends the signal's path;
    // the per-signal variable is the full URL.
    let with_path = |base: &str| match protocol {
        Protocol::Grpc => base.trim().to_owned(),
        Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim().trim_end_matches('/')),
    };
    let endpoint = match (&flags.endpoint, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        (Some(base), _) => with_path(base),
        (None, Some(url)) => url.trim().to_owned(),
        (None, None) => with_path(&env("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default()),
    };
    let per_signal = |name: &str| {
        env(&format!("OTEL_EXPORTER_OTLP_TRACES_{name}"))
            .or_else(|| env(&format!("OTEL_EXPORTER_OTLP_{name}")))
    };
    let headers = ExportHeaders::parse(&per_signal("HEADERS").unwrap_or_default())?;
    let timeout = match per_signal("TIMEOUT") {
        None => Duration::from_secs(10),
        Some(ms) => match ms.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                return Err(format!(
                    "OTEL_EXPORTER_OTLP_TIMEOUT: {ms:?} is not a positive number of milliseconds"
                ));
            }
        },
    };
    match per_signal("COMPRESSION").as_deref().map(str::trim) {
        None | Some("none") => {}
        Some(other) => {
            return Err(format!(
                "OTLP compression {other:?} is not supported: unset OTEL_EXPORTER_OTLP_COMPRESSION"
            ));
        }
    }
    let sampler =
        Sampler::from_env(env("OTEL_TRACES_SAMPLER").as_deref(), env("OTEL_TRACES_SAMPLER_ARG").as_deref())?;
    let capture_content = flags.capture_content
        || env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok(Some(Settings { endpoint, protocol, headers, timeout, sampler, capture_content }))
}

/// The export pipeline and what every span needs; built once at start (inside the runtime),
/// shared by every request.
pub struct Telemetry {
    recorder: std::sync::Arc<span::Recorder>,
    flush: export::Flush,
}

impl Telemetry {
    /// Builds the exporter and starts the export task; `None` when tracing is off. Must run
    /// inside the tokio runtime.
    /// `dropped` counts spans lost to a full export queue.
    pub fn start(flags: &TraceFlags, dropped: Counter) -> Result<Option<Telemetry>, String> {
        let Some(settings) = settings(flags, |name| std::env::var(name).ok())? else { return Ok(None) };
        let exporter = transport::Exporter::new(&settings)?;
        let (batcher, flush) =
            export::Batcher::start(exporter, envelope(), export::Limits::from_env(), dropped);
        tracing::info!(
            protocol = ?settings.protocol,
            endpoint = %settings.endpoint,
            headers = ?settings.headers,
            sampler = ?settings.sampler,
            capture_content = settings.capture_content,
            "exporting traces over OTLP"
        );
        let recorder = span::Recorder::new(batcher, settings.sampler, settings.capture_content);
        Ok(Some(Telemetry { recorder: std::sync::Arc::new(recorder), flush }))
    }

    /// Exports what is queued (at shutdown), waiting at most `timeout`.
    pub async fn flush(&self, timeout: Duration) {
        self.flush.flush(timeout).await;
    }
}

/// The resource and scope every batch carries. `service.name` is ours unless `OTEL_SERVICE_NAME`
/// or `OTEL_RESOURCE_ATTRIBUTES` name it; the SDK's detectors read both.
fn envelope() -> otlp::Envelope {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    let builder = if named { builder } else { builder.with_service_name("switchboard-gateway") };
    let resource =
        builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION"))).build();
    // Arrays of strings are the only arrays a resource detector produces here.
    let strings: Vec<(String, Vec<&str>)> = resource
        .iter()
        .filter_map(|(key, value)| match value {
            Value::Array(Array::String(items)) => {
                Some((key.to_string(), items.iter().map(|s| s.as_str()).collect()))
            }
            _ => None,
        })
        .collect();
    let scalars = resource.iter().filter_map(|(key, value)| {
        let value = match value {
            Value::String(s) => otlp::Value::Str(s.as_str()),
            Value::Bool(b) => otlp::Value::Bool(*b),
            Value::I64(i) => otlp::Value::Int(*i),
            Value::F64(f) => otlp::Value::Double(*f),
            _ => return None,
        };
        Some((key.as_str(), value))
    });
    let arrays = strings.iter().map(|(key, items)| (key.as_str(), otlp::Value::Strs(items)));
    otlp::Envelope::new(scalars.chain(arrays), "switchboard-gateway", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests;
