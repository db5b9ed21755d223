//! The `bedrock` provider type in the contract: what it accepts, what it refuses and where.

use serde_json::json;
use switchboard_config::{ConfigErrors, Origin, ProviderConfig, Snapshot};

fn snapshot(provider: serde_json::Value) -> Snapshot {
    let value = json!({
        "version": 2,
        "secrets": { "id": "AKIAEXAMPLE", "secret": "wJalrXUtnFEMI/K7MDENG" },
        "providers": [provider],
        "routes": [{ "model": "claude", "backends": [{ "provider": "b", "model": "anthropic.claude-3-haiku-20240307-v1:0" }] }],
    });
    serde_json::from_value(value).unwrap_or_else(|err| unreachable!("fixture: {err}"))
}

fn problems(provider: serde_json::Value, origin: Origin) -> Vec<String> {
    match snapshot(provider).validate(origin) {
        Ok(()) => Vec::new(),
        Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn static_keys_and_web_identity_are_accepted_with_their_defaults() {
    let keys = json!({ "type": "bedrock", "name": "b", "region": "us-east-1",
        "credentials": { "access_key_id": { "secret": "id" }, "secret_access_key": { "secret": "secret" } } });
    assert_eq!(problems(keys.clone(), Origin::Pushed), Vec::<String>::new());
    let ProviderConfig::Bedrock(p) = &snapshot(keys).providers[0] else { unreachable!() };
    assert_eq!(p.base_url(), "https://bedrock-runtime.us-east-1.amazonaws.com");
    assert_eq!(p.timeout_ms, 600_000);
    assert_eq!(p.sts_url(), None);
    assert!(!format!("{p:?}").contains("wJalr"));

    let irsa = json!({ "type": "bedrock", "name": "b", "region": "eu-west-3", "credentials": { "web_identity": {} } });
    assert_eq!(problems(irsa.clone(), Origin::Pushed), Vec::<String>::new());
    let ProviderConfig::Bedrock(p) = &snapshot(irsa).providers[0] else { unreachable!() };
    assert_eq!(p.sts_url().as_deref(), Some("https://sts.eu-west-3.amazonaws.com"));
}

#[test]
fn every_problem_has_its_field_path() {
    let cases = [
        (
            json!({ "region": "US East", "credentials": { "web_identity": {} } }),
            "providers[0].region: must be an AWS region",
        ),
        (
            json!({ "region": "us-east-1", "credentials": {} }),
            "providers[0].credentials: needs access_key_id and secret_access_key, or web_identity",
        ),
        (
            json!({ "region": "us-east-1", "credentials": { "access_key_id": { "secret": "id" }, "web_identity": {} } }),
            "providers[0].credentials: set either",
        ),
        (
            json!({ "region": "us-east-1", "credentials": { "access_key_id": { "secret": "id" } } }),
            "providers[0].credentials.secret_access_key: is required with static keys",
        ),
        (
            json!({ "region": "us-east-1", "credentials": { "access_key_id": { "value": "AKIA" }, "secret_access_key": { "secret": "secret" } } }),
            "providers[0].credentials.access_key_id.value: an inline key is not allowed in a pushed snapshot",
        ),
        (
            json!({ "region": "us-east-1", "credentials": { "access_key_id": { "secret": "nope" }, "secret_access_key": { "secret": "secret" } } }),
            "providers[0].credentials.access_key_id.secret",
        ),
        (
            json!({ "region": "us-east-1", "credentials": { "web_identity": { "sts_url": "http://169.254.169.254/" } } }),
            "providers[0].credentials.web_identity.sts_url",
        ),
        (
            json!({ "region": "us-east-1", "base_url": "http://127.0.0.1:9000", "credentials": { "web_identity": {} } }),
            "providers[0].base_url",
        ),
        (
            json!({ "region": "us-east-1", "headers": [{ "name": "X-Amz-Security-Token", "value": { "value": "t" } }], "credentials": { "web_identity": {} } }),
            "providers[0].headers[0].name: \"X-Amz-Security-Token\" is written by SigV4 signing",
        ),
    ];
    for (mut provider, expected) in cases {
        provider["type"] = json!("bedrock");
        provider["name"] = json!("b");
        let found = problems(provider.clone(), Origin::Pushed);
        assert!(found.iter().any(|p| p.contains(expected)), "{provider}: want {expected:?}, got {found:?}");
    }
    // A file may name loopback addresses when it says so; a pushed snapshot never reads env.
    let local = json!({ "type": "bedrock", "name": "b", "region": "us-east-1", "base_url": "http://127.0.0.1:9000",
        "allow_private_network": true, "credentials": { "access_key_id": { "env": "AWS_ACCESS_KEY_ID" },
        "secret_access_key": { "env": "AWS_SECRET_ACCESS_KEY" } } });
    assert_eq!(problems(local.clone(), Origin::File), Vec::<String>::new());
    assert!(problems(local, Origin::Pushed).iter().any(|p| p.contains("`env` credentials are not allowed")));
}

#[test]
fn version_1_has_no_bedrock_providers() {
    let irsa = json!({ "type": "bedrock", "name": "b", "region": "us-east-1", "credentials": { "web_identity": {} } });
    let err = snapshot(irsa).to_version(1).unwrap_err();
    assert!(err.to_string().contains("version 1 has no bedrock providers"), "{err}");
}
