//! Pushed snapshots: accepted object by object, credentials only from the secrets section, no
//! way to make a replica read its own files or environment or reach its network neighbourhood,
//! and secrets never shown.

use switchboard_config::{Credential, ObjectRef, Origin, ProviderConfig, Section, Snapshot};

const HASH_A: &str = "sha256:16d3abffdab01693c41bed2a36e04e5bfe4a60f1bb23f48dbabe6fdfd7c24f68";
const HASH_B: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
const PLANTED: &str = "sk-planted-secret-4f1d";

fn object(kind: &str, name: &str) -> serde_json::Value {
    serde_json::json!({ "kind": kind, "namespace": "team-a", "name": name, "uid": format!("uid-{name}"), "generation": 3 })
}

/// An operator-style snapshot: two providers (one broken as `broken` says), routes on each, a
/// key allowed on both, a policy on the healthy route.
fn pushed(broken_provider: serde_json::Value) -> String {
    serde_json::json!({
        "version": 2,
        "generation": 7,
        "secrets": { "openai-key": format!("{PLANTED}\n") },
        "providers": [
            { "type": "openai", "name": "team-a/openai", "base_url": "https://api.openai.com/v1",
              "api_key": { "secret": "openai-key" }, "source": object("LLMProvider", "openai") },
            broken_provider,
        ],
        "routes": [
            { "model": "gpt-4o", "backends": [{ "provider": "team-a/openai" }], "policies": ["per-minute"],
              "source": object("ModelRoute", "gpt-4o") },
            { "model": "internal", "backends": [{ "provider": "team-a/broken" }],
              "source": object("ModelRoute", "internal") },
        ],
        "keys": [
            { "id": "team-a/search", "hashes": [{ "hash": HASH_A }], "models": ["gpt-4o", "internal"],
              "source": object("VirtualKey", "search") },
        ],
        "policies": [
            { "name": "per-minute", "scope": "key", "window_seconds": 60, "requests": 100,
              "source": object("RateLimitPolicy", "per-minute") },
        ],
    })
    .to_string()
}

fn broken(base_url: &str) -> serde_json::Value {
    serde_json::json!({ "type": "openai", "name": "team-a/broken", "base_url": base_url,
                        "source": object("LLMProvider", "broken") })
}

#[test]
fn one_broken_provider_leaves_out_what_uses_it_and_names_its_object() {
    let accepted = Snapshot::from_pushed_json(&pushed(broken("http://169.254.169.254/latest"))).unwrap();
    let serving: Vec<&str> = accepted.snapshot.routes.iter().map(|r| r.model.as_str()).collect();
    assert_eq!(serving, ["gpt-4o"], "the route on the healthy provider serves");
    assert_eq!(accepted.snapshot.keys.len(), 1, "the key that also named the broken route still serves");
    assert!(accepted.snapshot.validate(Origin::Pushed).is_ok());

    let rejected: Vec<(Section, &str, String)> = accepted
        .rejected
        .iter()
        .map(|r| (r.section, r.name.as_str(), r.object.as_ref().map(ToString::to_string).unwrap_or_default()))
        .collect();
    assert_eq!(
        rejected,
        [
            (Section::Providers, "team-a/broken", "LLMProvider team-a/broken".to_owned()),
            (Section::Routes, "internal", "ModelRoute team-a/internal".to_owned()),
        ]
    );
    let provider = accepted.rejected[0].to_string();
    assert!(provider.starts_with("providers[1].base_url (LLMProvider team-a/broken): "), "{provider}");
    assert!(provider.contains("link-local"), "{provider}");
    let route = accepted.rejected[1].to_string();
    assert_eq!(
        route,
        r#"routes[1].backends[0].provider (ModelRoute team-a/internal): provider "team-a/broken" is not serving (it was rejected)"#
    );
    assert_eq!(accepted.rejected[1].errors[0].object.as_ref().map(|o| o.generation), Some(3));
}

#[test]
fn an_entry_that_does_not_parse_is_rejected_alone() {
    let mut with_typo = broken("https://llm.internal/v1");
    with_typo["timeout_msec"] = serde_json::json!(5);
    let accepted = Snapshot::from_pushed_json(&pushed(with_typo)).unwrap();
    assert_eq!(accepted.snapshot.providers.len(), 1);
    let reason = accepted.rejected[0].to_string();
    assert!(reason.contains("providers[1]") && reason.contains("timeout_msec"), "{reason}");
    assert_eq!(
        accepted.rejected[0].object,
        Some(serde_json::from_value::<ObjectRef>(object("LLMProvider", "broken")).unwrap())
    );
}

#[test]
fn a_rejected_policy_takes_its_bound_entries_with_it() {
    let mut document: serde_json::Value =
        serde_json::from_str(&pushed(broken("https://llm.internal/v1"))).unwrap();
    document["policies"][0]["window_seconds"] = serde_json::json!(0);
    let accepted = Snapshot::from_pushed_json(&document.to_string()).unwrap();
    let names: Vec<&str> = accepted.rejected.iter().map(|r| r.name.as_str()).collect();
    // The route bound to it is left out rather than served without its limit.
    assert_eq!(names, ["gpt-4o", "per-minute"]);
    assert_eq!(accepted.snapshot.routes.len(), 1);
}

