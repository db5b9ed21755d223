//! The contract between the validator and the gateway's compile: `Snapshot::validate(origin)`
//! holds every check that depends only on the snapshot, so whatever it accepts compiles (only
//! reading a file's `env`/`file` credentials may still fail, and the generator never uses them).
//! For pushed snapshots, `accept()` refuses only whole-document problems, and what it keeps
//! validates and compiles.
//!
//! Snapshots are generated as JSON from pools of valid and adversarial values (URLs, addresses,
//! header names and values, credentials, references, ranges, digests, times). Each case first
//! draws how adversarial it is, so both verdicts of `validate` are common: see
//! `the_generator_makes_both_valid_and_invalid_snapshots`.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::Value;
use std::sync::Arc;
use switchboard_config::{Origin, Snapshot};
use switchboard_gateway::metrics::Metrics;
use switchboard_gateway::table::{CompileContext, compile};

#[path = "validate_compile/cloud.rs"]
mod cloud;
#[path = "validate_compile/generate.rs"]
mod generate;
#[path = "validate_compile/providers.rs"]
mod providers;

use generate::{Document, document};

fn context() -> CompileContext {
    CompileContext::new(Arc::new(Metrics::default()))
}

fn parse(json: &Value) -> Result<Snapshot, TestCaseError> {
    serde_json::from_value(json.clone())
        .map_err(|err| TestCaseError::fail(format!("generator made an unparsable snapshot: {err}")))
}

/// Both properties for one generated snapshot.
fn check(json: &Value, ctx: &CompileContext) -> Result<(), TestCaseError> {
    let snapshot = parse(json)?;
    for origin in [Origin::File, Origin::Pushed] {
        if snapshot.validate(origin).is_ok()
            && let Err(errors) = compile(&snapshot, origin, "hash", ctx)
        {
            return Err(TestCaseError::fail(format!(
                "{origin:?}: validate() passed but compile() failed: {errors}"
            )));
        }
    }
    match snapshot.accept() {
        Err(errors) => {
            if let Some(entry) = errors.iter().find(|e| e.entry.is_some()) {
                return Err(TestCaseError::fail(format!(
                    "accept() refused the whole snapshot for one entry: {entry}"
                )));
            }
        }
        Ok(accepted) => {
            if let Err(errors) = accepted.snapshot.validate(Origin::Pushed) {
                return Err(TestCaseError::fail(format!("what accept() kept does not validate: {errors}")));
            }
            if let Err(errors) = compile(&accepted.snapshot, Origin::Pushed, "hash", ctx) {
                return Err(TestCaseError::fail(format!("what accept() kept does not compile: {errors}")));
            }
        }
    }
    Ok(())
}

/// A runner that writes no regression files into the source tree (a failure prints the shrunk
/// input). `PROPTEST_CASES` overrides `cases` for a longer run.
fn runner(cases: u32, rng_seed: RngSeed) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    TestRunner::new(Config { cases, rng_seed, failure_persistence: None, ..Config::default() })
}

#[test]
fn what_validate_accepts_compiles_and_what_accept_keeps_compiles() {
    let ctx = context();
    // A new sample every run: a failure is a bug in the validator or in compile, never noise.
    let result = runner(768, RngSeed::Random).run(&document(), |doc| check(&doc.0, &ctx));
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// Not degenerate: over many cases, `validate` says yes and no often, for both origins and
/// where they differ, and `accept` keeps everything, leaves entries out, or refuses the document.
/// A fixed sample, so the counts are the same on every run.
#[test]
fn the_generator_makes_both_valid_and_invalid_snapshots() {
    const CASES: usize = 512;
    let mut runner = runner(1, RngSeed::Fixed(20261124));
    let strategy = document();
    let (mut file_ok, mut pushed_ok, mut file_only, mut pushed_only) = (0, 0, 0, 0);
    let (mut accepted_whole, mut accepted_part, mut refused) = (0, 0, 0);
    for _ in 0..CASES {
        let Document(json) = strategy.new_tree(&mut runner).unwrap().current();
        let snapshot: Snapshot = serde_json::from_value(json).unwrap();
        let file = snapshot.validate(Origin::File).is_ok();
        let pushed = snapshot.validate(Origin::Pushed).is_ok();
        file_ok += usize::from(file);
        pushed_ok += usize::from(pushed);
        file_only += usize::from(file && !pushed);
        pushed_only += usize::from(pushed && !file);
        match snapshot.accept() {
            Ok(accepted) if accepted.rejected.is_empty() => accepted_whole += 1,
            Ok(_) => accepted_part += 1,
            Err(_) => refused += 1,
        }
    }
    let counts = format!(
        "of {CASES}: valid as a file {file_ok} (only as a file {file_only}), valid pushed {pushed_ok} \
         (only pushed {pushed_only}), accepted whole {accepted_whole}, accepted in part {accepted_part}, \
         refused {refused}"
    );
    eprintln!("{counts}");
    // Loose bounds (the sample is fixed, but the contract may tighten): each verdict is common.
    let share = |n: usize| n * 100 / CASES;
    for (what, n) in [("valid as a file", file_ok), ("valid pushed", pushed_ok)] {
        assert!((10..=90).contains(&share(n)), "{what}: {counts}");
    }
    // The origins really differ (loopback upstreams, inline keys, keys naming models without a
    // route), both ways.
    assert!(share(file_only) >= 1 && share(pushed_only) >= 1, "{counts}");
    assert!(share(accepted_part) >= 10 && share(accepted_whole) >= 10, "{counts}");
    assert!(share(refused) >= 2, "document-level refusals: {counts}");
}
