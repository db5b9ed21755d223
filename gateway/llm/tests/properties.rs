//! Property tests over everything in this crate that reads untrusted bytes: the SSE and AWS
//! event-stream splitters, the nesting scanner,
//! every stream translator, every request converter, every answer and error parser. Inputs are
//! arbitrary bytes cut at arbitrary points, arbitrary JSON, and documented provider events and
//! requests with fields mutated (wrong types, huge or negative numbers, odd unicode, empty
//! strings, fields left out), since random JSON rarely gets past the first `match`.
//!
//! Asserted: no panic; output linear in input (each bound is explained where it is checked);
//! a hub translator ends every stream with exactly one terminal event (`[DONE]` or an error),
//! last; usage is the upstream's last running total, and Anthropic's never goes down when its
//! reports do not (a field left out keeps its value).
//!
//! The sample is fixed (`RngSeed::Fixed`) and small, so CI runs the same cases in a few seconds;
//! `PROPTEST_CASES=10000 PROPTEST_SEED=<n>` runs a longer, different sample locally. A failure
//! prints the shrunk input; a bug it finds gets a regression test in `properties/regressions.rs`.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

#[path = "properties/bedrock.rs"]
mod bedrock;
#[path = "properties/depth.rs"]
mod depth;
#[path = "properties/generate.rs"]
mod generate;
#[path = "properties/regressions.rs"]
mod regressions;
#[path = "properties/requests.rs"]
mod requests;
#[path = "properties/streams.rs"]
mod streams;

/// Runs `check` over `cases` inputs from `strategy`, with a fixed seed unless overridden.
#[expect(clippy::panic, reason = "a failed property fails the calling test, printing the shrunk input")]
fn run<S: Strategy>(cases: u32, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    let seed = std::env::var("PROPTEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261202);
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    if let Err(failure) = TestRunner::new(config).run(&strategy, check) {
        panic!("{failure}");
    }
}

#[test]
fn the_nesting_scanner_counts_what_serde_json_nests() {
    run(256, depth::nested_json(), depth::check_depth);
}

#[test]
fn the_splitter_yields_the_same_events_however_the_bytes_are_cut() {
    run(512, streams::splitter_properties(), streams::check_splitter);
}

#[test]
fn the_openai_passthrough_forwards_events_byte_for_byte() {
    run(256, streams::openai_stream(), streams::check_passthrough);
}

#[test]
fn anthropic_streams_render_bounded_and_terminated() {
    run(256, streams::anthropic_stream(), streams::check_anthropic);
}

#[test]
fn anthropic_usage_never_goes_down_when_its_reports_do_not() {
    run(128, streams::anthropic_reports(), streams::check_anthropic_usage_never_decreases);
}

#[test]
fn gemini_streams_render_bounded_and_terminated() {
    run(256, streams::gemini_stream(), streams::check_gemini);
}

#[test]
fn bedrock_event_streams_render_bounded_and_terminated() {
    run(256, bedrock::stream(), bedrock::check_stream);
}

#[test]
fn the_event_stream_splitter_yields_the_same_messages_however_the_bytes_are_cut() {
    run(256, bedrock::splitter_input(), bedrock::check_splitter);
}

#[test]
fn bedrock_answers_parse_or_are_refused() {
    run(256, bedrock::answer_body(), bedrock::check_answer_body);
}

#[test]
fn arbitrary_bytes_into_every_translator() {
    let strategy = (
        proptest::prop_oneof![
            generate::sse_like_bytes(),
            proptest::collection::vec(proptest::arbitrary::any::<u8>(), 0..512)
        ],
        generate::cuts(),
        streams::ending(),
    );
    run(256, strategy, streams::check_any_bytes_everywhere);
}

#[test]
fn openai_requests_convert_for_every_provider_bounded() {
    run(384, requests::openai_body(), requests::check_request);
}

#[test]
fn any_schema_converts_or_is_refused_bounded() {
    run(256, requests::any_schema(), requests::check_schema);
}

#[test]
fn answers_and_error_bodies_parse_or_are_refused() {
    run(384, requests::answer_body(), requests::check_answer);
}
