//! OTLP's protobuf messages written straight from what a span knows, with prost's wire
//! primitives: a span is encoded once, field by field as the request learns them, into one
//! buffer, and a batch is those buffers framed as an `ExportTraceServiceRequest`.
//!
//! Why not the SDK's pipeline: it copies every attribute into `KeyValue`s, then into
//! `opentelemetry-proto`'s owned messages grouped by resource and scope, then encodes those;
//! that was four fifths of tracing's cost per request (bench/results.md "Tracing on vs off").
//! A protobuf message is a sequence of fields in any order, so a span's fields can be appended
//! as they become known (the request's attributes at parse time, the answer's at its end) and
//! its buffer is already the `Span` message the batch embeds.
//!
//! Field numbers follow opentelemetry-proto v1 (`opentelemetry/proto/trace/v1/trace.proto`,
//! `common/v1/common.proto`, `resource/v1/resource.proto`,
//! `collector/trace/v1/trace_service.proto`); the tests decode what is written here with
//! `opentelemetry-proto`'s generated types.

use prost::encoding::{WireType, encode_varint, encoded_len_varint, key_len};

/// A varint: one byte for the small numbers nearly every key and length here is, prost's
/// general encoder for the rest.
#[inline]
fn varint(buf: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        buf.push(value as u8);
    } else {
        encode_varint(value, buf);
    }
}

#[inline]
fn encode_key(tag: u32, wire_type: WireType, buf: &mut Vec<u8>) {
    varint(buf, u64::from(tag << 3 | wire_type as u32));
}

/// `Span` fields.
pub mod span {
    pub const TRACE_ID: u32 = 1;
    pub const SPAN_ID: u32 = 2;
    pub const TRACE_STATE: u32 = 3;
    pub const PARENT_SPAN_ID: u32 = 4;
    pub const NAME: u32 = 5;
    pub const KIND: u32 = 6;
    pub const START_TIME: u32 = 7;
    pub const END_TIME: u32 = 8;
    pub const ATTRIBUTES: u32 = 9;
    pub const STATUS: u32 = 15;
    pub const FLAGS: u32 = 16;

    /// `Span.SpanKind`.
    pub const KIND_SERVER: u64 = 2;
    pub const KIND_CLIENT: u64 = 3;
    /// `SpanFlags`: the W3C trace flags in the low byte, then whether the parent is remote.
    pub const FLAGS_HAS_IS_REMOTE: u32 = 0x100;
    pub const FLAGS_IS_REMOTE: u32 = 0x200;
}

/// `Status` fields and its error code.
mod status {
    pub const MESSAGE: u32 = 2;
    pub const CODE: u32 = 3;
    pub const CODE_ERROR: u64 = 2;
}

/// An attribute's value (`AnyValue`), borrowed: nothing is copied to write it.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Strs(&'a [&'a str]),
}

impl Value<'_> {
    /// The encoded `AnyValue` message's length.
    fn len(&self) -> usize {
        match self {
            Value::Str(s) => delimited_len(1, s.len()),
            Value::Bool(_) => key_len(2) + 1,
            Value::Int(i) => key_len(3) + encoded_len_varint(*i as u64),
            Value::Double(_) => key_len(4) + 8,
            Value::Strs(items) => delimited_len(5, array_len(items)),
        }
    }

    fn write(&self, buf: &mut Vec<u8>) {
        match self {
            Value::Str(s) => put_str(buf, 1, s),
            Value::Bool(b) => put_varint(buf, 2, u64::from(*b)),
            Value::Int(i) => put_varint(buf, 3, *i as u64),
            Value::Double(d) => {
                encode_key(4, WireType::SixtyFourBit, buf);
                buf.extend_from_slice(&d.to_le_bytes());
            }
            Value::Strs(items) => {
                put_len(buf, 5, array_len(items));
                for item in *items {
                    // ArrayValue.values: AnyValue { string_value }
                    put_len(buf, 1, delimited_len(1, item.len()));
                    put_str(buf, 1, item);
                }
            }
        }
    }
}

/// An `ArrayValue` of strings: its length.
fn array_len(items: &[&str]) -> usize {
    items.iter().map(|item| delimited_len(1, delimited_len(1, item.len()))).sum()
}

/// The length of a length-delimited field `tag` whose content is `len` bytes.
pub fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// The key and length of a length-delimited field; its `len` bytes follow.
#[inline]
pub fn put_len(buf: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    varint(buf, len as u64);
}

#[inline]
pub fn put_bytes(buf: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_len(buf, tag, bytes.len());
    buf.extend_from_slice(bytes);
}

#[inline]
pub fn put_str(buf: &mut Vec<u8>, tag: u32, s: &str) {
    put_bytes(buf, tag, s.as_bytes());
}

#[inline]
pub fn put_varint(buf: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, buf);
    varint(buf, value);
}

