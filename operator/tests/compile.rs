//! Golden tests of the pure compile: `tests/fixtures/<case>.yaml` (manifests, one case per rule)
//! → `tests/golden/<case>.yaml` (the snapshot, every status, the Secrets to generate).
//!
//! Regenerate after an intended change, then review the diff:
//!     UPDATE_GOLDEN=1 cargo test -p switchboard-operator --test compile && git diff operator/tests/golden

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use switchboard_config::stream::Served;
use switchboard_config::{FailureMode, Origin, PolicyMode, PolicyScope};
use switchboard_operator::compile::Fleet;
use switchboard_operator::publish::ReplicaState;
use switchboard_operator::{Compiled, Inputs, ObjectStatus, compile};

fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(name)
}

fn inputs(case: &str) -> Inputs {
    let text = std::fs::read_to_string(dir("fixtures").join(format!("{case}.yaml"))).unwrap();
    let now = Time("2026-12-01T12:00:00Z".parse().unwrap());
    let mut inputs = Inputs { generation: 7, now: Some(now), ..Inputs::default() };
    inputs.add_yaml(&text).unwrap_or_else(|e| panic!("{case}: {e}"));
    inputs
}

fn render(compiled: &Compiled) -> String {
    let report = serde_json::json!({
        "snapshot": compiled.snapshot,
        "statuses": compiled.statuses,
        "generate": compiled.generate,
    });
    serde_yaml_ng::to_string(&report).unwrap()
}

fn status<'a>(compiled: &'a Compiled, kind: &str, namespace: &str, name: &str) -> &'a ObjectStatus {
    compiled
        .statuses
        .iter()
        .find(|s| s.object.kind == kind && s.object.namespace == namespace && s.object.name == name)
        .unwrap_or_else(|| panic!("no status for {kind} {namespace}/{name}"))
}

/// `type=status/reason` of each condition, e.g. `Accepted=False/Conflict`.
fn conditions(status: &ObjectStatus) -> Vec<String> {
    status.conditions.iter().map(|c| format!("{}={}/{}", c.type_, c.status, c.reason)).collect()
}

fn message<'a>(status: &'a ObjectStatus, type_: &str) -> &'a str {
    &status.conditions.iter().find(|c| c.type_ == type_).unwrap().message
}

