//! Golden files of whole Gemini translations: `tests/golden/gemini/`
//! - `request/<case>.in.json`: an OpenAI chat request → `<case>.out.json`, the
//!   `generateContent` body;
//! - `response/<case>.in.json`: a `GenerateContentResponse` → `<case>.out.json`, the OpenAI answer;
//! - `stream/<case>.in.sse`: a `streamGenerateContent?alt=sse` stream → `<case>.out.sse`, the
//!   OpenAI chunks (with `include_usage`).
//!
//! Inputs follow the documented examples (see `gemini` module docs) and the mock's streams.
//! After an intended change, regenerate and review the diff:
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-llm --test golden_gemini && git diff gateway/llm/tests/golden`

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use std::path::{Path, PathBuf};
use switchboard_llm::gemini;
use switchboard_llm::openai::{ChunkRenderer, ModelRequest, render_response};
use switchboard_llm::sse::EventSplitter;
use switchboard_llm::stream::{HubTranslator, StreamTranslator};

/// The model id the route resolves to upstream, in every request case.
const UPSTREAM_MODEL: &str = "gemini-2.5-flash";

fn golden_dir(provider: &str, kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(provider).join(kind)
}

/// Runs `translate` on every `*.in.<ext>` of the directory and compares with `*.out.<ext>`.
fn check(provider: &str, kind: &str, ext: &str, translate: impl Fn(&[u8]) -> String) {
    let dir = golden_dir(provider, kind);
    let mut cases = 0;
    let mut stale = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(case) = name.strip_suffix(&format!(".in.{ext}")) else { continue };
        cases += 1;
        let output = translate(&std::fs::read(&path).unwrap());
        let golden = dir.join(format!("{case}.out.{ext}"));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &output).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(output.as_str()) {
            stale.push(format!("{}:\n{output}", golden.display()));
        }
    }
    assert!(cases > 0, "no cases in {}", dir.display());
    assert!(
        stale.is_empty(),
        "differs from the golden file (UPDATE_GOLDEN=1 to regenerate):\n{}",
        stale.join("\n")
    );
}

fn pretty(json: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(json).unwrap();
    serde_json::to_string_pretty(&value).unwrap() + "\n"
}

#[test]
fn gemini_requests() {
    check("gemini", "request", "json", |input| {
        let request = ModelRequest::parse(input).unwrap();
        let hub = request.to_hub(UPSTREAM_MODEL).unwrap();
        pretty(&gemini::build_request(&hub, gemini::Options::default()).unwrap())
    });
}

#[test]
fn gemini_responses() {
    check("gemini", "response", "json", |input| {
        pretty(&render_response(&gemini::parse_response(input).unwrap(), 1_700_000_000))
    });
}

#[test]
fn gemini_streams() {
    check("gemini", "stream", "sse", |input| {
        let renderer = ChunkRenderer::new(UPSTREAM_MODEL, 1_700_000_000, true);
        let mut translator = HubTranslator::new(gemini::GeminiStream::new(), renderer);
        let mut out = Vec::new();
        // Split as the relay does (Gemini ends events with `\r\n\r\n`), event by event.
        let mut splitter = EventSplitter::default();
        for event in splitter.push(input).unwrap() {
            translator.event(event, &mut out);
        }
        assert!(splitter.finish().is_none(), "a cut event in the input");
        translator.end(&mut out);
        out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
    });
}
