//! Providers for the `validate ⇒ compile` generator: base URLs (valid, unparsable, odd ports,
//! credentials in the URL, metadata, link-local and loopback hosts), credentials, headers.

use crate::generate::{either, one_of, source};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Base URLs: whole adversarial ones, and ones assembled from parts (most parts fine).
fn base_url(bad: u32) -> BoxedStrategy<String> {
    let good = one_of(&[
        "https://api.openai.com/v1",
        "http://vllm.internal:8000/v1",
        "https://example.com/",
        "http://10.0.0.7:65535/openai/v1/",
        "https://[2001:db8::1]:8443/v1",
        "https://api.example.com:1/v1//",
        "HTTPS://API.EXAMPLE.COM/V1",
        // Fine in a file, refused when pushed (unless the provider allows private networks).
        "http://127.0.0.1:11434/v1",
        "http://localhost:8080/v1",
    ]);
    let adversarial = one_of(&[
        "http://[::1/v1",
        "http://[::1]:8080/v1",
        "http://127.0.0.1:11434/v1",
        "http://localhost:8080",
        "http://api.localhost/v1",
        "http://example.com:0/v1",
        "http://example.com:65536",
        "http://example.com:99999/v1",
        "http://example.com:/v1",
        "https://user:pw@example.com/v1",
        "https://user@example.com/v1",
        "https://münchen.example/v1",
        "https://xn--mnchen-3ya.example/v1",
        "http://169.254.169.254/latest",
        "http://[fe80::1%25eth0]/v1",
        "http://[fd00:ec2::254]/v1",
        "http://metadata.google.internal/v1",
        "http://METADATA.google.internal./v1",
        "http://[::ffff:169.254.169.254]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://0.0.0.0:80/v1",
        "http://2852039166/v1",
        "http://0x7f.0.0.1/v1",
        "http://127.1/v1",
        "https://example.com/v1?x=1",
        "https://example.com/v1#frag",
        "ftp://example.com/v1",
        "example.com/v1",
        "",
        "https://",
        "http://:80/v1",
        "https://exa mple.com/v1",
        "https://example.com/v1/\u{0}",
        "https://example.com/%zz",
        "https://example.com/v1/ünï",
        "https://example.com/v1 ",
        "http://[::]/v1",
        "http://[fe80::1]:443/",
    ]);
    let scheme =
        either(bad, one_of(&["https://", "http://"]), one_of(&["", "ftp://", "https:/", "h ttp://"]));
    let host = either(
        bad,
        one_of(&["api.openai.com", "10.1.2.3", "[2001:db8::5]", "gpu-7.cluster.local", "example.com."]),
        one_of(&[
            "127.0.0.1",
            "localhost",
            "169.254.170.2",
            "[fe80::abcd]",
            "[::1]",
            "metadata",
            "instance-data",
            "100.100.100.200",
            "[64:ff9b::a9fe:a9fe]",
            "",
            "ex ample.com",
            "bücher.example",
            "a@b",
            "[::1",
        ]),
    );
    let port = either(
        bad,
        one_of(&["", ":443", ":8080", ":65535", ":1"]),
        one_of(&[":0", ":65536", ":99999", ":", ":-1", ":8o"]),
    );
    let path = either(
        bad,
        one_of(&["", "/", "/v1", "/v1/", "/openai/deployments/x/v1"]),
        one_of(&["//", "/v1?q", "/v1#x", "/a b", "/%", "/ü", "/v1\n", "/\u{7f}"]),
    );
    let assembled = (scheme, host, port, path).prop_map(|(s, h, p, pa)| format!("{s}{h}{p}{pa}"));
    either(bad, prop_oneof![good, assembled.clone()], prop_oneof![adversarial, assembled])
}

/// A credential value as written: most are fine; some are empty, padded, multi-line, or hold
/// characters no header value may hold. Padding and a final newline are trimmed on reading.
pub(crate) fn secret_text(bad: u32) -> BoxedStrategy<String> {
    either(
        bad,
        one_of(&[
            "sk-live-123",
            "  sk-padded  ",
            "sk-newline\n",
            "\tsk-tab-around\t",
            "Bearer-looking token",
            "a\tb",
        ]),
        one_of(&["", " ", "\n", "sk-\u{7}", "sk-\u{7f}", "sk-ünï", "line1\nline2", "a\rb", "nul\u{0}", "€"]),
    )
}