pub fn put_fixed64(buf: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::SixtyFourBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

pub fn put_fixed32(buf: &mut Vec<u8>, tag: u32, value: u32) {
    encode_key(tag, WireType::ThirtyTwoBit, buf);
    buf.extend_from_slice(&value.to_le_bytes());
}

/// A `KeyValue` as field `tag` (a span's or a resource's attributes).
pub fn put_attribute(buf: &mut Vec<u8>, tag: u32, key: &str, value: Value<'_>) {
    // Most attributes are a short key and a short string or a number: every length is then one
    // byte and known here, and the message is a few slices.
    let short = match value {
        Value::Str(text) => Some(2 + text.len()),
        Value::Int(number) => Some(1 + encoded_len_varint(number as u64)),
        _ => None,
    };
    if let Some(value_len) = short
        && tag < 16
        && key.len() + value_len + 4 < 0x80
    {
        // KeyValue { 1: key, 2: AnyValue }
        buf.reserve(2 + 4 + key.len() + value_len);
        buf.extend_from_slice(&[
            (tag << 3) as u8 | 2,
            (4 + key.len() + value_len) as u8,
            0x0a,
            key.len() as u8,
        ]);
        buf.extend_from_slice(key.as_bytes());
        buf.extend_from_slice(&[0x12, value_len as u8]);
        value.write(buf);
        return;
    }
    let value_len = value.len();
    let len = delimited_len(1, key.len()) + delimited_len(2, value_len);
    buf.reserve(delimited_len(tag, len));
    put_len(buf, tag, len);
    put_str(buf, 1, key);
    put_len(buf, 2, value_len);
    value.write(buf);
}

/// A span's name written from its parts (`"{operation} {model}"`), with no string built.
pub fn put_name(buf: &mut Vec<u8>, parts: &[&str]) {
    put_len(buf, span::NAME, parts.iter().map(|p| p.len()).sum());
    for part in parts {
        buf.extend_from_slice(part.as_bytes());
    }
}

/// The span's `Status` with code ERROR and `message`.
pub fn put_error_status(buf: &mut Vec<u8>, message: &str) {
    let len = delimited_len(status::MESSAGE, message.len()) + key_len(status::CODE) + 1;
    put_len(buf, span::STATUS, len);
    put_str(buf, status::MESSAGE, message);
    put_varint(buf, status::CODE, status::CODE_ERROR);
}

/// What every batch repeats: the resource and the instrumentation scope, encoded once.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `ResourceSpans.resource` (field 1, with its key and length).
    resource: Vec<u8>,
    /// `ScopeSpans.scope` (field 1, with its key and length).
    scope: Vec<u8>,
}

impl Envelope {
    /// `attributes` are the resource's; the scope is `name` at `version`.
    pub fn new<'a>(
        attributes: impl IntoIterator<Item = (&'a str, Value<'a>)>,
        name: &str,
        version: &str,
    ) -> Self {
        let mut attrs = Vec::new();
        for (key, value) in attributes {
            // Resource.attributes
            put_attribute(&mut attrs, 1, key, value);
        }
        let mut resource = Vec::with_capacity(attrs.len() + 4);
        put_bytes(&mut resource, 1, &attrs);
        let mut scope_fields = Vec::new();
        put_str(&mut scope_fields, 1, name);
        put_str(&mut scope_fields, 2, version);
        let mut scope = Vec::with_capacity(scope_fields.len() + 4);
        put_bytes(&mut scope, 1, &scope_fields);
        Envelope { resource, scope }
    }

    /// An `ExportTraceServiceRequest` carrying `framed` spans (runs of [`put_span`]'s fields),
    /// after `prefix` zero bytes the transport fills in (gRPC's message prefix), so the request
    /// is never copied again.
    pub fn request(&self, framed: &[&[u8]], prefix: usize) -> Vec<u8> {
        let spans_len: usize = framed.iter().map(|run| run.len()).sum();
        let scope_spans_len = self.scope.len() + spans_len;
        let resource_spans_len = self.resource.len() + delimited_len(2, scope_spans_len);
        let mut buf = Vec::with_capacity(prefix + delimited_len(1, resource_spans_len));
        buf.resize(prefix, 0);
        // ExportTraceServiceRequest.resource_spans
        put_len(&mut buf, 1, resource_spans_len);
        buf.extend_from_slice(&self.resource);
        // ResourceSpans.scope_spans
        put_len(&mut buf, 2, scope_spans_len);
        buf.extend_from_slice(&self.scope);
        for run in framed {
            buf.extend_from_slice(run);
        }
        buf
    }
}

