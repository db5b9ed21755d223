//! The token-authenticated providers in the contract: `vertex`, `azure_openai` and Entra on
//! `anthropic`. Defaults, every problem with its path, token endpoints under the address rule
//! (a pushed key cannot send the gateway to the metadata service), secrets never echoed, and
//! schema version 1 refusing them.

use switchboard_config::{ConfigErrors, Origin, ProviderConfig, Snapshot};

#[expect(clippy::panic, reason = "a test helper: a valid document here is a failed test")]
fn errors(yaml: &str) -> Vec<String> {
    match Snapshot::from_yaml(yaml) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// The test-only service account key the mocks accept (`tests/mock-providers/fixtures`).
const KEY_JSON: &str = include_str!("../../../tests/mock-providers/fixtures/test-only-service-account.json");

#[test]
fn vertex_defaults_its_base_url_from_the_location() {
    let yaml = "version: 2\nproviders:\n  - { name: v, type: vertex, project: p-1, location: europe-west4, service_account: { env: SA } }\n  - { name: g, type: vertex, project: p-1, location: global, service_account: { env: SA } }\nroutes: []\nkeys: []\n";
    let snapshot = Snapshot::from_yaml(yaml).unwrap_or_else(|e| unreachable!("{e}"));
    let urls: Vec<_> = snapshot
        .providers
        .iter()
        .map(|p| match p {
            ProviderConfig::Vertex(v) => v.base_url.clone(),
            _ => String::new(),
        })
        .collect();
    assert_eq!(
        urls,
        ["https://europe-west4-aiplatform.googleapis.com/v1", "https://aiplatform.googleapis.com/v1"]
    );
    // Written out, and read back the same.
    let again = Snapshot::from_json(&snapshot.to_json()).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(again.providers, snapshot.providers);
}

#[test]
fn every_problem_has_its_path() {
    let yaml = r#"
version: 2
providers:
  - { name: v, type: vertex, project: "a/b", location: "us central", service_account: { value: "not json" } }
  - { name: w, type: vertex, project: p, location: l, service_account: { value: '{"client_email":"x"}' }, token_url: "ftp://x" }
  - { name: a, type: azure_openai, base_url: "https://r.openai.azure.com/openai", api_version: "2024 10", api_key: { value: k },
      entra: { tenant_id: "t/x", client_id: c, client_secret: { value: s } } }
  - { name: c, type: anthropic, entra: { tenant_id: t, client_id: c, client_secret: { value: s }, token_url: "http://169.254.169.254/token" } }
  - { name: k, type: vertex, project: p, location: l, service_account: { value: '{"client_email":"x","private_key":"secret-bytes"}' } }
routes: []
keys: []
"#;
    let errors = errors(yaml);
    for expected in [
        "providers[0].project: must be a Google Cloud project id",
        "providers[0].location: must be a location",
        "providers[0].service_account: must be a service account key",
        "providers[1].token_url: \"ftp://x\" must start with http:// or https://",
        "providers[1].service_account: the key has no \"private_key\"",
        "providers[2].base_url: must be the resource endpoint",
        "providers[2].api_version: must be `v1` or a dated version",
        "providers[2].entra: set either api_key or entra, not both",
        "providers[2].entra.tenant_id: must be a non-empty id",
        "providers[3].entra.token_url: host \"169.254.169.254\" is refused",
        "providers[4].service_account: the key's \"private_key\" is not a PEM PKCS#8 RSA private key",
    ] {
        assert!(errors.iter().any(|e| e.starts_with(expected)), "missing {expected:?} in {errors:#?}");
    }
    let all = errors.join("\n");
    assert!(
        !all.contains("not json") && !all.contains("secret-bytes"),
        "a key's text is never echoed: {errors:#?}"
    );
}

#[test]
fn a_pushed_key_cannot_point_the_gateway_at_the_metadata_service() {
    let with_uri = |uri: &str| KEY_JSON.replace("https://oauth2.googleapis.com/token", uri);
    let snapshot = |key: &str, extra: &str| {
        serde_json::from_value::<Snapshot>(serde_json::json!({
            "version": 2,
            "secrets": { "sa": key },
            "providers": [serde_json::from_str::<serde_json::Value>(&format!(
                r#"{{"name":"v","type":"vertex","project":"p","location":"us-central1","service_account":{{"secret":"sa"}}{extra}}}"#
            )).unwrap_or_default()],
            "routes": [], "keys": [],
        }))
        .unwrap_or_else(|e| unreachable!("{e}"))
    };
    assert!(snapshot(KEY_JSON, "").validate(Origin::Pushed).is_ok());
    let refused = snapshot(&with_uri("http://169.254.169.254/token"), "").validate(Origin::Pushed);
    let refused = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("providers[0].service_account.token_uri: host \"169.254.169.254\" is refused"),
        "{refused}"
    );
    // Loopback: refused when pushed, allowed with allow_private_network.
    let loopback = with_uri("http://127.0.0.1:9/token");
    assert!(snapshot(&loopback, "").validate(Origin::Pushed).is_err());
    assert!(snapshot(&loopback, r#","allow_private_network":true"#).validate(Origin::Pushed).is_ok());
    // A configured token URL overrides the key's, and is checked the same way.
    let overridden = snapshot(&loopback, r#","token_url":"https://oauth2.googleapis.com/token""#);
    assert!(overridden.validate(Origin::Pushed).is_ok());
    // Pushed snapshots reference secrets; inline keys are refused.
    let inline = Snapshot::from_yaml(&format!(
        "version: 2\nproviders:\n  - {{ name: v, type: vertex, project: p, location: l, service_account: {{ value: '{KEY_JSON}' }} }}\nroutes: []\nkeys: []\n"
    ))
    .unwrap_or_else(|e| unreachable!("{e}"));
    let refused = inline.validate(Origin::Pushed).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("providers[0].service_account.value: an inline key is not allowed"),
        "{refused}"
    );
    assert!(!refused.contains("PRIVATE KEY"), "{refused}");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let yaml = format!(
        "version: 2\nproviders:\n  - {{ name: v, type: vertex, project: p, location: l, service_account: {{ value: '{KEY_JSON}' }} }}\n  - {{ name: a, type: azure_openai, base_url: 'https://r.openai.azure.com', api_version: v1, entra: {{ tenant_id: t, client_id: c, client_secret: {{ value: entra-secret-1 }} }} }}\nroutes: []\nkeys: []\n"
    );
    let snapshot = Snapshot::from_yaml(&yaml).unwrap_or_else(|e| unreachable!("{e}"));
    let debug = format!("{snapshot:?}");
    assert!(!debug.contains("PRIVATE KEY") && !debug.contains("entra-secret-1"), "{debug}");
}

#[test]
fn version_1_has_none_of_them() {
    for provider in [
        r#"{"name":"v","type":"vertex","project":"p","location":"l","service_account":{"env":"SA"}}"#,
        r#"{"name":"a","type":"azure_openai","base_url":"https://r.openai.azure.com","api_version":"v1","api_key":{"env":"K"}}"#,
    ] {
        let v1 = format!(r#"{{"version":1,"providers":[{provider}],"routes":[],"keys":[]}}"#);
        let refused = Snapshot::from_json(&v1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("providers[0].type:"), "{refused}");
        let v2 = Snapshot::from_json(&v1.replace(r#""version":1"#, r#""version":2"#))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let refused = v2.to_version(1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.contains("version 1 has no"), "{refused}");
    }
}

#[test]
fn a_pushed_entra_secret_must_be_a_reference() {
    let yaml = "version: 2\nproviders:\n  - { name: a, type: azure_openai, base_url: 'https://r.openai.azure.com', api_version: v1, entra: { tenant_id: t, client_id: c, client_secret: { value: entra-secret-1 } } }\nroutes: []\nkeys: []\n";
    let snapshot = Snapshot::from_yaml(yaml).unwrap_or_else(|e| unreachable!("{e}"));
    let refused = snapshot.validate(Origin::Pushed).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        refused.contains("providers[0].entra.client_secret.value: an inline secret is not allowed"),
        "{refused}"
    );
    assert!(!refused.contains("entra-secret-1"), "{refused}");
}