fn credential(bad: u32, secret_names: &[&'static str]) -> BoxedStrategy<Value> {
    let value = secret_text(bad).prop_map(|v| json!({ "value": v }));
    let known: Vec<String> = secret_names.iter().map(|s| (*s).to_owned()).collect();
    let missing = one_of(&["missing", "", "openai-key "]);
    if known.is_empty() {
        let secret = missing.prop_map(|s| json!({ "secret": s }));
        return either(bad, value.clone(), prop_oneof![value, secret]);
    }
    let secret = either(bad, proptest::sample::select(known), missing);
    prop_oneof![value, secret.prop_map(|s| json!({ "secret": s }))].boxed()
}

const HEADERS: &[&str] = &["OpenAI-Organization", "x-team", "OpenAI-Project", "api-key"];

/// Extra headers: distinct valid names, or (sometimes) any names, duplicates included.
fn headers(bad: u32, secret_names: &[&'static str]) -> BoxedStrategy<Vec<Value>> {
    let secrets = secret_names.to_vec();
    let distinct = proptest::sample::subsequence(HEADERS, 0..=2).prop_flat_map(move |names| {
        let one = |name: &'static str| {
            credential(bad, &secrets).prop_map(move |v| json!({ "name": name, "value": v }))
        };
        names.into_iter().map(one).collect::<Vec<_>>()
    });
    either(bad, distinct, proptest::collection::vec(header(bad, secret_names), 0..3))
}

fn header(bad: u32, secret_names: &[&'static str]) -> BoxedStrategy<Value> {
    let name = either(
        bad,
        one_of(HEADERS),
        one_of(&[
            "Host",
            "content-length",
            "Transfer-Encoding",
            "connection",
            "X-Request-Id",
            "bad header",
            "",
            "ünï",
            "x\u{0}y",
            "x:y",
            "x-team",
        ]),
    );
    (name, credential(bad, secret_names))
        .prop_map(|(name, value)| json!({ "name": name, "value": value }))
        .boxed()
}

/// A provider's key. The operator writes keys as references to the `secrets` section, a file's
/// author inline (or by reference); either kind may appear in either origin.
fn api_key(bad: u32, secret_names: &[&'static str], operator: bool) -> BoxedStrategy<Option<Value>> {
    let known: Vec<String> = secret_names.iter().map(|s| (*s).to_owned()).collect();
    let reference = if known.is_empty() {
        Just(None).boxed()
    } else {
        proptest::sample::select(known).prop_map(|s| Some(json!({ "secret": s }))).boxed()
    };
    let usual = if operator {
        prop_oneof![Just(None), reference].boxed()
    } else {
        proptest::option::of(credential(bad, secret_names)).boxed()
    };
    either(bad, usual, proptest::option::of(credential(bad, secret_names)))
}

pub(crate) fn openai_provider(
    bad: u32,
    name: String,
    secret_names: &[&'static str],
    operator: bool,
) -> BoxedStrategy<Value> {
    (
        base_url(bad),
        api_key(bad, secret_names, operator),
        headers(bad, secret_names),
        either(bad, one_of(&["1", "30000", "600000"]), one_of(&["0", "18446744073709551615"])),
        any::<bool>(),
        either(bad, Just(false), Just(true)),
        source(bad, "LLMProvider"),
    )
        .prop_map(move |(base_url, api_key, headers, timeout, stream_usage, allow_private, source)| {
            let mut p = json!({
                "name": name, "type": "openai", "base_url": base_url, "headers": headers,
                "timeout_ms": timeout.parse::<u64>().unwrap_or(1), "stream_usage": stream_usage,
                "allow_private_network": allow_private,
            });
            if let Some(key) = api_key {
                p["api_key"] = key;
            }
            if let Some(source) = source {
                p["source"] = source;
            }
            p
        })
        .boxed()
}

pub(crate) fn mock_provider(bad: u32, name: String) -> BoxedStrategy<Value> {
    (
        either(bad, prop_oneof![Just(0u64), 0u64..=600_000], Just(600_001)),
        any::<u32>(),
        proptest::option::of(one_of(&["fixed", "", "many words here", "ünï"])),
        either(bad, prop_oneof![Just(16u32), 1u32..=8192], prop_oneof![Just(0u32), Just(8193u32)]),
        source(bad, "LLMProvider"),
    )
        .prop_map(move |(latency, tps, reply, dims, source)| {
            let mut p = json!({
                "name": name, "type": "mock", "latency_ms": latency, "tokens_per_second": tps,
                "embedding_dimensions": dims,
            });
            if let Some(reply) = reply {
                p["reply"] = json!(reply);
            }
            if let Some(source) = source {
                p["source"] = source;
            }
            p
        })
        .boxed()
}

/// Bedrock providers: regions, base and STS URLs, static keys or web identity (or, when bad,
/// both, neither, half a key pair), headers SigV4 owns.
pub(crate) fn bedrock_provider(
    bad: u32,
    name: String,
    secret_names: &[&'static str],
    _operator: bool,
) -> BoxedStrategy<Value> {
    let region = either(bad, one_of(&["us-east-1", "eu-west-3"]), one_of(&["", "US East", "a.b", "x/y"]));
    let keys = (
        credential(bad, secret_names),
        credential(bad, secret_names),
        proptest::option::of(credential(bad, secret_names)),
    )
        .prop_map(|(id, secret, token)| {
            let mut keys = json!({ "access_key_id": id, "secret_access_key": secret });
            if let Some(token) = token {
                keys["session_token"] = token;
            }
            keys
        });
    let web = proptest::option::of(base_url(bad)).prop_map(|sts| match sts {
        Some(sts) => json!({ "web_identity": { "sts_url": sts } }),
        None => json!({ "web_identity": {} }),
    });
    let odd = credential(bad, secret_names).prop_map(|id| json!({ "access_key_id": id }));
    let credentials = either(
        bad,
        prop_oneof![keys.clone(), web.clone()],
        prop_oneof![
            keys,
            web,
            odd,
            Just(json!({})),
            Just(json!({ "web_identity": {}, "access_key_id": { "secret": "x" } }))
        ],
    );
    let extra =
        either(bad, Just(Vec::new()), Just(vec![json!({ "name": "X-Amz-Date", "value": { "value": "x" } })]));
    (
        region,
        proptest::option::of(base_url(bad)),
        credentials,
        headers(bad, secret_names),
        extra,
        either(bad, one_of(&["1", "30000"]), one_of(&["0"])),
        either(bad, Just(false), Just(true)),
        source(bad, "LLMProvider"),
    )
        .prop_map(
            move |(region, base_url, credentials, mut headers, extra, timeout, allow_private, source)| {
                headers.extend(extra);
                let mut p = json!({
                    "name": name, "type": "bedrock", "region": region, "credentials": credentials,
                    "headers": headers, "timeout_ms": timeout.parse::<u64>().unwrap_or(1),
                    "allow_private_network": allow_private,
                });
                if let Some(base_url) = base_url {
                    p["base_url"] = json!(base_url);
                }
                if let Some(source) = source {
                    p["source"] = source;
                }
                p
            },
        )
        .boxed()
}
