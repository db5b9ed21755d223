use super::sampler::Sampler;
use super::scan::{Output, RequestParams, StopField, finish_reasons, input_messages, response_model};
use super::{ExportHeaders, Protocol, Settings, TraceFlags, settings};
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

#[test]
fn tracing_is_off_unless_an_endpoint_is_configured() {
    let none = TraceFlags::default();
    assert_eq!(settings(&none, env(&[])).unwrap(), None);
    assert_eq!(settings(&none, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap(), None);
    let from_env = settings(&none, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])).unwrap();
    assert_eq!(
        from_env,
        Some(Settings {
            endpoint: "http://c:4318/v1/traces".into(),
            protocol: Protocol::HttpProtobuf,
            headers: ExportHeaders::default(),
            timeout: std::time::Duration::from_secs(10),
            sampler: Sampler::default(),
            capture_content: false,
        }),
        "HTTP/protobuf is the specification's default; the base URL gets the signal's path"
    );
    let traces_only = env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/custom")]);
    assert_eq!(
        settings(&none, traces_only).unwrap().unwrap().endpoint,
        "http://c:4318/custom",
        "used as it is"
    );
}

#[test]
fn exporter_variables_headers_timeout_compression_sampler() {
    let flags = TraceFlags { endpoint: Some("http://c:4318".into()), ..TraceFlags::default() };
    let resolved = settings(
        &flags,
        env(&[
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "Authorization=Bearer%20secret-token, x-tenant = a%2Cb"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
        ]),
    )
    .unwrap()
    .unwrap();
    let headers: Vec<_> = resolved.headers.iter().cloned().collect();
    assert_eq!(
        headers,
        [("authorization".to_owned(), "Bearer secret-token".to_owned()), ("x-tenant".into(), "a,b".into())],
        "the per-signal variable wins; values are percent-decoded"
    );
    let shown = format!("{resolved:?}");
    assert!(shown.contains("authorization") && !shown.contains("secret-token"), "{shown}");
    assert_eq!(resolved.timeout, std::time::Duration::from_millis(2500));
    assert_eq!(resolved.sampler, Sampler::from_env(Some("parentbased_traceidratio"), Some("0.5")).unwrap());
    for bad in [
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign"),
        ("OTEL_TRACES_SAMPLER", "xray"),
    ] {
        assert!(settings(&flags, env(&[bad])).is_err(), "{bad:?}");
    }
}

#[test]
fn disabled_wins_over_every_endpoint() {
    let flags = TraceFlags { endpoint: Some("http://c:4317".into()), ..TraceFlags::default() };
    assert_eq!(settings(&flags, env(&[("OTEL_SDK_DISABLED", "true")])).unwrap(), None);
    assert_eq!(settings(&flags, env(&[("OTEL_TRACES_EXPORTER", "none")])).unwrap(), None);
    assert!(settings(&flags, env(&[("OTEL_SDK_DISABLED", "false")])).unwrap().is_some());
}

#[test]
fn the_flag_is_a_base_url_and_wins_over_the_variables() {
    let http = TraceFlags { endpoint: Some("http://c:4318/".into()), ..TraceFlags::default() };
    let resolved = settings(&http, env(&[])).unwrap().unwrap();
    assert_eq!(resolved.endpoint, "http://c:4318/v1/traces");
    let grpc = TraceFlags {
        endpoint: Some("http://c:4317".into()),
        protocol: Some("grpc".into()),
        capture_content: false,
    };
    let resolved =
        settings(&grpc, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")])).unwrap().unwrap();
    assert_eq!((resolved.endpoint.as_str(), resolved.protocol), ("http://c:4317", Protocol::Grpc));
    let by_env = settings(&http, env(&[("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")])).unwrap().unwrap();
    assert_eq!(by_env.protocol, Protocol::Grpc, "the per-signal variable");
    assert!(settings(&http, env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])).is_err());
}

