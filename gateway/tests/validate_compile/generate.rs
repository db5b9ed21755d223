//! The generator of the `validate ⇒ compile` property test: snapshots as JSON, from pools of
//! valid and adversarial values (URLs, addresses, header names and values, credentials,
//! references, ranges, digests, times). Each case first draws how adversarial it is, so both
//! verdicts of `validate` are common.

use crate::providers::{bedrock_provider, mock_provider, openai_provider, secret_text};
use proptest::prelude::*;
use serde_json::{Value, json};

/// `good` most of the time; `bad` with probability `bad_per_mille`/1000.
pub(crate) fn either<T: std::fmt::Debug + Clone + 'static>(
    bad_per_mille: u32,
    good: impl Strategy<Value = T> + 'static,
    bad: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    if bad_per_mille == 0 {
        good.boxed()
    } else {
        prop_oneof![1000 - bad_per_mille => good, bad_per_mille => bad].boxed()
    }
}

pub(crate) fn one_of(values: &[&str]) -> BoxedStrategy<String> {
    let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
    proptest::sample::select(values).boxed()
}

fn object_ref(kind: &'static str) -> impl Strategy<Value = Value> {
    (one_of(&["team-a", "team-b"]), one_of(&["vllm", "chat", "x"]), 0i64..3)
        .prop_map(move |(namespace, name, generation)| {
            json!({ "kind": kind, "namespace": namespace, "name": name, "uid": "u-1", "generation": generation })
        })
}

pub(crate) fn source(bad: u32, kind: &'static str) -> BoxedStrategy<Option<Value>> {
    // A source is valid in version 2 and a version-2 feature in version 1.
    either(bad, Just(None), proptest::option::of(object_ref(kind)))
}

/// A name as written: the intended one, or (sometimes) an empty, spaced, overlong or duplicate one.
fn name(bad: u32, intended: &'static str, others: &[&'static str]) -> BoxedStrategy<String> {
    let mut wrong: Vec<String> = vec!["".into(), "has space".into(), "bell\u{7}".into(), "x".repeat(254)];
    wrong.extend(others.iter().map(|o| (*o).to_owned()));
    either(bad, Just(intended.to_owned()), proptest::sample::select(wrong))
}

