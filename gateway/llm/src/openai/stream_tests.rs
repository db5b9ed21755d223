//! [`OpenAiStream`] fed recorded streams: OpenAI's documented ones, and what vLLM, Ollama and
//! Azure send differently.

use super::*;
use crate::hub::FinishReason;
use crate::openai::ChunkRenderer;
use crate::stream::{HubTranslator, StreamTranslator};
use bytes::Bytes;
use serde_json::Value;

fn parse(frames: &[String]) -> Vec<StreamEvent> {
    let mut stream = OpenAiStream::new();
    let mut events = Vec::new();
    for frame in frames {
        stream.frame(frame.as_bytes(), &mut events);
    }
    stream.end(&mut events);
    events
}

/// SSE events from chunk JSON texts (`[DONE]` as it is).
fn sse(chunks: &[&str]) -> Vec<String> {
    chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).collect()
}

/// The documented text stream (<https://platform.openai.com/docs/api-reference/chat/streaming>:
/// a role chunk, content chunks, a finish chunk with an empty delta), with the usage chunk
/// `stream_options.include_usage` adds (`choices: []`, `usage: null` on the others).
fn documented_text() -> Vec<String> {
    sse(&[
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{"content":" there!"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        r#"{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":"gpt-4o-mini","system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        "[DONE]",
    ])
}

/// The streamed call of the function-calling guide
/// (<https://platform.openai.com/docs/guides/function-calling#streaming>: `id`, `name`, `type`
/// only on a call's first piece, `null` after; its deltas verbatim), with a second, parallel
/// call after it and the chunk envelope of the API reference's chunk object.
fn documented_parallel_calls() -> Vec<String> {
    const HEAD: &str = r#""id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_3a668a2d1b""#;
    let piece = |index: u32, arguments: &str| {
        format!(
            r#"{{{HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{index},"id":null,"function":{{"arguments":{arguments},"name":null}},"type":null}}]}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        )
    };
    let first = |index: u32, id: &str| {
        format!(
            r#"{{{HEAD},"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{index},"id":"{id}","type":"function","function":{{"name":"get_weather","arguments":""}}}}]}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        )
    };
    let chunks = [
        format!(
            r#"{{{HEAD},"choices":[{{"index":0,"delta":{{"role":"assistant","content":null,"refusal":null}},"logprobs":null,"finish_reason":null}}],"usage":null}}"#
        ),
        first(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA"),
        piece(0, r#""{\"""#),
        piece(0, r#""location""#),
        piece(0, r#""\":\"""#),
        piece(0, r#""Paris""#),
        piece(0, r#"",""#),
        piece(0, r#"" France""#),
        piece(0, r#""\"}""#),
        first(1, "call_aXr9bq4EXBexpCWGpNG4WsBx"),
        piece(1, r#""{\"location\":\"Bogot\u00e1, ""#),
        piece(1, r#""Colombia\"}""#),
        format!(
            r#"{{{HEAD},"choices":[{{"index":0,"delta":{{}},"logprobs":null,"finish_reason":"tool_calls"}}],"usage":null}}"#
        ),
        format!(
            r#"{{{HEAD},"choices":[],"usage":{{"prompt_tokens":83,"completion_tokens":48,"total_tokens":131,"prompt_tokens_details":{{"cached_tokens":64}},"completion_tokens_details":{{"reasoning_tokens":0}}}}}}"#
        ),
        "[DONE]".to_owned(),
    ];
    chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).collect()
}

/// vLLM with `stream_options: {"include_usage": true, "continuous_usage_stats": true}`
/// (<https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html>): the running total
/// on every chunk, and again in the usage chunk.
fn vllm_continuous_usage() -> Vec<String> {
    sse(&[
        r#"{"id":"chatcmpl-7f1","object":"chat.completion.chunk","created":1730000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":10,"completion_tokens":0}}"#,
        r#"{"id":"chatcmpl-7f1","object":"chat.completion.chunk","created":1730000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":"One"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":11,"completion_tokens":1}}"#,
        r#"{"id":"chatcmpl-7f1","object":"chat.completion.chunk","created":1730000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":" two"},"logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":12,"completion_tokens":2}}"#,
        r#"{"id":"chatcmpl-7f1","object":"chat.completion.chunk","created":1730000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":13,"completion_tokens":3}}"#,
        r#"{"id":"chatcmpl-7f1","object":"chat.completion.chunk","created":1730000000,"model":"meta-llama/Llama-3.1-8B-Instruct","choices":[],"usage":{"prompt_tokens":10,"total_tokens":13,"completion_tokens":3}}"#,
        "[DONE]",
    ])
}

#[test]
fn the_documented_text_stream() {
    assert_eq!(
        parse(&documented_text()),
        vec![
            StreamEvent::Start { id: "chatcmpl-123".into(), model: "gpt-4o-mini".into() },
            StreamEvent::Text("Hello".into()),
            StreamEvent::Text(" there!".into()),
            StreamEvent::Finish(FinishReason::Stop),
            StreamEvent::Usage(Usage { input: 9, output: 3, ..Usage::default() }),
        ]
    );
}

#[test]
fn a_parallel_tool_call_streamed_in_pieces() {
    let events = parse(&documented_parallel_calls());
    let arguments = |call: u32| -> String {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallArguments { index, fragment } if *index == call => {
                    Some(fragment.as_str())
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(arguments(0), r#"{"location":"Paris, France"}"#);
    assert_eq!(arguments(1), r#"{"location":"Bogotá, Colombia"}"#);
    let starts: Vec<&StreamEvent> =
        events.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).collect();
    assert_eq!(
        starts,
        [
            &StreamEvent::ToolCallStart {
                index: 0,
                id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: "get_weather".into()
            },
            &StreamEvent::ToolCallStart {
                index: 1,
                id: "call_aXr9bq4EXBexpCWGpNG4WsBx".into(),
                name: "get_weather".into()
            },
        ]
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::ToolCallArguments { fragment, .. } if fragment.is_empty())),
        "the empty first piece is not an event"
    );
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT".into(),
            model: "gpt-4.1-2025-04-14".into()
        }
    );
    assert_eq!(
        &events[events.len() - 2..],
        [
            StreamEvent::Finish(FinishReason::ToolCalls),
            StreamEvent::Usage(Usage { input: 83, output: 48, cache_read: 64, ..Usage::default() })
        ]
    );
}

#[test]
fn cumulative_usage_on_every_chunk_is_set_not_summed() {
    let events = parse(&vllm_continuous_usage());
    let reports: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Usage(usage) => Some(usage.output),
            _ => None,
        })
        .collect();
    assert_eq!(reports, [0, 1, 2, 3, 3], "each report is the running total");
    assert!(events.contains(&StreamEvent::Finish(FinishReason::Length)));
    let mut translator = HubTranslator::new(OpenAiStream::new(), ChunkRenderer::new("m", 0, false));
    run(&mut translator, &vllm_continuous_usage());
    assert_eq!(translator.usage(), Usage { input: 10, output: 3, ..Usage::default() }, "not 50 in, 9 out");
}

#[test]
fn whole_calls_in_one_chunk_and_repeated_ids() {
    // Ollama's `/v1/chat/completions` (<https://github.com/ollama/ollama/blob/main/docs/openai.md>):
    // each call whole, in one chunk, finish reason on a chunk of its own.
    let ollama = parse(&sse(&[
        r#"{"id":"chatcmpl-917","object":"chat.completion.chunk","created":1733000000,"model":"llama3.1","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_u8a3jx4k","index":0,"type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-917","object":"chat.completion.chunk","created":1733000000,"model":"llama3.1","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_q0c7lf2m","index":1,"type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-917","object":"chat.completion.chunk","created":1733000000,"model":"llama3.1","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]));
    let expected = vec![
        StreamEvent::Start { id: "chatcmpl-917".into(), model: "llama3.1".into() },
        StreamEvent::ToolCallStart { index: 0, id: "call_u8a3jx4k".into(), name: "get_weather".into() },
        StreamEvent::ToolCallArguments { index: 0, fragment: r#"{"city":"Paris"}"#.into() },
        StreamEvent::ToolCallStart { index: 1, id: "call_q0c7lf2m".into(), name: "get_time".into() },
        StreamEvent::ToolCallArguments { index: 1, fragment: "{}".into() },
        StreamEvent::Finish(FinishReason::ToolCalls),
    ];
    assert_eq!(ollama, expected);
    // Older servers: both calls numbered 0 (or not numbered) in one chunk, and `stop` after them.
    for numbering in [r#""index":0,"#, ""] {
        let calls = format!(
            r#"{{"id":"chatcmpl-917","model":"llama3.1","choices":[{{"index":0,"delta":{{"tool_calls":[
                {{{numbering}"id":"call_u8a3jx4k","type":"function","function":{{"name":"get_weather","arguments":"{{\"city\":\"Paris\"}}"}}}},
                {{{numbering}"id":"call_q0c7lf2m","type":"function","function":{{"name":"get_time","arguments":"{{}}"}}}}]}},"finish_reason":"stop"}}]}}"#
        )
        .replace('\n', "");
        assert_eq!(parse(&sse(&[&calls, "[DONE]"])), expected, "{numbering}");
    }
    // vLLM's tool parsers: id, type and name again on every piece of one call.
    let vllm = parse(&sse(&[
        r#"{"id":"chatcmpl-a1","model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-5e0","type":"function","index":0,"function":{"name":"get_weather"}}]}}]}"#,
        r#"{"id":"chatcmpl-a1","model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-5e0","type":"function","index":0,"function":{"name":"get_weather","arguments":"{\"city\": "}}]}}]}"#,
        r#"{"id":"chatcmpl-a1","model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"tool_calls":[{"id":"chatcmpl-tool-5e0","type":"function","index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}"#,
        r#"{"id":"chatcmpl-a1","model":"Qwen/Qwen3-8B","choices":[{"index":0,"delta":{"content":""},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]));
    assert_eq!(
        &vllm[1..],
        [
            StreamEvent::ToolCallStart {
                index: 0,
                id: "chatcmpl-tool-5e0".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{\"city\": ".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "\"Paris\"}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn arguments_before_the_name_wait_for_it() {
    let events = parse(&sse(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\""}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_x1","function":{"name":"f","arguments":":1}"}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#,
    ]));
    assert_eq!(
        &events[1..],
        [
            StreamEvent::ToolCallStart { index: 0, id: "call_x1".into(), name: "f".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: "{\"a\"".into() },
            StreamEvent::ToolCallArguments { index: 0, fragment: ":1}".into() },
            // Never named: announced when the answer ends, with an id of its own.
            StreamEvent::ToolCallStart { index: 1, id: "call_1".into(), name: String::new() },
            StreamEvent::ToolCallArguments { index: 1, fragment: "{}".into() },
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn an_error_object_mid_stream_ends_it() {
    // OpenAI's server error, as it arrives after the status line.
    let mut frames = documented_text();
    frames.truncate(2);
    frames.extend(sse(&[
        r#"{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}"#,
        "[DONE]",
    ]));
    let events = parse(&frames);
    assert_eq!(
        &events[1..],
        [
            StreamEvent::Text("Hello".into()),
            StreamEvent::Error(StreamError {
                kind: "server_error".into(),
                message: "The server had an error while processing your request. Sorry about that!".into()
            }),
        ],
        "one error, none again at the end"
    );
    // A chunk that merely says "error" is text.
    let events = parse(&sse(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"error"},"finish_reason":"stop"}]}"#,
    ]));
    assert_eq!(events[1], StreamEvent::Text("error".into()));
}

#[test]
fn a_stream_cut_without_finish_reason_is_an_error() {
    let cut = StreamEvent::Error(StreamError {
        kind: "upstream_stream_error".into(),
        message: "the stream ended before a finish reason".into(),
    });
    let mut frames = documented_text();
    frames.truncate(3);
    assert_eq!(parse(&frames).last(), Some(&cut));
    // `[DONE]` does not make up for the missing reason; a missing `[DONE]` after it is harmless.
    frames.push("data: [DONE]\n\n".into());
    assert_eq!(parse(&frames).last(), Some(&cut));
    let mut frames = documented_text();
    frames.truncate(4);
    assert_eq!(parse(&frames).last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
    assert_eq!(parse(&[]), vec![cut]);
}

#[test]
fn azure_filter_chunks_refusals_comments_and_garbage() {
    // Azure OpenAI's first chunk: prompt filter results, no choice, id or model
    // (<https://learn.microsoft.com/azure/ai-foundry/openai/concepts/content-filter>).
    let events = parse(&sse(&[
        r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
        r#"{"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1733000000,"id":"chatcmpl-Az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_b705f0c291"}"#,
        r#"{"choices":[{"delta":{"refusal":"I can't help with that."},"finish_reason":null,"index":0}],"id":"chatcmpl-Az1","model":"gpt-4o-2024-11-20"}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop","index":0}],"id":"chatcmpl-Az1","model":"gpt-4o-2024-11-20"}"#,
    ]));
    assert_eq!(
        events,
        [
            StreamEvent::Start { id: "chatcmpl-Az1".into(), model: "gpt-4o-2024-11-20".into() },
            StreamEvent::Text("I can't help with that.".into()),
            StreamEvent::Finish(FinishReason::ContentFilter),
        ]
    );
    let events = parse(&[": keep-alive\n\n".into(), "data: {\"id\":\"c\",\"choices\":[{\"del\n\n".into()]);
    assert!(
        matches!(&events[..], [StreamEvent::Error(e)] if e.kind == "invalid_upstream_event"),
        "{events:?}"
    );
}

fn run(translator: &mut dyn StreamTranslator, frames: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for frame in frames {
        translator.event(Bytes::from(frame.clone()), &mut out);
    }
    translator.end(&mut out);
    out.iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect()
}

/// What an OpenAI client makes of a stream (as the SDKs' stream accumulators do): the answer's
/// id, model, text, calls (id, name, arguments by index), finish reason and usage; and whether
/// it ended with `[DONE]`.
#[derive(Debug, PartialEq, Default)]
struct ClientView {
    id: String,
    model: String,
    text: String,
    calls: Vec<(String, String, String)>,
    finish: Option<String>,
    usage: Option<Value>,
    done: bool,
}

fn client_view(events: &[String]) -> ClientView {
    let mut view = ClientView::default();
    for event in events {
        let data = event.strip_prefix("data: ").unwrap().trim_end();
        if data == "[DONE]" {
            view.done = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if view.id.is_empty() {
            view.id = chunk["id"].as_str().unwrap().to_owned();
            view.model = chunk["model"].as_str().unwrap().to_owned();
        }
        if !chunk["usage"].is_null() {
            let usage = &chunk["usage"];
            view.usage = Some(serde_json::json!([
                usage["prompt_tokens"],
                usage["completion_tokens"],
                usage["total_tokens"],
                usage["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap_or(0)
            ]));
        }
        for choice in chunk["choices"].as_array().unwrap() {
            let delta = &choice["delta"];
            view.text.push_str(delta["content"].as_str().unwrap_or_default());
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = usize::try_from(call["index"].as_u64().unwrap()).unwrap();
                if view.calls.len() <= index {
                    view.calls.resize(index + 1, Default::default());
                }
                let (id, name, arguments) = &mut view.calls[index];
                id.push_str(call["id"].as_str().unwrap_or_default());
                name.push_str(call["function"]["name"].as_str().unwrap_or_default());
                arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
            }
            if let Some(finish) = choice["finish_reason"].as_str() {
                view.finish = Some(finish.to_owned());
            }
        }
    }
    view
}

#[test]
fn through_the_hub_an_openai_client_sees_the_same_stream() {
    for recorded in [documented_text(), documented_parallel_calls(), vllm_continuous_usage()] {
        let mut translator =
            HubTranslator::new(OpenAiStream::new(), ChunkRenderer::new("public-name", 1_700_000_000, true));
        let rendered = run(&mut translator, &recorded);
        let original = client_view(&recorded);
        assert!(original.done && original.usage.is_some(), "{original:?}");
        assert_eq!(client_view(&rendered), original);
    }
}