#[test]
fn content_capture_is_explicit() {
    let flags = TraceFlags { endpoint: Some("http://c".into()), ..TraceFlags::default() };
    assert!(!settings(&flags, env(&[])).unwrap().unwrap().capture_content);
    let on = env(&[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")]);
    assert!(settings(&flags, on).unwrap().unwrap().capture_content);
    let off = env(&[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "false")]);
    assert!(!settings(&flags, off).unwrap().unwrap().capture_content);
}

#[test]
fn answers_are_read_in_every_client_dialect() {
    let chunk = br#"data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o-2024","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#;
    assert_eq!(response_model(chunk), Some("gpt-4o-2024"));
    let mut reasons = Vec::new();
    finish_reasons(chunk, StopField::FinishReason, &mut reasons);
    let null = br#"data: {"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#;
    finish_reasons(null, StopField::FinishReason, &mut reasons);
    let delta = br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"}}"#;
    finish_reasons(delta, StopField::StopReason, &mut reasons);
    finish_reasons(br#"{"stop_reason":"max_tokens"}"#, StopField::StopReason, &mut reasons);
    assert_eq!(reasons, ["tool_calls", "stop", "length"]);
    finish_reasons(delta, StopField::FinishReason, &mut reasons);
    finish_reasons(chunk, StopField::None, &mut reasons);
    assert_eq!(reasons.len(), 3, "only the dialect's own field");
    let start = br#"event: message_start
data: {"type":"message_start","message":{"id":"m","type":"message","model":"claude-x","content":[]}}"#;
    assert_eq!(response_model(start), Some("claude-x"));
    // Content that mentions the field names is escaped, so it never matches.
    let mut none = Vec::new();
    finish_reasons(br#"{"content":"say \"finish_reason\":\"stop\""}"#, StopField::FinishReason, &mut none);
    assert!(none.is_empty());
}

#[test]
fn request_parameters_under_each_api_name() {
    let chat =
        RequestParams::read(br#"{"model":"m","max_completion_tokens":9,"temperature":0.5,"messages":[]}"#);
    assert_eq!((chat.max_tokens(), chat.temperature), (Some(9), Some(0.5)));
    assert_eq!(RequestParams::read(br#"{"max_output_tokens":7}"#).max_tokens(), Some(7));
    assert_eq!(RequestParams::read(b"not json"), RequestParams::default());
}

#[test]
fn content_in_the_conventions_shape() {
    let messages = input_messages(
        br#"{"system":"be brief","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"#,
    )
    .unwrap();
    assert_eq!(
        messages,
        r#"[{"parts":[{"content":"be brief","type":"text"}],"role":"system"},{"parts":[{"content":"hi","type":"text"}],"role":"user"}]"#
    );
    let mut output = Output::default();
    output.read(br#"data: {"choices":[{"delta":{"content":"Hel"}}]}"#);
    output.read(b"data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\ndata: [DONE]\n\n");
    assert_eq!(
        output.messages(Some("stop")),
        r#"[{"finish_reason":"stop","parts":[{"content":"Hello","type":"text"}],"role":"assistant"}]"#
    );
}

mod export {
    use super::super::export::{Batcher, Limits, Sink};
    use super::super::otlp::Envelope;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::Duration;

    /// Counts the export requests it is sent and the spans in them; with `hang` it never
    /// answers (a collector that accepted the connection and went silent).
    #[derive(Debug, Default)]
    struct Recorder {
        requests: Arc<AtomicUsize>,
        spans: Arc<AtomicUsize>,
        hang: bool,
    }

    impl Sink for Recorder {
        async fn send(&self, request: Vec<u8>) -> Result<(), String> {
            use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
            use prost::Message as _;
            if self.hang {
                std::future::pending::<()>().await;
            }
            self.requests.fetch_add(1, Relaxed);
            // Tests that only count requests send spans that are not `Span` messages.
            if let Ok(request) = ExportTraceServiceRequest::decode(&request[..]) {
                let scopes = request.resource_spans.iter().flat_map(|r| &r.scope_spans);
                self.spans.fetch_add(scopes.map(|s| s.spans.len()).sum(), Relaxed);
            }
            Ok(())
        }
    }

    fn envelope() -> Envelope {
        Envelope::new([], "test", "0")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let limits =
            Limits { queue: 4, batch: 2, delay: Duration::from_secs(3600), export_timeout: Duration::MAX };
        let (batcher, _flush) = Batcher::start(
            Recorder { hang: true, ..Recorder::default() },
            envelope(),
            limits,
            Default::default(),
        );
        // No await in between: the export task has not run, so the queue takes four.
        for n in 0..100u8 {
            batcher.push(vec![n]);
        }
        assert_eq!(batcher.dropped(), 96);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn flush_exports_what_is_queued_in_batches() {
        let requests = Arc::new(AtomicUsize::new(0));
        let limits =
            Limits { queue: 64, batch: 2, delay: Duration::from_secs(3600), export_timeout: Duration::MAX };
        let (batcher, flush) = Batcher::start(
            Recorder { requests: requests.clone(), ..Recorder::default() },
            envelope(),
            limits,
            Default::default(),
        );
        for n in 0..5u8 {
            batcher.push(vec![n]);
        }
        flush.flush(Duration::from_secs(10)).await;
        assert_eq!(
            requests.load(Relaxed),
            3,
            "5 spans in batches of 2; the schedule delay is an hour: only the flush sent them"
        );
        assert_eq!(batcher.dropped(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spans_from_many_threads_are_all_exported_including_chunks_still_being_filled() {
        let (requests, spans) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let limits = Limits {
            queue: 4096,
            batch: 64,
            delay: Duration::from_secs(3600),
            export_timeout: Duration::MAX,
        };
        let recorder = Recorder { requests: requests.clone(), spans: spans.clone(), hang: false };
        let (batcher, flush) = Batcher::start(recorder, envelope(), limits, Default::default());
        // 8 threads × 100 spans: each thread's last chunk is still in its slot, not yet full.
        std::thread::scope(|scope| {
            for thread in 0..8u8 {
                let batcher = &batcher;
                scope.spawn(move || {
                    for n in 0..100u8 {
                        let mut span = batcher.buffer(16);
                        // A `Span` with a name (field 5): what the recorder decodes.
                        span.extend_from_slice(&[0x2a, 2, thread, n]);
                        batcher.push(span);
                    }
                });
            }
        });
        flush.flush(Duration::from_secs(10)).await;
        assert_eq!(spans.load(Relaxed), 800);
        assert!(requests.load(Relaxed) >= 800 / 64, "batches of at most 64 spans");
        assert_eq!(batcher.dropped(), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_spans_buffer_is_kept_for_the_threads_next_span() {
        let limits =
            Limits { queue: 64, batch: 4, delay: Duration::from_secs(3600), export_timeout: Duration::MAX };
        let (batcher, _flush) = Batcher::start(Recorder::default(), envelope(), limits, Default::default());
        assert_eq!(batcher.buffer(8).capacity(), 8, "no span queued yet: a new buffer");
        let mut big = Vec::with_capacity(64 * 1024);
        big.push(1);
        for span in [vec![0u8; 500], vec![0u8; 300], big] {
            batcher.push(span);
        }
        // Kept as each span was queued, before any export.
        let reused: Vec<Vec<u8>> = (0..3).map(|_| batcher.buffer(8)).collect();
        assert!(reused.iter().all(Vec::is_empty));
        let mut capacities: Vec<usize> = reused.iter().map(Vec::capacity).collect();
        capacities.sort();
        assert_eq!(capacities, [8, 300, 500], "the two spans' buffers, not the oversized one");
    }
}
