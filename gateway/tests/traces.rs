//! OpenTelemetry traces end to end: the real gateway exporting over OTLP (gRPC and HTTP) to the
//! in-repo receiver (`tests/otlp-receiver`), a mock OpenAI upstream recording what it was sent.
//! The span tree, every GenAI attribute for plain, streamed, tool-call and failed requests,
//! fallback attempts, W3C trace context both ways, content capture, and tracing off.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

pub mod support;

use std::time::Duration;
use support::*;
use switchboard_mock_providers::{AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions};
use switchboard_mock_upstream::{MockUpstream, Options};
use switchboard_otlp_receiver::{ReceivedSpan, Receiver, SpanKind, StatusCode, Value};

const KEY: &str = "sk-client-key";
const UPSTREAM_KEY: &str = "sk-upstream-secret";
/// Spans arrive well within this on loopback (batches wait OTEL_BSP_SCHEDULE_DELAY, 20 ms here).
const WAIT: Duration = Duration::from_secs(10);
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

async fn upstream() -> MockUpstream {
    let options = Options { api_key: Some(UPSTREAM_KEY.to_owned()), ..Options::default() };
    MockUpstream::start_with(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), options).await.unwrap()
}

fn config(base_url: &str) -> String {
    format!(
        r#"
version: 1
providers:
  - name: primary
    type: openai
    base_url: {base_url}
    api_key: {{ value: {UPSTREAM_KEY} }}
  - name: secondary
    type: openai
    base_url: {base_url}
    api_key: {{ value: {UPSTREAM_KEY} }}
routes:
  - model: gpt
    backends: [{{ provider: primary, model: gpt-upstream }}]
  - model: tools
    backends: [{{ provider: primary, model: gpt-upstream-tool }}]
  - model: broken
    backends: [{{ provider: primary, model: error-500 }}]
  - model: fallback
    backends:
      - {{ provider: primary, model: error-503, priority: 0 }}
      - {{ provider: secondary, model: healthy, priority: 1 }}
keys:
  - name: client
    hash: {hash}
"#,
        hash = hash_key(KEY)
    )
}

/// The gateway exporting to `receiver` over `protocol`, with `env` added.
fn traced(mock: &MockUpstream, receiver: &Receiver, protocol: &str, env: &[(&str, &str)]) -> Gateway {
    let endpoint = if protocol == "grpc" { receiver.grpc_endpoint() } else { receiver.http_endpoint() };
    let mut env = env.to_vec();
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "20"));
    Gateway::start_with_env(
        Some(&config(&mock.base_url())),
        &["--otlp-endpoint", &endpoint, "--otlp-protocol", protocol],
        &env,
    )
}

async fn chat(gateway: &Gateway, headers: &[(&str, &str)], body: &str) -> TestResponse {
    let mut all = vec![("x-api-key", KEY)];
    all.extend_from_slice(headers);
    send("POST", &gateway.url("/v1/chat/completions"), &all, body.to_owned()).await
}

/// Waits for `n` spans in all and returns those of the trace whose SERVER span asked for
/// `model` last: the request's SERVER span and its CLIENT spans, in attempt order.
async fn trace_of(receiver: &Receiver, n: usize, model: &str) -> (ReceivedSpan, Vec<ReceivedSpan>) {
    let spans = receiver.wait_for(n, WAIT).await;
    assert!(spans.len() >= n, "expected {n} spans, got {}: {spans:#?}", spans.len());
    let server = spans
        .iter()
        .rev()
        .find(|s| s.kind == SpanKind::Server && s.str_attr("gen_ai.request.model") == Some(model))
        .unwrap_or_else(|| panic!("no SERVER span for {model}: {spans:#?}"))
        .clone();
    let mut clients: Vec<ReceivedSpan> = spans
        .into_iter()
        .filter(|s| s.kind == SpanKind::Client && s.parent_span_id == server.span_id)
        .collect();
    clients.sort_by_key(|s| s.start_unix_nano);
    for client in &clients {
        assert_eq!(client.trace_id, server.trace_id, "one trace");
    }
    (server, clients)
}

fn reasons(span: &ReceivedSpan) -> Vec<String> {
    match span.attr("gen_ai.response.finish_reasons") {
        Some(Value::Array(values)) => values.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        other => panic!("finish reasons: {other:?} in {span:#?}"),
    }
}