#[test]
fn every_fixture_matches_its_golden() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<String> = std::fs::read_dir(dir("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    cases.sort();
    assert!(cases.len() >= 7, "fixtures missing: {cases:?}");
    let mut stale = Vec::new();
    for case in &cases {
        let inputs = inputs(case);
        let compiled = compile(&inputs);
        // Whatever the objects say, the operator only ever sends what replicas will serve.
        compiled.snapshot.validate(Origin::Pushed).unwrap_or_else(|e| panic!("{case}: {e}"));
        let objects =
            inputs.providers.len() + inputs.routes.len() + inputs.keys.len() + inputs.policies.len();
        assert_eq!(compiled.statuses.len(), objects, "{case}: one status per object");
        let rendered = render(&compiled);
        let golden = dir("golden").join(format!("{case}.yaml"));
        if update {
            std::fs::write(&golden, &rendered).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(rendered.as_str()) {
            stale.push(case.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "goldens differ for {stale:?}; if the change is intended, run\n  \
         UPDATE_GOLDEN=1 cargo test -p switchboard-operator --test compile\nand review `git diff operator/tests/golden`"
    );
}

#[test]
fn the_same_inputs_in_any_order_give_a_byte_identical_snapshot() {
    for case in ["every-field", "route-conflicts", "dangling-references", "generated-keys"] {
        let forward = inputs(case);
        let mut backward = forward.clone();
        backward.providers.reverse();
        backward.routes.reverse();
        backward.keys.reverse();
        backward.policies.reverse();
        backward.secrets.reverse();
        let (a, b) = (compile(&forward), compile(&backward));
        assert_eq!(a.snapshot.to_json(), b.snapshot.to_json(), "{case}");
        assert_eq!(render(&a), render(&b), "{case}");
    }
}

#[test]
fn the_older_route_wins_a_model_name() {
    let compiled = compile(&inputs("route-conflicts"));
    let models: Vec<_> = compiled
        .snapshot
        .routes
        .iter()
        .map(|r| (r.model.as_str(), r.source.as_ref().unwrap().to_string()))
        .collect();
    assert_eq!(
        models,
        [("gpt-4o", "ModelRoute team-a/gpt".to_owned()), ("twin", "ModelRoute team-a/twin-a".to_owned())]
    );
    let loser = status(&compiled, "ModelRoute", "team-b", "gpt");
    assert_eq!(
        conditions(loser),
        ["Accepted=False/Conflict", "ResolvedRefs=True/ResolvedRefs", "Programmed=False/Conflict"]
    );
    assert!(message(loser, "Accepted").contains("older ModelRoute team-a/gpt"));
    let invalid = status(&compiled, "ModelRoute", "team-c", "broken-gpt");
    assert_eq!(message(invalid, "Accepted"), "spec.backends[0].weight: must be between 1 and 10000");
}

#[test]
fn dangling_references_name_what_is_missing_and_the_rest_serves() {
    let compiled = compile(&inputs("dangling-references"));
    let partly = compiled.snapshot.routes.iter().find(|r| r.model == "partly").unwrap();
    assert_eq!(partly.backends.len(), 1, "served with the one backend that resolves");
    let status_of = |name| status(&compiled, "ModelRoute", "team-a", name);
    assert_eq!(conditions(status_of("partly"))[1], "ResolvedRefs=False/RefNotFound");
    assert!(message(status_of("partly"), "ResolvedRefs").contains("LLMProvider team-a/ghost"));
    assert_eq!(conditions(status_of("nowhere"))[2], "Programmed=False/RefNotFound");
    assert_eq!(conditions(status_of("unlimited"))[2], "Programmed=False/RefNotFound");
    let provider = status(&compiled, "LLMProvider", "team-a", "no-key");
    assert_eq!(conditions(provider)[1], "ResolvedRefs=False/SecretNotFound");
    assert_eq!(message(provider, "ResolvedRefs"), r#"Secret team-a/partial has no key "api-key""#);
    let hopeful = compiled.snapshot.keys.iter().find(|k| k.id == "team-a/hopeful");
    assert!(hopeful.is_some(), "a key naming a model without a route still serves");
    assert!(compiled.snapshot.keys.iter().all(|k| k.id != "team-a/unlimited"));
    let served: Vec<_> = compiled.snapshot.providers.iter().map(|p| p.name()).collect();
    assert_eq!(served, ["team-a/mock"]);
}

#[test]
fn invalid_objects_get_their_field_path_and_never_block_the_rest() {
    let compiled = compile(&inputs("invalid-objects"));
    let accepted = |kind, name| {
        let s = status(&compiled, kind, "team-a", name);
        (conditions(s)[0].clone(), message(s, "Accepted").to_owned())
    };
    let (condition, message) = accepted("LLMProvider", "metadata");
    assert_eq!(condition, "Accepted=False/Invalid");
    assert!(message.starts_with("spec.baseURL: host \"169.254.169.254\" is refused"), "{message}");
    assert!(accepted("LLMProvider", "loopback").1.starts_with("spec.baseURL: "));
    let (_, userinfo) = accepted("LLMProvider", "credentials-in-url");
    assert!(userinfo.contains("user:password@") && !userinfo.contains("hunter2"), "{userinfo}");
    assert_eq!(accepted("LLMProvider", "zero-timeout").1, "spec.timeouts.request: must be greater than 0s");
    assert_eq!(accepted("ModelRoute", "negative").1, "spec.backends[0].priority: must not be negative");
    assert!(accepted("ModelRoute", "spaces").1.starts_with("spec.model: "));
    assert!(accepted("RateLimitPolicy", "sub-second").1.starts_with("spec.window: "));
    assert!(accepted("RateLimitPolicy", "bad-usd").1.starts_with("spec.limits.usd: "));
    let (condition, daily) = accepted("RateLimitPolicy", "bad-daily");
    assert_eq!(condition, "Accepted=False/Invalid");
    assert!(daily.starts_with("spec.limits.dailyUsd: must be more than 0"), "{daily}");
    assert!(daily.contains("; spec.limits.monthlyUsd: "), "{daily}");
    let (condition, price) = accepted("ModelRoute", "bad-price");
    assert_eq!(condition, "Accepted=False/Invalid");
    assert!(price.starts_with("spec.backends[1].price.cacheRead: "), "{price}");
    assert!(!price.contains("price.input"), "{price}");
    let (condition, budget) = accepted("VirtualKey", "bad-budget");
    assert_eq!(condition, "Accepted=False/Invalid");
    assert_eq!(budget, "spec.budget.dailyUsd: must be more than 0");
    assert!(compiled.snapshot.keys.iter().all(|k| k.id != "team-a/bad-budget"), "never served without it");
    let served: Vec<_> = compiled.snapshot.routes.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(served, ["fine"], "the valid route serves, on its valid backend");
}

#[test]
fn rotation_keeps_the_previous_key_until_it_expires() {
    let compiled = compile(&inputs("secret-rotation"));
    let rotating = compiled.snapshot.keys.iter().find(|k| k.id == "team-a/rotating").unwrap();
    let windows: Vec<_> = rotating.hashes.iter().map(|h| h.expires_at.clone()).collect();
    assert_eq!(windows, [None, Some("2026-12-15T00:00:00Z".to_owned())]);
    assert_eq!(compiled.snapshot.secrets["team-a/openai/api-key"].expose(), "sk-openai-rotated-456");
    let half = status(&compiled, "VirtualKey", "team-a", "half-rotated");
    assert_eq!(conditions(half)[1], "ResolvedRefs=False/SecretNotFound");
    assert!(compiled.snapshot.keys.iter().any(|k| k.id == "team-a/half-rotated"));
    assert_eq!(half.key_id.as_deref(), Some("team-a/half-rotated"));
    let text = render(&compiled);
    assert!(!text.contains("sk-sb-december"), "a virtual key never enters the snapshot or statuses");
}

#[test]
fn a_missing_key_secret_is_generated_and_an_existing_one_never_overwritten() {
    let compiled = compile(&inputs("generated-keys"));
    let generated: Vec<_> =
        compiled.generate.iter().map(|g| (g.name.as_str(), g.key.as_str(), g.owner.uid.as_str())).collect();
    assert_eq!(generated, [("fresh-key", "key", "u-fresh")]);
    assert_eq!(conditions(status(&compiled, "VirtualKey", "team-a", "fresh"))[2], "Programmed=False/Pending");
    assert_eq!(
        conditions(status(&compiled, "VirtualKey", "team-a", "wrong-entry"))[1],
        "ResolvedRefs=False/SecretNotFound"
    );
    assert_eq!(conditions(status(&compiled, "VirtualKey", "team-a", "second"))[0], "Accepted=False/Conflict");
    let ids: Vec<_> = compiled.snapshot.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["team-a/first"]);
}

#[test]
fn prices_budgets_and_team_budgets_are_translated() {
    let compiled = compile(&inputs("every-field"));
    let chat = compiled.snapshot.routes.iter().find(|r| r.model == "chat").unwrap();
    let price = |model: &str| {
        let backend = chat.backends.iter().find(|b| b.model.as_deref() == Some(model)).unwrap();
        let p = backend.price.as_ref().unwrap();
        [&p.input, &p.output, &p.cache_read, &p.cache_write].map(|a| a.as_deref().unwrap_or("-")).join(" ")
    };
    assert_eq!(price("gpt-4o-mini"), "0.15 0.60 0.075 0.1875");
    assert_eq!(price("meta-llama/Llama-3.1-8B-Instruct"), "0 0 - -", "a free model");
    assert!(chat.backends.iter().any(|b| b.price.is_none()), "no price: the contract's None");

    let search = compiled.snapshot.keys.iter().find(|k| k.id == "team-a/search").unwrap();
    let budget = search.budget.as_ref().unwrap();
    assert_eq!((budget.daily_usd.as_deref(), budget.monthly_usd.as_deref()), (Some("5.00"), Some("100")));
    assert_eq!((budget.mode, budget.failure_mode), (PolicyMode::Local, FailureMode::Closed));
    assert_eq!(search.team(), Some("search"), "team-scoped policies count by this label");

    let team = compiled.snapshot.policies.iter().find(|p| p.name == "team-a/team-daily").unwrap();
    assert_eq!(team.scope, PolicyScope::Team);
    assert_eq!((team.daily_usd.as_deref(), team.monthly_usd.as_deref()), (Some("50"), Some("1000.50")));
    assert_eq!(team.window_seconds, None, "calendar budgets need no window");
    assert!(search.policies.contains(&team.name));
}

#[test]
fn referenced_policies_are_programmed_unreferenced_ones_not_enforced_and_transition_times_hold() {
    let compiled = compile(&inputs("policies"));
    assert_eq!(compiled.snapshot.policies.len(), 3, "every valid policy is sent");
    let idle = status(&compiled, "RateLimitPolicy", "team-a", "idle");
    assert_eq!(
        conditions(idle),
        ["Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs", "Programmed=False/NotEnforced"]
    );
    assert_eq!(message(idle, "Programmed"), "no ModelRoute or VirtualKey references it");
    // Referenced by the route: Programmed as the fleet reports it, Pending until replicas ack.
    let pair = status(&compiled, "RateLimitPolicy", "team-a", "per-pair");
    assert_eq!(
        conditions(pair),
        ["Accepted=True/Accepted", "ResolvedRefs=True/ResolvedRefs", "Programmed=Unknown/Pending"]
    );
    let time = |type_: &str| {
        pair.conditions.iter().find(|c| c.type_ == type_).unwrap().last_transition_time.0.to_string()
    };
    assert_eq!(time("Accepted"), "2026-11-01T00:00:05Z", "same status: the transition time holds");
    assert_eq!(time("ResolvedRefs"), "2026-12-01T12:00:00Z", "False → True: a new transition");
    assert_eq!(time("Programmed"), "2026-12-01T12:00:00Z", "NotEnforced (False) → Pending: a transition");
    assert!(pair.changed);
    // Compiling again on top of the statuses just written changes nothing: no status write.
    let mut again = inputs("policies");
    for policy in &mut again.policies {
        let status = status(&compiled, "RateLimitPolicy", "team-a", policy.metadata.name.as_deref().unwrap());
        let current = std::sync::Arc::make_mut(policy).status.get_or_insert_with(Default::default);
        current.conditions = status.conditions.clone();
        current.observed_generation = status.observed_generation;
    }
    let recompiled = compile(&again);
    assert!(recompiled.statuses.iter().filter(|s| s.object.kind == "RateLimitPolicy").all(|s| !s.changed));
}

#[test]
fn a_referenced_policy_is_programmed_once_the_fleet_runs_it() {
    let mut inputs = inputs("policies");
    let served_since = ["per-pair", "budget", "idle"]
        .map(|name| (("RateLimitPolicy".to_owned(), "team-a".to_owned(), name.to_owned()), (1, 7)));
    let replica = ReplicaState {
        replica: "gw-0".into(),
        connected: true,
        version: 2,
        applied: Some(Served { generation: 7, hash: "h".into() }),
        rejected: Vec::new(),
        refused: None,
        left_at: None,
    };
    inputs.fleet = Some(Fleet { replicas: vec![replica], served_since: Arc::new(served_since.into()) });
    let compiled = compile(&inputs);
    let budget = status(&compiled, "RateLimitPolicy", "team-a", "budget");
    assert_eq!(conditions(budget)[2], "Programmed=True/Programmed");
    assert_eq!(message(budget, "Programmed"), "1/1 replicas at generation 7");
    let idle = status(&compiled, "RateLimitPolicy", "team-a", "idle");
    assert_eq!(conditions(idle)[2], "Programmed=False/NotEnforced", "the fleet runs it, nothing binds it");
}

#[test]
fn the_kubernetes_examples_compile_cleanly() {
    let mut inputs = Inputs { generation: 1, ..Inputs::default() };
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for file in &files {
        inputs
            .add_yaml(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    assert!(
        !inputs.providers.is_empty()
            && !inputs.routes.is_empty()
            && !inputs.keys.is_empty()
            && !inputs.policies.is_empty()
    );
    let compiled = compile(&inputs);
    for status in &compiled.statuses {
        let shown = conditions(status);
        assert_eq!(shown[0], "Accepted=True/Accepted", "{}: {shown:?}", status.object);
        let pending_key = compiled.generate.iter().any(|g| g.owner.name == status.object.name);
        assert!(shown[1] == "ResolvedRefs=True/ResolvedRefs" || pending_key, "{}: {shown:?}", status.object);
    }
    assert_eq!(compiled.snapshot.routes.len(), inputs.routes.len(), "every example route serves");
    assert_eq!(compiled.snapshot.providers.len(), inputs.providers.len());
}

#[test]
fn a_generated_key_secret_is_owned_by_its_key_and_serves_on_the_next_compile() {
    let mut inputs = inputs("generated-keys");
    let compiled = compile(&inputs);
    let [wanted] = compiled.generate.as_slice() else { panic!("{:?}", compiled.generate) };
    let key = switchboard_operator::generate::new_key().unwrap();
    let secret = wanted.to_secret(&key);
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        ("VirtualKey", "fresh", "u-fresh")
    );
    assert_eq!(owner.controller, Some(true), "deleting the VirtualKey deletes the Secret");

    inputs.secrets.push(std::sync::Arc::new(secret));
    let next = compile(&inputs);
    assert!(next.generate.is_empty());
    let fresh = next.snapshot.keys.iter().find(|k| k.id == "team-a/fresh").unwrap();
    let digest: [u8; 32] = sha2::Sha256::digest(key.expose().as_bytes()).into();
    assert_eq!(fresh.hashes[0].hash, switchboard_config::hash_key(&digest));
    assert_eq!(
        conditions(status(&next, "VirtualKey", "team-a", "fresh"))[1],
        "ResolvedRefs=True/ResolvedRefs"
    );
}
