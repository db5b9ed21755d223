//! Generators for the token-authenticated providers (`vertex`, `azure_openai`, Entra on
//! `anthropic`): their identifiers, keys and token URLs from pools of valid and adversarial
//! values, so `validate ⇒ compile` covers reading and checking a service account key and building
//! token endpoints under the address rule.

use crate::generate::{either, one_of, source};
use proptest::prelude::*;
use serde_json::{Value, json};
use switchboard_mock_providers::oauth::TEST_SERVICE_ACCOUNT;

/// A service account key as written: the test-only key (as is, or with its token_uri moved), or
/// something a replica could not sign with.
fn key(bad: u32) -> BoxedStrategy<String> {
    let with_uri =
        |uri: &'static str| TEST_SERVICE_ACCOUNT.replace("https://oauth2.googleapis.com/token", uri);
    let good = prop_oneof![
        Just(TEST_SERVICE_ACCOUNT.to_owned()),
        Just(with_uri("http://127.0.0.1:9/token")),
        Just(with_uri("https://oauth2.example.com/token")),
    ];
    let wrong = prop_oneof![
        Just("not json".to_owned()),
        Just(r#"{"client_email":"x"}"#.to_owned()),
        Just(r#"{"client_email":"x","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}"#.to_owned()),
        Just(with_uri("http://169.254.169.254/token")),
        Just(with_uri("ftp://x/token")),
        Just(with_uri("http://[::1/token")),
    ];
    either(bad, good, wrong)
}

fn token_url(bad: u32) -> BoxedStrategy<Option<String>> {
    let good = one_of(&[
        "https://oauth2.googleapis.com/token",
        "http://127.0.0.1:9/token",
        "https://login.example.com/t/oauth2/v2.0/token",
    ]);
    let wrong = one_of(&[
        "",
        "ftp://x",
        "http://169.254.169.254/token",
        "http://x/t?q=1",
        "https://user:pw@x/t",
        "http://[::1/t",
    ]);
    proptest::option::of(either(bad, good, wrong)).boxed()
}

fn secret(bad: u32, secret_names: &[&'static str], operator: bool) -> BoxedStrategy<Value> {
    let known: Vec<String> = secret_names.iter().map(|s| (*s).to_owned()).collect();
    let inline = crate::providers::secret_text(bad).prop_map(|v| json!({ "value": v }));
    if known.is_empty() || !operator {
        return inline.boxed();
    }
    prop_oneof![inline, proptest::sample::select(known).prop_map(|s| json!({ "secret": s }))].boxed()
}

fn entra(bad: u32, secret_names: &[&'static str], operator: bool) -> BoxedStrategy<Value> {
    (
        either(
            bad,
            one_of(&["00000000-0000-4000-8000-000000000001", "contoso.onmicrosoft.com"]),
            one_of(&["", "a/b", "t x", "t?x", "%zz"]),
        ),
        either(bad, one_of(&["11111111-1111-1111-1111-111111111111"]), one_of(&["", "c&d"])),
        secret(bad, secret_names, operator),
        token_url(bad),
    )
        .prop_map(|(tenant, client, secret, url)| {
            let mut e = json!({ "tenant_id": tenant, "client_id": client, "client_secret": secret });
            if let Some(url) = url {
                e["token_url"] = json!(url);
            }
            e
        })
        .boxed()
}

pub(crate) fn cloud_provider(
    bad: u32,
    name: String,
    secret_names: &[&'static str],
    operator: bool,
) -> BoxedStrategy<Value> {
    let vertex = (
        either(bad, one_of(&["my-project", "example.com:legacy"]), one_of(&["", "a/b", "p q", "p?x"])),
        either(bad, one_of(&["us-central1", "global"]), one_of(&["", "us central", "a/b", "x.y"])),
        key(bad),
        token_url(bad),
        any::<bool>(),
        source(bad, "LLMProvider"),
    )
        .prop_map({
            let name = name.clone();
            move |(project, location, key, url, allow_private, source)| {
                let mut p = json!({
                    "name": name, "type": "vertex", "project": project, "location": location,
                    "service_account": { "value": key }, "allow_private_network": allow_private,
                });
                if let Some(url) = url {
                    p["token_url"] = json!(url);
                }
                if let Some(source) = source {
                    p["source"] = source;
                }
                p
            }
        });
    let secrets = secret_names.to_vec();
    let azure = (
        either(
            bad,
            one_of(&["https://r.openai.azure.com", "http://127.0.0.1:8080/"]),
            one_of(&["https://r.openai.azure.com/openai", "not a url", "http://169.254.169.254"]),
        ),
        either(
            bad,
            one_of(&["v1", "2024-10-21", "2025-04-01-preview"]),
            one_of(&["", "2024 10", "a&b", "v1?x"]),
        ),
        prop_oneof![
            secret(bad, &secrets, operator).prop_map(|k| (Some(k), None)),
            entra(bad, &secrets, operator).prop_map(|e| (None, Some(e))),
            (secret(bad, &secrets, operator), entra(bad, &secrets, operator))
                .prop_map(|(k, e)| (Some(k), Some(e))),
        ],
        any::<bool>(),
    )
        .prop_map(move |(base_url, version, (key, entra), allow_private)| {
            let mut p = json!({
                "name": name, "type": "azure_openai", "base_url": base_url, "api_version": version,
                "allow_private_network": allow_private,
            });
            if let Some(key) = key {
                p["api_key"] = key;
            }
            if let Some(entra) = entra {
                p["entra"] = entra;
            }
            p
        });
    prop_oneof![vertex, azure].boxed()
}