/// References to entries of one section: existing ones, and (sometimes) missing ones.
fn refs(
    bad: u32,
    existing: &[&'static str],
    missing: &'static str,
    max: usize,
) -> BoxedStrategy<Vec<String>> {
    let one = if existing.is_empty() {
        Just(missing.to_owned()).boxed()
    } else {
        let existing: Vec<String> = existing.iter().map(|s| (*s).to_owned()).collect();
        either(bad, proptest::sample::select(existing), Just(missing.to_owned()))
    };
    let max = if existing.is_empty() { usize::from(bad > 0) } else { max };
    proptest::collection::vec(one, 0..=max).boxed()
}

fn backend(bad: u32, providers: &[&'static str]) -> BoxedStrategy<Value> {
    let providers: Vec<String> = providers.iter().map(|s| (*s).to_owned()).collect();
    (
        either(bad, proptest::sample::select(providers), one_of(&["missing", "", "OpenAI"])),
        proptest::option::of(either(bad, one_of(&["gpt-4o-mini", "llama-3"]), one_of(&["", "has space"]))),
        either(bad, 1u32..=10_000, prop_oneof![Just(0u32), 10_001u32..=20_000]),
        prop_oneof![Just(0u32), 0u32..4, Just(u32::MAX)],
    )
        .prop_map(|(provider, model, weight, priority)| {
            let mut b = json!({ "provider": provider, "weight": weight, "priority": priority });
            if let Some(model) = model {
                b["model"] = json!(model);
            }
            b
        })
        .boxed()
}

fn route(bad: u32, model: &'static str, names: &Names) -> BoxedStrategy<Value> {
    (
        name(bad, model, ROUTES),
        either(
            bad,
            proptest::collection::vec(backend(bad, &names.providers), 1..4),
            proptest::collection::vec(backend(bad, &names.providers), 0..2),
        ),
        refs(bad, &names.policies, "no-such-policy", 2),
        source(bad, "ModelRoute"),
    )
        .prop_map(|(model, backends, policies, source)| {
            let mut r = json!({ "model": model, "backends": backends, "policies": policies });
            if let Some(source) = source {
                r["source"] = source;
            }
            r
        })
        .boxed()
}

fn time(bad: u32) -> BoxedStrategy<String> {
    either(
        bad,
        one_of(&[
            "2026-12-31T23:59:59Z",
            "2024-02-29T00:00:00Z",
            "2026-11-24T01:00:00+01:00",
            "2026-11-23T23:00:00.250-01:00",
            "1970-01-01t00:00:00z",
            "2030-06-30 12:00:60Z",
        ]),
        one_of(&[
            "2026-11-24",
            "yesterday",
            "",
            "2026-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-11-24T00:00:00",
            "2026-11-24T24:00:00Z",
            "2026-11-24T00:00:00+1:00",
            "2026-11-24T00:00:00.Z",
            "2026-11-24T00:00:00+99:99",
            "2026-11-24T00:00:00ü",
            "２026-11-24T00:00:00Z",
            "+2026-11-24T00:00:00Z",
        ]),
    )
}

fn digest_hex() -> impl Strategy<Value = String> {
    proptest::array::uniform32(any::<u8>())
        .prop_map(|bytes| bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn key_hash(bad: u32) -> BoxedStrategy<String> {
    let good = prop_oneof![
        digest_hex().prop_map(|hex| format!("sha256:{hex}")),
        digest_hex().prop_map(|hex| format!("sha256:{}", hex.to_uppercase())),
    ];
    let wrong = prop_oneof![
        digest_hex().prop_map(|hex| format!("sha256:{}", &hex[1..])),
        digest_hex().prop_map(|hex| format!("sha256:{}g", &hex[1..])),
        digest_hex().prop_map(|hex| format!("sha256:{hex}0")),
        digest_hex().prop_map(|hex| format!("md5:{hex}")),
        digest_hex().prop_map(|hex| format!("sha256:{}é", &hex[2..])),
        Just("sk-the-key-itself".to_owned()),
        Just(String::new()),
        // The same hash as another key (and as a second hash of the same key).
        Just(format!("sha256:{}", "ab".repeat(32))),
    ];
    either(bad, good, wrong)
}

fn hash_entry(bad: u32) -> impl Strategy<Value = Value> {
    (key_hash(bad), proptest::option::of(time(bad)), proptest::option::of(time(bad))).prop_map(
        |(hash, not_before, expires_at)| {
            let mut h = json!({ "hash": hash });
            if let Some(t) = not_before {
                h["not_before"] = json!(t);
            }
            if let Some(t) = expires_at {
                h["expires_at"] = json!(t);
            }
            h
        },
    )
}

fn key(bad: u32, id: &'static str, names: &Names) -> BoxedStrategy<Value> {
    let mut models: Vec<String> = names.routes.iter().map(|s| (*s).to_owned()).collect();
    models.push("*".to_owned());
    let listed = proptest::sample::subsequence(models.clone(), 1..=models.len());
    // Naming a model no route has: refused in a file, allowed when pushed (the key cannot use it).
    let with_unknown = listed.clone().prop_map(|mut m| {
        m.push("no-such-model".to_owned());
        m
    });
    let good_models = proptest::option::of(prop_oneof![3 => listed, 1 => with_unknown]);
    let bad_models = prop_oneof![Just(Some(Vec::new())), Just(Some(vec!["no-such-model".to_owned()]))];
    let labels = either(
        bad,
        proptest::collection::btree_map(one_of(&["team", "owner"]), one_of(&["search", "alice", ""]), 0..3),
        proptest::collection::btree_map(
            one_of(&["team", "has space", ""]),
            prop_oneof![one_of(&["bell\u{7}", "ok"]), Just("x".repeat(254))],
            1..3,
        ),
    );
    // `hash`, `hashes`, both, or (sometimes) neither.
    let hashes = either(
        bad,
        prop_oneof![
            key_hash(bad).prop_map(|h| (Some(h), Vec::new())),
            proptest::collection::vec(hash_entry(bad), 1..3).prop_map(|hs| (None, hs)),
            (key_hash(bad), proptest::collection::vec(hash_entry(bad), 1..3))
                .prop_map(|(h, hs)| (Some(h), hs)),
        ],
        Just((None, Vec::new())),
    );
    (
        name(bad, id, KEYS),
        labels,
        hashes,
        either(bad, good_models, bad_models),
        any::<bool>(),
        proptest::option::of(time(bad)),
        refs(bad, &names.policies, "no-such-policy", 2),
        source(bad, "VirtualKey"),
    )
        .prop_map(|(id, labels, (hash, hashes), models, disabled, expires_at, policies, source)| {
            let mut k = json!({ "id": id, "labels": labels, "hashes": hashes, "disabled": disabled, "policies": policies });
            if let Some(hash) = hash {
                k["hash"] = json!(hash);
            }
            if let Some(models) = models {
                k["models"] = json!(models);
            }
            if let Some(t) = expires_at {
                k["expires_at"] = json!(t);
            }
            if let Some(source) = source {
                k["source"] = source;
            }
            k
        })
        .boxed()
}

fn policy(bad: u32, policy_name: &'static str) -> BoxedStrategy<Value> {
    let count =
        || either(bad, proptest::option::of(prop_oneof![1u64..1000, Just(u64::MAX)]), Just(Some(0u64)));
    let usd = either(
        bad,
        proptest::option::of(one_of(&["25.00", "0.5", "12.000001", "999999999999.999999", "7"])),
        proptest::option::of(one_of(&[
            "0",
            "0.0",
            "1e3",
            "-1",
            "",
            "1.",
            ".5",
            "1.0000001",
            "ten",
            "9999999999999",
        ])),
    );
    let window = either(
        bad,
        prop_oneof![Just(1u64), Just(60), Just(86_400), Just(2_678_400)].prop_map(Some),
        prop_oneof![Just(Some(0u64)), Just(Some(2_678_401u64)), Just(None)],
    );
    // A valid policy sets at least `requests`; without it (and perhaps without any other limit,
    // or with only `concurrent_requests` and no window) it may still be valid.
    let requests = either(bad, (1u64..1000).prop_map(Some), prop_oneof![Just(None), Just(Some(0u64))]);
    (
        name(bad, policy_name, POLICIES),
        one_of(&["key", "route", "key_route"]),
        window,
        (requests, count(), count(), count(), count()),
        usd,
        one_of(&["local", "redis"]),
        one_of(&["open", "closed"]),
        source(bad, "RateLimitPolicy"),
    )
        .prop_map(|(name, scope, window, counts, usd, mode, failure_mode, source)| {
            let (requests, input_tokens, output_tokens, total_tokens, concurrent) = counts;
            let mut p = json!({ "name": name, "scope": scope, "mode": mode, "failure_mode": failure_mode });
            for (field, value) in [
                ("window_seconds", window),
                ("requests", requests),
                ("input_tokens", input_tokens),
                ("output_tokens", output_tokens),
                ("total_tokens", total_tokens),
                ("concurrent_requests", concurrent),
            ] {
                if let Some(value) = value {
                    p[field] = json!(value);
                }
            }
            if let Some(usd) = usd {
                p["usd"] = json!(usd);
            }
            if let Some(source) = source {
                p["source"] = source;
            }
            p
        })
        .boxed()
}

const PROVIDERS: &[&str] = &["openai", "vllm", "mock", "local", "cloud", "bedrock"];
const ROUTES: &[&str] = &["chat", "embed", "fast", "*"];
const KEYS: &[&str] = &["team-a", "team-b", "ci"];
const POLICIES: &[&str] = &["per-minute", "budget"];
const SECRETS: &[&str] = &["openai-key", "org-id"];

/// The entries one case has, so references can name them (or, sometimes, not).
#[derive(Debug, Clone)]
struct Names {
    providers: Vec<&'static str>,
    routes: Vec<&'static str>,
    keys: Vec<&'static str>,
    policies: Vec<&'static str>,
    secrets: Vec<&'static str>,
}

fn names() -> impl Strategy<Value = Names> {
    use proptest::sample::subsequence;
    (
        subsequence(PROVIDERS, 1..=PROVIDERS.len()),
        subsequence(ROUTES, 0..=3),
        subsequence(KEYS, 0..=KEYS.len()),
        subsequence(POLICIES, 0..=POLICIES.len()),
        subsequence(SECRETS, 0..=SECRETS.len()),
    )
        .prop_map(|(providers, routes, keys, policies, secrets)| Names {
            providers,
            routes,
            keys,
            policies,
            secrets,
        })
}

/// One snapshot as JSON. `bad` (per mille) is how often each value is drawn from the adversarial
/// pools: 0 for a quarter of the cases, so the generator is not all invalid. `operator` says
/// whether provider keys are written the operator's way (references into `secrets`).
fn snapshot_json() -> impl Strategy<Value = Value> {
    let how_bad = prop_oneof![Just(0u32), Just(5), Just(30), Just(150)];
    (how_bad, any::<bool>(), names()).prop_flat_map(|(bad, operator, names)| {
        let providers: Vec<BoxedStrategy<Value>> = names
            .providers
            .iter()
            .map(|&n| {
                let name = name(bad, n, PROVIDERS);
                let secrets = names.secrets.clone();
                if n == "mock" {
                    name.prop_flat_map(move |name| mock_provider(bad, name)).boxed()
                } else if n == "cloud" {
                    name.prop_flat_map(move |name| {
                        crate::cloud::cloud_provider(bad, name, &secrets, operator)
                    })
                    .boxed()
                } else if n == "bedrock" {
                    name.prop_flat_map(move |name| bedrock_provider(bad, name, &secrets, operator)).boxed()
                } else {
                    name.prop_flat_map(move |name| openai_provider(bad, name, &secrets, operator)).boxed()
                }
            })
            .collect();
        let routes: Vec<BoxedStrategy<Value>> = names.routes.iter().map(|&m| route(bad, m, &names)).collect();
        let keys: Vec<BoxedStrategy<Value>> = names.keys.iter().map(|&k| key(bad, k, &names)).collect();
        let policies: Vec<BoxedStrategy<Value>> = names.policies.iter().map(|&p| policy(bad, p)).collect();
        let mut secrets: Vec<BoxedStrategy<Option<(String, String)>>> = names
            .secrets
            .iter()
            .map(|&s| secret_text(bad).prop_map(move |v| Some((s.to_owned(), v))).boxed())
            .collect();
        // An unreferenced entry whose name is not a valid secret name.
        let bad_name = one_of(&["has space", "", "tab\there"]).prop_map(|n| Some((n, "sk-x".to_owned())));
        secrets.push(either(bad, Just(None), bad_name));
        (
            either(bad, Just(2u32), prop_oneof![Just(1u32), Just(3), Just(0)]),
            any::<u64>(),
            (providers, routes, keys, policies, secrets),
            either(bad, Just(false), Just(true)),
        )
            .prop_map(
                |(version, generation, (providers, routes, keys, policies, secrets), limits)| {
                    let secrets: serde_json::Map<String, Value> =
                        secrets.into_iter().flatten().map(|(k, v)| (k, json!(v))).collect();
                    json!({
                        "version": version,
                        "generation": generation,
                        "providers": providers,
                        "routes": routes,
                        "keys": keys,
                        "policies": policies,
                        "secrets": secrets,
                        "limits": if limits { json!([{ "requests": 1 }]) } else { json!([]) },
                    })
                },
            )
    })
}

/// A generated document, shown as JSON when a property fails (proptest prints the shrunk one).
#[derive(Clone)]
pub struct Document(pub Value);

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string_pretty(&self.0).unwrap_or_default())
    }
}

pub fn document() -> impl Strategy<Value = Document> {
    snapshot_json().prop_map(Document)
}