#[test]
fn problems_with_the_whole_document_refuse_it() {
    let mut document: serde_json::Value = serde_json::from_str(&pushed(broken("https://x/v1"))).unwrap();
    document["version"] = serde_json::json!(3);
    let errors = Snapshot::from_pushed_json(&document.to_string()).unwrap_err();
    assert_eq!(errors.to_string(), "version: unsupported schema version 3 (this build understands 1 to 2)");
    assert!(Snapshot::from_pushed_json("{\"version\": 2, \"providers\": [").is_err());
}

#[test]
fn pushed_snapshots_take_keys_only_from_their_secrets_section() {
    for credential in
        [r#"{ "env": "HOME" }"#, r#"{ "file": "/var/run/secrets/kubernetes.io/serviceaccount/token" }"#]
    {
        let mut provider = broken("https://api.example.com/v1");
        provider["api_key"] = serde_json::from_str(credential).unwrap();
        let accepted = Snapshot::from_pushed_json(&pushed(provider.clone())).unwrap();
        let reason = accepted.rejected[0].to_string();
        assert!(reason.contains("not allowed in a pushed snapshot"), "{reason}");

        let file = serde_json::json!({ "version": 2, "providers": [provider] });
        let snapshot: Snapshot = serde_json::from_value(file).unwrap();
        assert!(
            snapshot.validate(Origin::File).is_ok(),
            "a standalone file may read its own environment and files"
        );
    }
}

#[test]
fn local_and_metadata_addresses_are_refused_unless_allowed() {
    let refused_pushed = [
        "http://169.254.169.254/v1",
        "http://[fd00:ec2::254]/v1",
        "http://metadata.google.internal/v1",
        "http://0.0.0.0:8000/v1",
        "http://127.0.0.1:11434/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
    ];
    for url in refused_pushed {
        let accepted = Snapshot::from_pushed_json(&pushed(broken(url))).unwrap();
        assert_eq!(accepted.rejected.len(), 2, "{url} should be refused in a pushed snapshot");
        let mut allowed = broken(url);
        allowed["allow_private_network"] = serde_json::json!(true);
        let accepted = Snapshot::from_pushed_json(&pushed(allowed)).unwrap();
        assert!(accepted.rejected.is_empty(), "{url} with allow_private_network: {:?}", accepted.rejected);
    }
    // A file's author owns the machine: loopback (Ollama on localhost) is fine there, the
    // metadata endpoint is not.
    let file = |url: &str| {
        let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "version": 2, "providers": [{ "type": "openai", "name": "p", "base_url": url }]
        }))
        .unwrap();
        snapshot.validate(Origin::File)
    };
    assert!(file("http://127.0.0.1:11434/v1").is_ok());
    assert!(file("http://169.254.169.254/v1").is_err());
}

#[test]
fn secrets_are_trimmed_and_never_shown() {
    let accepted = Snapshot::from_pushed_json(&pushed(broken("https://bad host/v1"))).unwrap();
    let secret = &accepted.snapshot.secrets["openai-key"];
    assert_eq!(secret.expose(), PLANTED, "a Secret ending in a newline is trimmed");
    let ProviderConfig::OpenAi(openai) = &accepted.snapshot.providers[0] else { unreachable!() };
    assert_eq!(openai.api_key, Some(Credential::Secret("openai-key".into())));

    let shown = [
        format!("{accepted:?}"),
        format!("{:?}", accepted.snapshot),
        accepted.rejected.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
    ];
    for text in shown {
        assert!(!text.contains(PLANTED), "the secret leaked: {text}");
    }
    // A secret that is not a valid header value is refused without echoing it.
    let mut document: serde_json::Value = serde_json::from_str(&pushed(broken("https://x/v1"))).unwrap();
    document["secrets"]["openai-key"] = serde_json::json!(format!("{PLANTED}\u{7}bell"));
    let accepted = Snapshot::from_pushed_json(&document.to_string()).unwrap();
    let reason = accepted.rejected[0].to_string();
    assert!(reason.contains("api_key.secret") && !reason.contains(PLANTED), "{reason}");
}

#[test]
fn a_url_with_credentials_is_refused_without_echoing_them() {
    let accepted =
        Snapshot::from_pushed_json(&pushed(broken("https://user:hunter2@llm.example.com/v1"))).unwrap();
    let reason = accepted.rejected[0].to_string();
    assert!(reason.contains("user:password@") && !reason.contains("hunter2"), "{reason}");
}

#[test]
fn a_key_may_carry_several_hashes_but_no_hash_twice() {
    let document = serde_json::json!({
        "version": 2,
        "keys": [
            { "id": "a", "hashes": [{ "hash": HASH_A }, { "hash": HASH_B, "expires_at": "2027-01-01T00:00:00Z" }] },
            { "id": "b", "hash": HASH_B },
        ],
    });
    let accepted = Snapshot::from_pushed_json(&document.to_string()).unwrap();
    assert_eq!(accepted.snapshot.keys.len(), 1);
    assert_eq!(accepted.rejected[0].to_string(), "keys[1].hash: same hash as keys[0]");
}