/// `span` (an encoded `Span` message) framed as a `ScopeSpans.spans` field, to be embedded in a
/// batch by [`Envelope::request`].
pub fn put_span(buf: &mut Vec<u8>, span: &[u8]) {
    put_bytes(buf, 2, span);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value;
    use prost::Message as _;

    fn string(value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> Option<&str> {
        match value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn what_is_written_decodes_as_otlp() {
        let envelope = Envelope::new(
            [("service.name", Value::Str("gw")), ("replicas", Value::Int(3)), ("canary", Value::Bool(true))],
            "switchboard-gateway",
            "1.2.3",
        );
        let mut span = Vec::new();
        put_bytes(&mut span, span::TRACE_ID, &[7; 16]);
        put_bytes(&mut span, span::SPAN_ID, &[8; 8]);
        put_bytes(&mut span, span::PARENT_SPAN_ID, &[9; 8]);
        put_str(&mut span, span::TRACE_STATE, "vendor=x");
        put_fixed32(&mut span, span::FLAGS, 1 | span::FLAGS_HAS_IS_REMOTE | span::FLAGS_IS_REMOTE);
        put_varint(&mut span, span::KIND, span::KIND_SERVER);
        put_fixed64(&mut span, span::START_TIME, 1_700_000_000_000_000_000);
        put_attribute(&mut span, span::ATTRIBUTES, "gen_ai.request.model", Value::Str("gpt-4o"));
        put_name(&mut span, &["chat", " ", "gpt-4o"]);
        put_attribute(&mut span, span::ATTRIBUTES, "gen_ai.usage.input_tokens", Value::Int(-1));
        // Numbers of one, two and five varint bytes, and one whose key is too long for one
        // length byte.
        let long_key = "k".repeat(130);
        let numbers = [("status", 200), ("tokens", 16_000), ("big", 40_000_000_000), (long_key.as_str(), 7)];
        for (key, number) in numbers {
            put_attribute(&mut span, span::ATTRIBUTES, key, Value::Int(number));
        }
        put_attribute(&mut span, span::ATTRIBUTES, "gen_ai.request.temperature", Value::Double(0.25));
        let reasons = ["stop", "length"];
        put_attribute(&mut span, span::ATTRIBUTES, "gen_ai.response.finish_reasons", Value::Strs(&reasons));
        // A long value: lengths past one varint byte.
        let long = "x".repeat(300);
        put_attribute(&mut span, span::ATTRIBUTES, "gen_ai.input.messages", Value::Str(&long));
        put_error_status(&mut span, "503");
        put_fixed64(&mut span, span::END_TIME, 1_700_000_000_000_000_123);
        let other = {
            let mut other = Vec::new();
            put_name(&mut other, &["POST"]);
            other
        };

        // Two runs of framed spans, as two threads' chunks are.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        put_span(&mut first, &span);
        put_span(&mut second, &other);
        let request =
            ExportTraceServiceRequest::decode(&envelope.request(&[&first, &second], 0)[..]).unwrap();
        let [resource_spans] = &request.resource_spans[..] else { panic!("one ResourceSpans") };
        let resource = resource_spans.resource.as_ref().unwrap();
        let keys: Vec<_> = resource.attributes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["service.name", "replicas", "canary"]);
        assert_eq!(string(&resource.attributes[0].value), Some("gw"));
        let [scope_spans] = &resource_spans.scope_spans[..] else { panic!("one ScopeSpans") };
        let scope = scope_spans.scope.as_ref().unwrap();
        assert_eq!((scope.name.as_str(), scope.version.as_str()), ("switchboard-gateway", "1.2.3"));
        let [span, other] = &scope_spans.spans[..] else { panic!("two spans") };
        assert_eq!(other.name, "POST");
        assert_eq!(span.name, "chat gpt-4o");
        assert_eq!((span.trace_id.as_slice(), span.span_id.as_slice()), (&[7; 16][..], &[8; 8][..]));
        assert_eq!(span.parent_span_id, [9; 8]);
        assert_eq!(span.trace_state, "vendor=x");
        assert_eq!(span.flags, 0x301);
        assert_eq!(span.kind, 2);
        assert_eq!(
            (span.start_time_unix_nano, span.end_time_unix_nano),
            (1_700_000_000_000_000_000, 1_700_000_000_000_000_123)
        );
        let attribute =
            |key: &str| span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()?.value);
        assert_eq!(attribute("gen_ai.request.model"), Some(any_value::Value::StringValue("gpt-4o".into())));
        assert_eq!(attribute("gen_ai.usage.input_tokens"), Some(any_value::Value::IntValue(-1)));
        for (key, number) in numbers {
            assert_eq!(attribute(key), Some(any_value::Value::IntValue(number)), "{key}");
        }
        assert_eq!(attribute("gen_ai.request.temperature"), Some(any_value::Value::DoubleValue(0.25)));
        assert_eq!(attribute("gen_ai.input.messages"), Some(any_value::Value::StringValue(long)));
        let Some(any_value::Value::ArrayValue(array)) = attribute("gen_ai.response.finish_reasons") else {
            panic!("an array")
        };
        let values: Vec<_> =
            array.values.iter().map(|v| string(&Some(v.clone())).unwrap().to_owned()).collect();
        assert_eq!(values, ["stop", "length"]);
        let status = span.status.as_ref().unwrap();
        assert_eq!((status.code, status.message.as_str()), (2, "503"));
    }

    #[test]
    fn an_empty_batch_is_a_valid_request() {
        let envelope = Envelope::new([], "s", "v");
        let request = ExportTraceServiceRequest::decode(&envelope.request(&[], 3)[3..]).unwrap();
        assert!(request.resource_spans[0].scope_spans[0].spans.is_empty());
    }
}
