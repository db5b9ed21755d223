//! Golden files of whole translations, per provider dialect (`anthropic`, `gemini`, `bedrock`):
//! `tests/golden/<provider>/`
//! - `request/<case>.in.json`: an OpenAI chat request → `<case>.out.json`, the upstream body;
//! - `response/<case>.in.json`: the provider's answer → `<case>.out.json`, the OpenAI answer;
//! - `stream/<case>.in.sse`: the provider's stream → `<case>.out.sse`, the OpenAI chunks (with
//!   `include_usage`), split into events as the relay splits them; Bedrock's binary event stream
//!   is written `stream/<case>.in.jsonl`, one message a line (`{"event"|"exception": type,
//!   "payload"}`), encoded into AWS event-stream frames before the relay's decoder reads them.
//!
//! Inputs follow the provider's documented examples (see each dialect's module docs). After an
//! intended change, regenerate and review the diff:
//! `UPDATE_GOLDEN=1 cargo test -p switchboard-llm --test golden && git diff gateway/llm/tests/golden`

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use std::path::{Path, PathBuf};
use switchboard_llm::eventstream::MessageSplitter;
use switchboard_llm::openai::{ChunkRenderer, ModelRequest, render_response};
use switchboard_llm::sse::EventSplitter;
use switchboard_llm::stream::{HubTranslator, ProviderStream, StreamTranslator};
use switchboard_llm::{anthropic, bedrock, gemini};

/// The model id the route resolves to upstream, per dialect.
const CLAUDE: &str = "claude-sonnet-4-5";
const GEMINI: &str = "gemini-2.5-flash";
const BEDROCK: &str = "anthropic.claude-3-5-sonnet-20240620-v1:0";

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

/// A provider's stream, split into events as the relay does, rendered for an OpenAI client.
fn relay(provider: impl ProviderStream, model: &str, input: &[u8]) -> String {
    let renderer = ChunkRenderer::new(model, 1_700_000_000, true);
    let mut translator = HubTranslator::new(provider, renderer);
    let mut out = Vec::new();
    let mut splitter = EventSplitter::default();
    for event in splitter.push(input).unwrap() {
        translator.event(event, &mut out);
    }
    assert!(splitter.finish().is_none(), "a cut event in the input");
    translator.end(&mut out);
    out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
}

#[test]
fn anthropic_requests() {
    check("anthropic", "request", "json", |input| {
        let hub = ModelRequest::parse(input).unwrap().to_hub(CLAUDE).unwrap();
        pretty(&anthropic::build_request(&hub, anthropic::Options { default_max_tokens: 4096 }).unwrap())
    });
}

#[test]
fn anthropic_responses() {
    check("anthropic", "response", "json", |input| {
        pretty(&render_response(&anthropic::parse_response(input).unwrap(), 1_700_000_000))
    });
}

#[test]
fn anthropic_streams() {
    check("anthropic", "stream", "sse", |input| relay(anthropic::AnthropicStream::new(), CLAUDE, input));
}

#[test]
fn gemini_requests() {
    check("gemini", "request", "json", |input| {
        let hub = ModelRequest::parse(input).unwrap().to_hub(GEMINI).unwrap();
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
    check("gemini", "stream", "sse", |input| relay(gemini::GeminiStream::new(), GEMINI, input));
}

#[test]
fn bedrock_requests() {
    check("bedrock", "request", "json", |input| {
        let hub = ModelRequest::parse(input).unwrap().to_hub(BEDROCK).unwrap();
        pretty(&bedrock::build_request(&hub, bedrock::Options::default()).unwrap())
    });
}

#[test]
fn bedrock_responses() {
    check("bedrock", "response", "json", |input| {
        let mut response = bedrock::parse_response(input).unwrap();
        // Converse answers do not name the model; the gateway fills in the one it called.
        response.model = BEDROCK.to_owned();
        pretty(&render_response(&response, 1_700_000_000))
    });
}

#[test]
fn bedrock_streams() {
    check("bedrock", "stream", "jsonl", |input| {
        let mut frames = Vec::new();
        for line in std::str::from_utf8(input).unwrap().lines().filter(|l| !l.trim().is_empty()) {
            let message: serde_json::Value = serde_json::from_str(line).unwrap();
            let payload = message["payload"].to_string();
            frames.extend(match message["event"].as_str() {
                Some(kind) => bedrock::encode_event("event", (":event-type", kind), payload.as_bytes()),
                None => {
                    let kind = message["exception"].as_str().unwrap();
                    bedrock::encode_event("exception", (":exception-type", kind), payload.as_bytes())
                }
            });
        }
        let renderer = ChunkRenderer::new(BEDROCK, 1_700_000_000, true);
        let mut translator = HubTranslator::new(bedrock::BedrockStream::new(), renderer);
        let mut out = Vec::new();
        let mut splitter = MessageSplitter::default();
        // Fed in uneven pieces, as a socket delivers them.
        for piece in frames.chunks(37) {
            for frame in splitter.push(piece).unwrap() {
                translator.event(frame, &mut out);
            }
        }
        assert!(splitter.finish().is_none(), "a cut message in the input");
        translator.end(&mut out);
        out.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
    });
}
