//! The skew policy (docs/config.md, "Versions"): a gateway reads schema versions N and N−1; an
//! operator writes N, or N−1 for a replica that reads no newer; anything else is refused whole.

use switchboard_config::{Origin, SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS, Snapshot};

const HASH_A: &str = "sha256:16d3abffdab01693c41bed2a36e04e5bfe4a60f1bb23f48dbabe6fdfd7c24f68";

/// What an operator of this release sends: secrets, provenance, a key id with one hash.
#[expect(clippy::unwrap_used, reason = "a fixed fixture; failing to parse it is a failed test")]
fn operator_snapshot() -> Snapshot {
    serde_json::from_value(serde_json::json!({
        "version": 2,
        "generation": 12,
        "secrets": { "k": "sk-upstream" },
        "providers": [
            { "type": "openai", "name": "ns/openai", "base_url": "https://api.openai.com/v1",
              "api_key": { "secret": "k" }, "headers": [{ "name": "OpenAI-Organization", "value": { "secret": "k" } }],
              "source": { "kind": "LLMProvider", "namespace": "ns", "name": "openai" } },
            { "type": "mock", "name": "ns/mock" },
        ],
        "routes": [{ "model": "gpt-4o", "backends": [{ "provider": "ns/openai" }, { "provider": "ns/mock", "priority": 1 }] }],
        "keys": [{ "id": "ns/team", "labels": { "team": "search" }, "hashes": [{ "hash": HASH_A }], "models": ["gpt-4o"] }],
    }))
    .unwrap()
}

#[test]
fn this_build_reads_its_version_and_the_one_before() {
    assert_eq!(SUPPORTED_SCHEMA_VERSIONS, SCHEMA_VERSION - 1..=SCHEMA_VERSION);
    let landed_v1 = format!(
        "version: 1\nproviders:\n  - {{ name: o, type: openai, api_key: {{ value: sk-1 }} }}\nroutes:\n  - {{ model: m, backends: [{{ provider: o }}] }}\nkeys:\n  - {{ name: team, hash: {HASH_A} }}\nlimits: []\n"
    );
    let snapshot = Snapshot::from_yaml(&landed_v1).unwrap();
    assert_eq!(snapshot.keys[0].id, "team", "version 1 `name` is the key id");
    assert!(Snapshot::from_yaml(&landed_v1.replace("version: 1", "version: 2")).is_ok());
    let newer = Snapshot::from_yaml(&landed_v1.replace("version: 1", "version: 3")).unwrap_err();
    assert_eq!(newer.to_string(), "version: unsupported schema version 3 (this build understands 1 to 2)");
    let older = Snapshot::from_yaml(&landed_v1.replace("version: 1", "version: 0")).unwrap_err();
    assert!(older.to_string().contains("unsupported schema version 0"), "{older}");
}

#[test]
fn a_version_1_document_cannot_use_version_2_fields() {
    let text = format!(
        "version: 1\nsecrets: {{ k: v }}\nkeys:\n  - {{ id: team, hashes: [{{ hash: {HASH_A} }}], labels: {{ team: a }} }}\n"
    );
    let errors: Vec<String> =
        Snapshot::from_yaml(&text).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "secrets: needs schema version 2 (set `version: 2`)",
            "keys[0].labels: needs schema version 2 (set `version: 2`)",
            "keys[0].hashes: needs schema version 2 (set `version: 2`)",
        ]
    );
}

#[test]
fn the_operator_can_write_the_previous_version_for_an_older_replica() {
    let snapshot = operator_snapshot();
    assert!(snapshot.validate(Origin::Pushed).is_ok());
    let v1 = snapshot.to_version(1).unwrap();
    assert_eq!(v1["version"], 1);
    assert!(v1.get("secrets").is_none(), "version 1 has no secrets section");
    assert_eq!(v1["providers"][0]["api_key"], serde_json::json!({ "value": "sk-upstream" }));
    assert_eq!(v1["providers"][0]["headers"][0]["value"], serde_json::json!({ "value": "sk-upstream" }));
    assert_eq!(
        v1["keys"][0],
        serde_json::json!({ "name": "ns/team", "hash": HASH_A, "models": ["gpt-4o"], "disabled": false })
    );

    // A version-1 reader (this build reading version 1, which refuses every version-2 field)
    // accepts it, and it means the same thing.
    let read_back = Snapshot::from_json(&v1.to_string()).unwrap();
    assert_eq!(read_back.routes, snapshot.routes);
    assert_eq!(read_back.keys[0].id, "ns/team");
    assert_eq!(read_back.keys[0].all_hashes().count(), 1);
    assert_eq!(snapshot.to_version(2).unwrap(), serde_json::to_value(&snapshot).unwrap());
}

#[test]
fn what_version_1_cannot_express_safely_is_refused_not_dropped() {
    let mut with_policy = operator_snapshot();
    with_policy.policies = serde_json::from_value(
        serde_json::json!([{ "name": "p", "scope": "key", "window_seconds": 60, "requests": 1 }]),
    )
    .unwrap();
    let refused = with_policy.to_version(1).unwrap_err().to_string();
    assert!(refused.contains("policies"), "{refused}");

    let mut rotating = operator_snapshot();
    rotating.keys[0].hashes[0].expires_at = Some("2027-01-01T00:00:00Z".into());
    let refused = rotating.to_version(1).unwrap_err().to_string();
    assert!(refused.contains("keys[0].hashes"), "{refused}");
    assert!(operator_snapshot().to_version(3).is_err());

    // Providers and route settings that came with version 2.
    let mut claude = operator_snapshot();
    claude
        .providers
        .push(serde_json::from_value(serde_json::json!({ "name": "claude", "type": "anthropic" })).unwrap());
    claude.routes[0].default_max_tokens = Some(100);
    let refused = claude.to_version(1).unwrap_err().to_string();
    assert!(refused.contains("type: anthropic"), "{refused}");
    assert!(refused.contains("routes[0].default_max_tokens"), "{refused}");
    let v1 = r#"{"version":1,"providers":[{"name":"c","type":"anthropic"}],"routes":[],"keys":[]}"#;
    assert!(Snapshot::from_json(v1).is_err(), "a version-1 file cannot use a version-2 provider");

    let mut gemini = operator_snapshot();
    gemini
        .providers
        .push(serde_json::from_value(serde_json::json!({ "name": "g", "type": "gemini" })).unwrap());
    let refused = gemini.to_version(1).unwrap_err().to_string();
    assert!(refused.contains("type: gemini"), "{refused}");
    let v1 = r#"{"version":1,"providers":[{"name":"g","type":"gemini"}],"routes":[],"keys":[]}"#;
    let refused = Snapshot::from_json(v1).unwrap_err().to_string();
    assert!(refused.contains("providers[0].type: gemini"), "{refused}");
}