/// The attributes every answered chat request's SERVER span carries.
fn assert_answered(server: &ReceivedSpan, model: &str, mock: &MockUpstream) {
    assert_eq!(server.name, format!("chat {model}"));
    assert_eq!(server.str_attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(server.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(server.str_attr("gen_ai.request.model"), Some(model));
    assert_eq!(server.str_attr("server.address"), Some("127.0.0.1"));
    assert_eq!(server.int_attr("server.port"), Some(i64::from(mock.addr().port())));
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert_eq!(server.str_attr("switchboard.route"), Some(model));
    assert_eq!(server.str_attr("switchboard.key_id"), Some("client"), "the key's id, never the key");
    assert_eq!(server.str_attr("switchboard.backend"), Some("primary"));
    assert_eq!(server.int_attr("switchboard.attempts"), Some(1));
    assert_eq!(server.status, StatusCode::Unset);
    assert!(server.attr("error.type").is_none());
    assert!(server.int_attr("gen_ai.usage.input_tokens").is_some_and(|t| t > 0), "{server:#?}");
    assert!(server.int_attr("gen_ai.usage.output_tokens").is_some_and(|t| t > 0), "{server:#?}");
    assert!(server.attr("gen_ai.input.messages").is_none(), "content is not captured by default");
    assert!(server.attr("gen_ai.output.messages").is_none(), "content is not captured by default");
    assert_eq!(server.resource.get("service.name").and_then(Value::as_str), Some("switchboard-gateway"));
}

#[tokio::test]
async fn plain_streamed_and_tool_call_requests_over_grpc() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let gateway = traced(&mock, &receiver, "grpc", &[]);

    // Plain, with the client's trace context: the request span joins the client's trace.
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body = r#"{"model":"gpt","max_tokens":50,"temperature":0.25,"messages":[{"role":"user","content":"secret prompt"}]}"#;
    let response = chat(&gateway, &[("traceparent", &traceparent), ("tracestate", "vendor=x")], body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let (server, clients) = trace_of(&receiver, 2, "gpt").await;
    assert_answered(&server, "gpt", &mock);
    assert_eq!((server.trace_id.as_str(), server.parent_span_id.as_str()), (CLIENT_TRACE, CLIENT_SPAN));
    assert_eq!(server.trace_state, "vendor=x");
    assert_eq!(server.int_attr("gen_ai.request.max_tokens"), Some(50));
    assert_eq!(server.attr("gen_ai.request.temperature"), Some(&Value::Double(0.25)));
    assert_eq!(server.str_attr("gen_ai.response.model"), response.json()["model"].as_str());
    let usage = &response.json()["usage"];
    assert_eq!(server.int_attr("gen_ai.usage.input_tokens"), usage["prompt_tokens"].as_i64());
    assert_eq!(server.int_attr("gen_ai.usage.output_tokens"), usage["completion_tokens"].as_i64());
    assert_eq!(reasons(&server), ["stop"]);

    let [client] = clients.as_slice() else { panic!("one attempt: {clients:#?}") };
    assert_eq!(client.name, "chat gpt-upstream");
    assert_eq!(client.str_attr("gen_ai.request.model"), Some("gpt-upstream"), "the backend's model");
    assert_eq!(client.str_attr("gen_ai.provider.name"), Some("openai"));
    assert_eq!(client.str_attr("switchboard.backend"), Some("primary"));
    assert_eq!(client.str_attr("switchboard.outcome"), Some("ok"));
    assert_eq!(client.int_attr("server.port"), Some(i64::from(mock.addr().port())));
    assert!(client.start_unix_nano >= server.start_unix_nano && client.end_unix_nano <= server.end_unix_nano);
    // The upstream was sent the attempt's context.
    let seen = mock.last_request().unwrap();
    assert_eq!(seen.header("traceparent"), Some(format!("00-{CLIENT_TRACE}-{}-01", client.span_id).as_str()));
    assert_eq!(seen.header("tracestate"), Some("vendor=x"));

    // Streamed: usage from the stream, finish reason from its chunks.
    let body = r#"{"model":"gpt","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi there"}]}"#;
    let response = chat(&gateway, &[], body).await;
    assert_eq!(response.status, 200);
    let events = sse_data(&response.text());
    let usage_chunk =
        events.iter().rev().find_map(|d| serde_json::from_str::<serde_json::Value>(d).ok()).unwrap();
    let (server, clients) = trace_of(&receiver, 4, "gpt").await;
    assert_answered(&server, "gpt", &mock);
    assert_eq!(server.int_attr("gen_ai.usage.input_tokens"), usage_chunk["usage"]["prompt_tokens"].as_i64());
    assert_eq!(
        server.int_attr("gen_ai.usage.output_tokens"),
        usage_chunk["usage"]["completion_tokens"].as_i64()
    );
    assert_eq!(server.parent_span_id, "", "no client context: a root span");
    assert_ne!(server.trace_id, CLIENT_TRACE);
    assert_eq!(clients.len(), 1);
    assert_eq!(reasons(&server), ["stop"]);
    assert!(server.str_attr("gen_ai.response.model").is_some_and(|m| !m.is_empty()));
    let seen = mock.last_request().unwrap();
    assert_eq!(
        seen.header("traceparent"),
        Some(format!("00-{}-{}-01", server.trace_id, clients[0].span_id).as_str())
    );

    // A tool call: the mock calls the request's first tool.
    let body = r#"{"model":"tools","messages":[{"role":"user","content":"weather?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}"#;
    let response = chat(&gateway, &[], body).await;
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["choices"][0]["finish_reason"], "tool_calls");
    let (server, _) = trace_of(&receiver, 6, "tools").await;
    assert_eq!(reasons(&server), ["tool_calls"]);
    assert_eq!(server.str_attr("gen_ai.provider.name"), Some("openai"));
    let (grpc, http) = receiver.exports();
    assert!(grpc > 0 && http == 0, "over gRPC only: {grpc} {http}");
}

/// Each dialect hands the attempt's context to the executor with its call, so each is checked:
/// chat completions translated to Anthropic's Messages and to Gemini, and Messages forwarded to
/// Anthropic as they are (the OpenAI dialect is checked above).
#[tokio::test]
async fn every_provider_dialect_carries_the_attempts_trace_context() {
    let local = || "127.0.0.1:0".parse().unwrap();
    let anthropic = AnthropicMock::start(local(), AnthropicOptions::default()).await.unwrap();
    let gemini = GeminiMock::start(local(), GeminiOptions::default()).await.unwrap();
    let receiver = Receiver::start().await.unwrap();
    let config = format!(
        r#"
version: 2
providers:
{gemini}{anthropic}routes:
  - model: gemini
    backends: [{{ provider: gemini, model: gemini-mock }}]
  - model: claude
    backends: [{{ provider: anthropic, model: claude-mock }}]
keys:
  - id: client
    hash: {key}
"#,
        gemini = gemini_provider_yaml(&gemini),
        anthropic = anthropic_provider_yaml(&anthropic),
        key = hash_key(KEY),
    );
    let gateway = Gateway::start_with_env(
        Some(&config),
        &["--otlp-endpoint", &receiver.grpc_endpoint(), "--otlp-protocol", "grpc"],
        &[("OTEL_BSP_SCHEDULE_DELAY", "20")],
    );
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let client = [("traceparent", traceparent.as_str())];
    let chat_body = |model: &str| {
        format!(r#"{{"model":"{model}","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}]}}"#)
    };

    let mut sent = Vec::new();
    let answer = chat(&gateway, &client, &chat_body("claude")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    sent.push((
        "chat to Messages",
        anthropic.last_request().unwrap().header("traceparent").map(str::to_owned),
    ));
    let answer = chat(&gateway, &client, &chat_body("gemini")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    sent.push(("chat to Gemini", gemini.last_request().unwrap().header("traceparent").map(str::to_owned)));
    let headers = [("x-api-key", KEY), ("anthropic-version", "2023-06-01"), client[0]];
    let answer = send("POST", &gateway.url("/v1/messages"), &headers, chat_body("claude")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    sent.push((
        "Messages forwarded",
        anthropic.last_request().unwrap().header("traceparent").map(str::to_owned),
    ));

    // Each carries the client's trace with its own attempt's span as the parent.
    let spans = receiver.wait_for(6, WAIT).await;
    for (path, seen) in sent {
        let seen = seen.unwrap_or_else(|| panic!("{path}: no traceparent upstream"));
        let parent =
            seen.strip_prefix(&format!("00-{CLIENT_TRACE}-")).and_then(|rest| rest.strip_suffix("-01"));
        let parent = parent.unwrap_or_else(|| panic!("{path}: not the client's sampled trace: {seen}"));
        assert!(
            spans.iter().any(|s| s.kind == SpanKind::Client && s.span_id == parent),
            "{path}: {parent} is no attempt's span: {spans:#?}"
        );
    }
}

#[tokio::test]
async fn failures_and_fallback_over_http() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let gateway = traced(&mock, &receiver, "http/protobuf", &[]);

    let response =
        chat(&gateway, &[], r#"{"model":"broken","messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(response.status, 502, "{}", response.text());
    // The route's one backend answers 500: tried 3 times (the default max_attempts), a CLIENT
    // span each.
    let (server, clients) = trace_of(&receiver, 4, "broken").await;
    assert_eq!(server.status, StatusCode::Error);
    assert!(server.str_attr("error.type").is_some_and(|t| !t.is_empty()), "{server:#?}");
    assert_eq!(server.int_attr("http.response.status_code"), Some(502));
    assert_eq!(server.int_attr("switchboard.attempts"), Some(3));
    assert!(server.attr("gen_ai.usage.input_tokens").is_none(), "no backend answered");
    assert_eq!(clients.len(), 3, "{clients:#?}");
    for client in &clients {
        assert_eq!(client.status, StatusCode::Error);
        assert_eq!(client.str_attr("error.type"), Some("500"));
        assert_eq!(client.int_attr("http.response.status_code"), Some(500));
        assert_eq!(client.str_attr("switchboard.outcome"), Some("retryable_error"));
    }

    // The first backend fails, the second answers: two CLIENT spans under one SERVER span.
    let response =
        chat(&gateway, &[], r#"{"model":"fallback","messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(response.status, 200, "{}", response.text());
    let (server, clients) = trace_of(&receiver, 7, "fallback").await;
    assert_eq!(server.int_attr("switchboard.attempts"), Some(2));
    assert_eq!(server.str_attr("switchboard.backend"), Some("secondary"));
    assert_eq!(server.status, StatusCode::Unset);
    let [failed, served] = clients.as_slice() else { panic!("{clients:#?}") };
    assert_eq!((failed.name.as_str(), failed.str_attr("error.type")), ("chat error-503", Some("503")));
    assert_eq!((served.name.as_str(), served.str_attr("switchboard.outcome")), ("chat healthy", Some("ok")));
    assert_eq!(served.str_attr("switchboard.backend"), Some("secondary"));
    let traceparent = mock.last_request().unwrap().header("traceparent").unwrap().to_owned();
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", server.trace_id, served.span_id),
        "each attempt its own span id"
    );

    // A request refused before any backend: one SERVER span, its error type.
    let response = send("POST", &gateway.url("/v1/chat/completions"), &[], r#"{"model":"gpt"}"#).await;
    assert_eq!(response.status, 401);
    let spans = receiver.wait_for(8, WAIT).await;
    let refused = spans.iter().find(|s| s.int_attr("http.response.status_code") == Some(401)).unwrap();
    assert_eq!((refused.kind, refused.status), (SpanKind::Server, StatusCode::Error));
    assert_eq!(refused.str_attr("error.type"), Some("missing_api_key"));
    let (grpc, http) = receiver.exports();
    assert!(http > 0 && grpc == 0, "over HTTP only: {grpc} {http}");
}

#[tokio::test]
async fn content_is_captured_only_when_enabled() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let capture = [("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")];
    let gateway = traced(&mock, &receiver, "http/protobuf", &capture);
    let body = r#"{"model":"gpt","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}]}"#;
    let response = chat(&gateway, &[], body).await;
    assert_eq!(response.status, 200);
    let reply = response.json()["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
    let (server, _) = trace_of(&receiver, 2, "gpt").await;
    let input: serde_json::Value =
        serde_json::from_str(server.str_attr("gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!([
            {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
            {"role": "user", "parts": [{"type": "text", "content": "hi there"}]},
        ])
    );
    let output: serde_json::Value =
        serde_json::from_str(server.str_attr("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!([{"role": "assistant", "parts": [{"type": "text", "content": reply}], "finish_reason": "stop"}])
    );

    // Streamed: the text is gathered from the chunks.
    let body = r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi there"}]}"#;
    let response = chat(&gateway, &[], body).await;
    let streamed: String = sse_data(&response.text())
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    let (server, _) = trace_of(&receiver, 4, "gpt").await;
    let output: serde_json::Value =
        serde_json::from_str(server.str_attr("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(output[0]["parts"][0]["content"], streamed);
}

#[tokio::test]
async fn tracing_off_exports_nothing_and_propagates_nothing() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let off = [
        Gateway::start(Some(&config(&mock.base_url())), &[]),
        // An endpoint, but the SDK switched off.
        Gateway::start_with_env(
            Some(&config(&mock.base_url())),
            &[],
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()), ("OTEL_SDK_DISABLED", "true")],
        ),
    ];
    for gateway in &off {
        let response = chat(
            gateway,
            &[("traceparent", &format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))],
            r#"{"model":"gpt","messages":[{"role":"user","content":"x"}]}"#,
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(mock.last_request().unwrap().header("traceparent"), None, "nothing is propagated");
        assert!(!gateway.log().contains("exporting traces"), "{}", gateway.log());
    }
    // A traced gateway's export through the same receiver: by the time it arrives the others'
    // would have too, had they exported anything.
    let on = Gateway::start_with_env(
        Some(&config(&mock.base_url())),
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_endpoint()), ("OTEL_BSP_SCHEDULE_DELAY", "20")],
    );
    let response = chat(&on, &[], r#"{"model":"gpt","messages":[{"role":"user","content":"x"}]}"#).await;
    assert_eq!(response.status, 200);
    let spans = receiver.wait_for(2, WAIT).await;
    assert_eq!(spans.len(), 2, "only the traced gateway's request: {spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id != CLIENT_TRACE));
}

#[tokio::test]
async fn a_collector_that_is_down_fails_no_request() {
    let mock = upstream().await;
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for protocol in ["grpc", "http/protobuf"] {
        let gateway = Gateway::start_with_env(
            Some(&config(&mock.base_url())),
            &["--otlp-endpoint", &format!("http://{closed}"), "--otlp-protocol", protocol],
            &[("OTEL_BSP_SCHEDULE_DELAY", "5")],
        );
        for i in 0..20 {
            let stream = if i % 2 == 0 { "true" } else { "false" };
            let body = format!(
                r#"{{"model":"gpt","stream":{stream},"messages":[{{"role":"user","content":"x"}}]}}"#
            );
            let response = chat(&gateway, &[], &body).await;
            assert_eq!(response.status, 200, "{protocol}: {}", response.text());
            assert!(mock.last_request().unwrap().header("traceparent").is_some(), "still traced");
        }
    }
}

#[tokio::test]
async fn sampling_follows_the_client_and_the_sampler_and_export_carries_the_configured_headers() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let body = r#"{"model":"gpt","messages":[{"role":"user","content":"x"}]}"#;
    // The default sampler (parentbased_always_on), and the collector's credentials.
    let gateway = traced(
        &mock,
        &receiver,
        "http/protobuf",
        &[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization=Bearer%20collector-token")],
    );
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let response =
        chat(&gateway, &[("traceparent", &format!("00-{unsampled}-{CLIENT_SPAN}-00"))], body).await;
    assert_eq!(response.status, 200);
    let propagated = mock.last_request().unwrap().header("traceparent").unwrap().to_owned();
    assert!(
        propagated.starts_with(&format!("00-{unsampled}-")) && propagated.ends_with("-00"),
        "the client's decision travels on: {propagated}"
    );
    let response =
        chat(&gateway, &[("traceparent", &format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))], body).await;
    assert_eq!(response.status, 200);
    let spans = receiver.wait_for(2, WAIT).await;
    assert_eq!(spans.len(), 2, "only the sampled request's two spans: {spans:#?}");
    assert!(spans.iter().all(|s| s.trace_id == CLIENT_TRACE));
    let headers = receiver.last_headers().await.unwrap();
    assert_eq!(headers.get("authorization").unwrap(), "Bearer collector-token");
    assert!(!gateway.log().contains("collector-token"), "the credential is never logged: {}", gateway.log());

    // A sampler that records nothing still propagates context, unsampled.
    let receiver = Receiver::start().await.unwrap();
    let mut off = traced(&mock, &receiver, "grpc", &[("OTEL_TRACES_SAMPLER", "always_off")]);
    let response = chat(&off, &[], body).await;
    assert_eq!(response.status, 200);
    assert!(mock.last_request().unwrap().header("traceparent").unwrap().ends_with("-00"));
    // A drained gateway has exported everything it recorded (shutdown flushes the queue).
    off.sigterm();
    assert!(off.wait_exit(Duration::from_secs(10)).is_some());
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn a_stream_broken_after_its_first_event_is_a_failed_span() {
    let mock = upstream().await;
    let receiver = Receiver::start().await.unwrap();
    let gateway = traced(&mock, &receiver, "grpc", &[]);
    mock.set_fault(Some(switchboard_mock_upstream::Fault::StreamCut { after_chunks: 2 }));
    let body = r#"{"model":"gpt","stream":true,"messages":[{"role":"user","content":"x"}]}"#;
    let response = chat(&gateway, &[], body).await;
    assert_eq!(response.status, 200, "the status went out with the first event");
    assert!(response.text().contains("upstream_stream_error"), "{}", response.text());
    let (server, clients) = trace_of(&receiver, 2, "gpt").await;
    assert_eq!(server.str_attr("error.type"), Some("upstream_unreachable"), "{server:#?}");
    assert_eq!(server.status, StatusCode::Error);
    assert_eq!(server.int_attr("http.response.status_code"), Some(200));
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].str_attr("switchboard.outcome"), Some("ok"), "the attempt itself answered");
}
