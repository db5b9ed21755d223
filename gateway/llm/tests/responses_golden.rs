//! Golden files of the Responses API dialect (`tests/golden/responses/`), fed from the provider
//! golden inputs beside it so the whole path is covered:
//! - `request/<case>.in.json`: `{"history": [stored items], "request": a /v1/responses body}` →
//!   `<case>.out.json`, the Anthropic Messages body the hub request becomes;
//! - `response/<provider>_<case>.out.json`: `golden/<provider>/response/<case>.in.json` as a
//!   response object;
//! - `stream/<provider>_<case>.out.sse`: `golden/<provider>/stream/<case>.in.sse` as Responses
//!   streaming events.
//!
//! The outputs are what `tests/py/responses_events.py` checks against the official SDK's models.
//! After an intended change: `UPDATE_GOLDEN=1 cargo test -p switchboard-llm --test responses_golden`
//! and review `git diff gateway/llm/tests/golden/responses`.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use switchboard_llm::responses::{ResponseContext, ResponsesRenderer, parse_request, render_response};
use switchboard_llm::sse::EventSplitter;
use switchboard_llm::stream::{HubTranslator, ProviderStream, StreamTranslator};
use switchboard_llm::{anthropic, gemini, hub};

fn golden(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(path)
}

/// The `*.in.<ext>` files of a directory, by case name.
fn cases(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut cases: Vec<(String, Vec<u8>)> = std::fs::read_dir(golden(dir))
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(&format!(".in.{ext}"))?.to_owned();
            Some((name, std::fs::read(&path).unwrap()))
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {dir}");
    cases
}

/// Compares `output` with the golden file (or writes it, with `UPDATE_GOLDEN`).
fn compare(path: &str, output: &str, stale: &mut Vec<String>) {
    let file = golden(path);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&file, output).unwrap();
    } else if std::fs::read_to_string(&file).ok().as_deref() != Some(output) {
        stale.push(format!("{}:\n{output}", file.display()));
    }
}

fn assert_fresh(stale: &[String]) {
    assert!(
        stale.is_empty(),
        "differs from the golden file (UPDATE_GOLDEN=1 to regenerate):\n{}",
        stale.join("\n")
    );
}

fn context() -> ResponseContext {
    parse_request(br#"{"model": "public-model", "input": "x", "metadata": {"case": "golden"}}"#)
        .unwrap()
        .context("resp_golden", 1_700_000_000)
}

#[test]
fn requests_through_the_hub_to_anthropic() {
    let mut stale = Vec::new();
    for (case, input) in cases("responses/request", "json") {
        let input: Value = serde_json::from_slice(&input).unwrap();
        let request = parse_request(input["request"].to_string().as_bytes()).unwrap();
        let history = input["history"].as_array().cloned().unwrap_or_default();
        let hub = request.to_hub(&history, "claude-sonnet-4-5").unwrap();
        let body = anthropic::build_request(&hub, anthropic::Options { default_max_tokens: 4096 }).unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        compare(
            &format!("responses/request/{case}.out.json"),
            &(serde_json::to_string_pretty(&body).unwrap() + "\n"),
            &mut stale,
        );
    }
    assert_fresh(&stale);
}

/// A provider's whole-answer parser.
type ParseAnswer = fn(&[u8]) -> hub::ChatResponse;

#[test]
fn provider_answers_as_response_objects() {
    let mut stale = Vec::new();
    let parsers: [(&str, ParseAnswer); 2] = [
        ("anthropic", |body| anthropic::parse_response(body).unwrap()),
        ("gemini", |body| gemini::parse_response(body).unwrap()),
    ];
    for (provider, parse) in parsers {
        for (case, input) in cases(&format!("{provider}/response"), "json") {
            let rendered = render_response(&parse(&input), &context());
            let text = serde_json::to_string_pretty(&rendered.response).unwrap() + "\n";
            compare(&format!("responses/response/{provider}_{case}.out.json"), &text, &mut stale);
        }
    }
    assert_fresh(&stale);
}

/// A provider's stream, split into events as the relay does, rendered for a Responses client;
/// the response handed to the store is the one `response.completed` (or `.failed`) carries.
fn relay(provider: impl ProviderStream, input: &[u8]) -> String {
    let (sender, finished) = mpsc::channel();
    let renderer =
        ResponsesRenderer::new(context()).on_finished(move |rendered| sender.send(rendered.clone()).unwrap());
    let mut translator = HubTranslator::new(provider, renderer);
    let mut out = Vec::new();
    let mut splitter = EventSplitter::default();
    for event in splitter.push(input).unwrap() {
        translator.event(event, &mut out);
    }
    assert!(splitter.finish().is_none(), "a cut event in the input");
    translator.end(&mut out);
    let text: String = out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect();
    let last = text.trim_end().rsplit_once("\ndata: ").unwrap().1;
    let last: Value = serde_json::from_str(last).unwrap();
    let stored = finished.try_recv().unwrap();
    assert_eq!(stored.response, last["response"], "the store gets what the client got");
    assert_eq!(stored.output, last["response"]["output"].as_array().unwrap().clone());
    assert!(finished.try_recv().is_err(), "the hook runs once");
    text
}

#[test]
fn provider_streams_as_responses_events() {
    let mut stale = Vec::new();
    for (case, input) in cases("anthropic/stream", "sse") {
        compare(
            &format!("responses/stream/anthropic_{case}.out.sse"),
            &relay(anthropic::AnthropicStream::new(), &input),
            &mut stale,
        );
    }
    for (case, input) in cases("gemini/stream", "sse") {
        compare(
            &format!("responses/stream/gemini_{case}.out.sse"),
            &relay(gemini::GeminiStream::new(), &input),
            &mut stale,
        );
    }
    assert_fresh(&stale);
}
