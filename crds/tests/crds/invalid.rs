//! A table of objects `kubectl apply` must refuse, one file each under `crds/tests/invalid/<kind>/`,
//! in the spirit of envoyproxy/ai-gateway's tests/crdcel: each names the error it expects in a
//! comment, `# expect: <field path>: <message fragment>`, and must produce exactly those errors.
//! Every CEL rule in the CRDs must be exercised by at least one file, so a new rule comes with
//! a test.

use crate::structural::cel_rules;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use switchboard_test_apiserver::validate::{Error, Problem, Validator, documents, openapi_schema};

struct Expectation {
    path: String,
    fragment: String,
}

impl Expectation {
    fn matches(&self, problem: &Problem) -> bool {
        problem.path == self.path && problem.message.contains(&self.fragment)
    }
}

fn fixtures() -> Result<Vec<PathBuf>, Error> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut files = Vec::new();
    for kind_dir in std::fs::read_dir(&root)? {
        for file in std::fs::read_dir(kind_dir?.path())? {
            let path = file?.path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn expectations(text: &str) -> Vec<Expectation> {
    text.lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .filter_map(|e| e.split_once(": "))
        .map(|(path, fragment)| Expectation { path: path.to_owned(), fragment: fragment.trim().to_owned() })
        .collect()
}

#[test]
fn invalid_objects_are_rejected_with_the_expected_errors() -> Result<(), Error> {
    let validator = Validator::new()?;
    let files = fixtures()?;
    assert!(files.len() >= 12, "only {} invalid fixtures", files.len());
    let mut failures = Vec::new();
    // (lowercase kind, rule): the same rule text on two kinds is two rules to test.
    let mut rules_hit = BTreeSet::new();
    for file in &files {
        let name = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display().to_string();
        let text = std::fs::read_to_string(file)?;
        let expected = expectations(&text);
        let [object] =
            documents(&text)?.try_into().map_err(|_| format!("{name}: want exactly one document"))?;
        let kind = object.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_lowercase();
        let dir = file.parent().and_then(Path::file_name).map(|d| d.to_string_lossy().into_owned());
        if dir.as_deref() != Some(kind.as_str()) {
            failures.push(format!("{name}: a {kind} belongs in invalid/{kind}/"));
        }
        if expected.is_empty() {
            failures.push(format!("{name}: no `# expect: <path>: <message>` line"));
            continue;
        }
        let problems =
            validator.validate(&object).ok_or_else(|| format!("{name}: not a Switchboard kind"))?;
        rules_hit.extend(problems.iter().filter_map(|p| Some((kind.clone(), p.rule.clone()?))));
        for e in &expected {
            if !problems.iter().any(|p| e.matches(p)) {
                failures.push(format!("{name}: expected `{}: {}`, got {problems:#?}", e.path, e.fragment));
            }
        }
        // Anything else is a second, accidental mistake in the fixture that could hide the first.
        for p in problems.iter().filter(|p| !expected.iter().any(|e| e.matches(p))) {
            failures.push(format!("{name}: unexpected `{p}`"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let mut untested = Vec::new();
    for crd in switchboard_crds::all_crds() {
        let mut rules = Vec::new();
        cel_rules(&openapi_schema(&crd)?, &mut rules);
        for (rule, _) in rules {
            if !rules_hit.contains(&(crd.spec.names.kind.to_lowercase(), rule.clone())) {
                untested.push(format!("{}: {rule}", crd.spec.names.kind));
            }
        }
    }
    assert!(untested.is_empty(), "CEL rules no file in crds/tests/invalid/ breaks:\n{}", untested.join("\n"));
    Ok(())
}
