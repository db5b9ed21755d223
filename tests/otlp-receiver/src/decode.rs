//! OTLP export requests flattened into spans a test can assert on: ids as hex, attributes in a
//! map, the resource's attributes beside the span's own.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use std::collections::BTreeMap;

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<Value>),
    /// Bytes, key-value lists and anything newer: present, not compared.
    Other,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

/// One span as received.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub trace_state: String,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: BTreeMap<String, Value>,
    /// Each event's name and attributes.
    pub events: Vec<(String, BTreeMap<String, Value>)>,
    pub status: StatusCode,
    pub status_message: String,
    /// The exporting process's resource (`service.name`, ...).
    pub resource: BTreeMap<String, Value>,
}

impl ReceivedSpan {
    pub fn attr(&self, key: &str) -> Option<&Value> {
        self.attributes.get(key)
    }

    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(Value::as_str)
    }

    pub fn int_attr(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(Value::as_i64)
    }
}

pub(crate) fn spans(request: ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = attributes(resource_spans.resource.map(|r| r.attributes).unwrap_or_default());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                let status = span.status.unwrap_or_default();
                out.push(ReceivedSpan {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    trace_state: span.trace_state,
                    name: span.name,
                    kind: kind(span.kind),
                    start_unix_nano: span.start_time_unix_nano,
                    end_unix_nano: span.end_time_unix_nano,
                    attributes: attributes(span.attributes),
                    events: span.events.into_iter().map(|e| (e.name, attributes(e.attributes))).collect(),
                    status: match status::StatusCode::try_from(status.code) {
                        Ok(status::StatusCode::Ok) => StatusCode::Ok,
                        Ok(status::StatusCode::Error) => StatusCode::Error,
                        _ => StatusCode::Unset,
                    },
                    status_message: status.message,
                    resource: resource.clone(),
                });
            }
        }
    }
    out
}

fn kind(code: i32) -> SpanKind {
    match span::SpanKind::try_from(code) {
        Ok(span::SpanKind::Internal) => SpanKind::Internal,
        Ok(span::SpanKind::Server) => SpanKind::Server,
        Ok(span::SpanKind::Client) => SpanKind::Client,
        Ok(span::SpanKind::Producer) => SpanKind::Producer,
        Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn attributes(pairs: Vec<KeyValue>) -> BTreeMap<String, Value> {
    pairs.into_iter().map(|kv| (kv.key, kv.value.map_or(Value::Other, value))).collect()
}

fn value(any: AnyValue) -> Value {
    match any.value {
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::Int(i),
        Some(any_value::Value::DoubleValue(d)) => Value::Double(d),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.into_iter().map(value).collect())
        }
        _ => Value::Other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Only the spans' framing of an `ExportTraceServiceRequest` (same field numbers as
/// opentelemetry-proto's `trace_service.proto` and `trace.proto`; every other field is skipped
/// unread), so a receiver that only counts does not spend the benchmark's CPU decoding
/// attributes it throws away.
mod framing {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(bytes = "bytes", repeated, tag = "2")]
        pub spans: Vec<bytes::Bytes>,
    }
}

/// How many spans an export request carries, without decoding them.
pub(crate) fn count(message: bytes::Bytes) -> Result<usize, prost::DecodeError> {
    use prost::Message as _;
    let request = framing::Request::decode(message)?;
    Ok(request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum())
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message as _;

    #[test]
    fn counting_finds_every_span_decoding_does() {
        let scope = |n: usize| ScopeSpans {
            spans: (0..n).map(|i| Span { name: format!("s{i}"), ..Span::default() }).collect(),
            ..ScopeSpans::default()
        };
        let request = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans { scope_spans: vec![scope(3), scope(2)], ..ResourceSpans::default() },
                ResourceSpans { scope_spans: vec![scope(4)], ..ResourceSpans::default() },
            ],
        };
        let bytes = bytes::Bytes::from(request.encode_to_vec());
        assert_eq!(super::count(bytes.clone()).unwrap(), 9);
        assert_eq!(super::spans(ExportTraceServiceRequest::decode(bytes).unwrap()).len(), 9);
        assert!(super::count(bytes::Bytes::from_static(&[0x0a, 0x05, 0x01])).is_err());
    }
}
