//! The contract's parsing and validation: every problem, each with its field path.

use switchboard_config::{ConfigErrors, Origin, PolicyScope, ProviderConfig, Snapshot};

const HASH_A: &str = "sha256:16d3abffdab01693c41bed2a36e04e5bfe4a60f1bb23f48dbabe6fdfd7c24f68";
const HASH_B: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

#[expect(clippy::panic, reason = "a test helper: a valid document here is a failed test")]
fn errors(yaml: &str) -> Vec<String> {
    match Snapshot::from_yaml(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_full_snapshot_parses_and_round_trips_through_json() {
    let yaml = format!(
        r#"
version: 2
generation: 42
providers:
  - name: openai
    type: openai
    base_url: https://api.openai.com/v1
    api_key: {{ env: OPENAI_API_KEY }}
    headers:
      - {{ name: OpenAI-Organization, value: {{ value: org-1 }} }}
  - name: mock
    type: mock
    latency_ms: 5
routes:
  - model: gpt-4o
    backends:
      - {{ provider: openai, weight: 3 }}
      - {{ provider: mock, model: fallback, priority: 1 }}
keys:
  - name: team-a
    hash: {HASH_A}
    models: [gpt-4o]
    expires_at: "2027-01-01T00:00:00Z"
    policies: [team-a-per-minute]
policies:
  - name: team-a-per-minute
    scope: key
    window_seconds: 60
    requests: 100
    total_tokens: 50000
    usd: "2.50"
"#
    );
    let snapshot = Snapshot::from_yaml(&yaml).unwrap();
    assert_eq!(snapshot.generation, 42);
    assert!(matches!(&snapshot.providers[0], ProviderConfig::OpenAi(p) if p.timeout_ms == 600_000));
    assert_eq!(snapshot.routes[0].backends[0].weight, 3);
    assert_eq!(snapshot.routes[0].backends[1].priority, 1);
    assert_eq!(snapshot.policies[0].scope, PolicyScope::Key);
    assert_eq!(snapshot.keys[0].id, "team-a");
    let json = snapshot.to_json();
    assert_eq!(Snapshot::from_json(&json).unwrap(), snapshot);
}

#[test]
fn every_problem_is_reported_with_its_field_path() {
    let yaml = format!(
        r#"
version: 2
providers:
  - {{ name: openai, type: openai, base_url: "ftp://x" }}
  - {{ name: openai, type: mock }}
routes:
  - model: a
    backends: []
  - model: a
    backends: [{{ provider: openai }}]
  - model: c
    backends: [{{ provider: opnai, weight: 0 }}]
keys:
  - {{ name: k, hash: "{HASH_A}", models: [nope] }}
  - {{ name: k, hash: "{HASH_A}" }}
  - {{ name: plain, hash: "sk-live-123" }}
  - {{ name: late, hash: "{HASH_B}", expires_at: tomorrow, policies: [ghost] }}
policies:
  - {{ name: l, scope: key, window_seconds: 0, requests: 5 }}
  - {{ name: m, scope: route }}
"#
    );
    let found = errors(&yaml);
    let expected = [
        r#"providers[0].base_url: "ftp://x" must start with http:// or https://"#,
        r#"providers[1].name: duplicate provider "openai" (also providers[0])"#,
        "routes[0].backends: must list at least one backend",
        r#"routes[1].model: duplicate route "a" (also routes[0])"#,
        r#"routes[2].backends[0].provider: unknown provider "opnai""#,
        "routes[2].backends[0].weight: must be at least 1 (remove the backend to stop sending it traffic)",
        r#"keys[0].models[0]: unknown model "nope" (no route has it)"#,
        r#"keys[1].id: duplicate key id "k" (also keys[0])"#,
        r#"keys[2].hash: must start with "sha256:" (store the hash of a key, never the key)"#,
        r#"keys[3].expires_at: "tomorrow" is not an RFC 3339 date-time like 2026-12-31T23:59:59Z"#,
        r#"keys[3].policies[0]: unknown policy "ghost""#,
        "policies[0].window_seconds: must be between 1 and 2678400 (31 days)",
        "policies[1]: sets no limit: set requests, input_tokens, output_tokens, total_tokens, usd, daily_usd, monthly_usd or concurrent_requests",
    ];
    for line in expected {
        assert!(found.iter().any(|f| f == line), "missing {line:?} in:\n{}", found.join("\n"));
    }
    assert_eq!(found.len(), expected.len(), "{}", found.join("\n"));
}

#[test]
fn typos_fail_loudly_with_their_path() {
    let found =
        errors("version: 1\nroutes:\n  - model: a\n    backends:\n      - provider: p\n        wieght: 2\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("routes[0].backends[0].wieght: unknown field `wieght`"), "{found:?}");
    let found = errors("version: 1\nprovider: []\n");
    assert!(found[0].contains("unknown field `provider`"), "{found:?}");
    let found = errors("version: 1\nproviders:\n  - { name: x, type: openia }\n");
    assert!(found[0].starts_with("providers[0]") && found[0].contains("openia"), "{found:?}");
}

#[test]
fn syntax_errors_point_at_the_line() {
    let found = errors("version: 1\nproviders: [ { name: x\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("line"), "{found:?}");
}

#[test]
fn the_embedded_default_is_valid_and_serves_mock() {
    let snapshot = Snapshot::embedded_default().unwrap();
    assert!(snapshot.routes.iter().any(|r| r.model == "mock"));
    assert!(matches!(snapshot.provider("mock"), Some(ProviderConfig::Mock(_))));
}

#[test]
fn credentials_never_show_in_debug_output() {
    let yaml = "version: 1\nproviders:\n  - { name: o, type: openai, api_key: { value: sk-super-secret } }\n";
    let snapshot = Snapshot::from_yaml(yaml).unwrap();
    let shown = format!("{snapshot:?}");
    assert!(!shown.contains("sk-super-secret"), "{shown}");
}

#[test]
fn what_a_gateway_would_refuse_is_found_by_validate() {
    let provider =
        |fields: &str| format!("version: 2\nproviders:\n  - {{ name: p, type: openai, {fields} }}\n");
    // A Secret's trailing newline is trimmed, not refused.
    let snapshot = Snapshot::from_yaml(&provider(r#"api_key: { value: "sk-abc\n" }"#)).unwrap();
    let ProviderConfig::OpenAi(p) = &snapshot.providers[0] else { unreachable!() };
    assert!(matches!(&p.api_key, Some(switchboard_config::Credential::Value(v)) if v.expose() == "sk-abc"));

    let cases = [
        (r#"base_url: "http://[::1/v1""#, "providers[0].base_url: \"http://[::1/v1\" is not a valid URL"),
        (
            r#"base_url: "http://h:99999/v1""#,
            "providers[0].base_url: \"http://h:99999/v1\" has an invalid port",
        ),
        (r#"base_url: "http://h:0/v1""#, "providers[0].base_url: \"http://h:0/v1\" has an invalid port"),
        (r#"api_key: { value: "sk-a\nb" }"#, "providers[0].api_key.value: contains characters not allowed"),
        (
            r#"headers: [{ name: X-Team, value: { value: "a\u0001" } }]"#,
            "providers[0].headers[0].value.value: contains",
        ),
        (
            r#"headers: [{ name: "X Team", value: { value: a } }]"#,
            "providers[0].headers[0].name: \"X Team\" is not",
        ),
        (r#"headers: [{ name: X-Request-Id, value: { value: a } }]"#, "is set by the gateway"),
        (r#"api_key: { secret: missing }"#, "providers[0].api_key.secret: no entry \"missing\" in `secrets`"),
        (r#"base_url: "http://169.254.169.254/v1""#, "link-local"),
    ];
    for (fields, expected) in cases {
        let found = errors(&provider(fields));
        assert!(found.iter().any(|f| f.contains(expected)), "{fields}: expected {expected:?} in {found:?}");
    }
    // A Gemini provider gets the same HTTP checks, and its defaults.
    let gemini =
        |fields: &str| format!("version: 2\nproviders:\n  - {{ name: g, type: gemini, {fields} }}\n");
    let snapshot = Snapshot::from_yaml(&gemini("api_key: { value: AIza-k }")).unwrap();
    let ProviderConfig::Gemini(g) = &snapshot.providers[0] else { unreachable!() };
    assert_eq!(
        (g.base_url.as_str(), g.timeout_ms),
        ("https://generativelanguage.googleapis.com/v1beta", 600_000)
    );
    for (fields, expected) in [
        (r#"base_url: "http://169.254.169.254/v1beta""#, "providers[0].base_url"),
        (r#"base_url: "https://h/v1beta?key=k""#, "without query"),
        ("timeout_ms: 0", "providers[0].timeout_ms: must be greater than 0"),
        ("version: 2023-06-01", "unknown field `version`"),
    ] {
        let found = errors(&gemini(fields));
        assert!(found.iter().any(|f| f.contains(expected)), "{fields}: expected {expected:?} in {found:?}");
    }
    // The same document, validated as a pushed snapshot, also refuses loopback.
    let local: Snapshot = serde_yaml_ng::from_str(&provider("base_url: http://127.0.0.1:8000/v1")).unwrap();
    assert!(local.validate(Origin::File).is_ok());
    assert!(local.validate(Origin::Pushed).is_err());
}
