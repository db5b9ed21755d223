//! Checks for the token-authenticated providers (Vertex AI, Azure OpenAI, Entra on Anthropic):
//! the identifiers that go into URLs, the token endpoints (under the same address rule as base
//! URLs: a token request is a request the gateway makes), and the grant's secrets.

use super::{Collector, check_base_url, check_credential};
use crate::error::Section;
use crate::{
    AzureOpenAiProviderConfig, Credential, EntraConfig, HttpSettings, Origin, ProviderTimeouts,
    VertexProviderConfig,
};

pub(super) fn vertex(errs: &mut Collector<'_>, i: usize, p: &VertexProviderConfig) {
    let at = |field: &str| format!("providers[{i}].{field}");
    // Both go into the URL path unencoded: Google's ids are lowercase letters, digits and
    // hyphens (a legacy project id may carry a domain, `example.com:project`).
    if p.project.is_empty() || !p.project.chars().all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c)) {
        errs.entry(Section::Providers, i, at("project"), "must be a Google Cloud project id");
    }
    if p.location.is_empty() || !p.location.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        errs.entry(Section::Providers, i, at("location"), "must be a location such as us-central1 or global");
    }
    if let Some(url) = &p.token_url {
        token_url(errs, i, at("token_url"), url, p.allow_private_network);
    }
    let Some(key) = credential_text(errs, i, at("service_account"), &p.service_account) else { return };
    // Never echo the key: only say what is missing.
    let Ok(serde_json::Value::Object(key)) = serde_json::from_str::<serde_json::Value>(&key) else {
        return errs.entry(
            Section::Providers,
            i,
            at("service_account"),
            "must be a service account key (the JSON file Google issues)",
        );
    };
    for field in ["client_email", "private_key"] {
        if !key.get(field).is_some_and(serde_json::Value::is_string) {
            errs.entry(Section::Providers, i, at("service_account"), format!("the key has no {field:?}"));
        }
    }
    // What the gateway will sign with, checked now: a replica that cannot compile a pushed
    // entry would refuse the whole snapshot.
    if let Some(pem) = key.get("private_key").and_then(|v| v.as_str())
        && !usable_rsa_key(pem)
    {
        errs.entry(
            Section::Providers,
            i,
            at("service_account"),
            "the key's \"private_key\" is not a PEM PKCS#8 RSA private key",
        );
    }
    match (key.get("token_uri").and_then(|v| v.as_str()), &p.token_url) {
        (_, Some(_)) => {}
        (Some(uri), None) => {
            token_url(errs, i, format!("{}.token_uri", at("service_account")), uri, p.allow_private_network)
        }
        (None, None) => {
            errs.entry(Section::Providers, i, at("token_url"), "the key has no \"token_uri\"; set token_url")
        }
    }
}

pub(super) fn azure_openai(errs: &mut Collector<'_>, i: usize, p: &AzureOpenAiProviderConfig) {
    let version = &p.api_version;
    // A query parameter value: dates (`2024-10-21`, `2025-04-01-preview`) and `v1`.
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        errs.entry(
            Section::Providers,
            i,
            format!("providers[{i}].api_version"),
            "must be `v1` or a dated version such as 2024-10-21",
        );
    }
    if p.base_url.trim_end_matches('/').contains("/openai") {
        errs.entry(
            Section::Providers,
            i,
            format!("providers[{i}].base_url"),
            "must be the resource endpoint (https://{resource}.openai.azure.com), without /openai",
        );
    }
    one_auth(errs, i, p.api_key.is_some(), p.entra.as_ref(), p.allow_private_network);
}

/// Exactly one of a key and Entra; then the Entra settings.
pub(super) fn one_auth(
    errs: &mut Collector<'_>,
    i: usize,
    api_key: bool,
    entra: Option<&EntraConfig>,
    allow_private_network: bool,
) {
    let Some(entra) = entra else { return };
    let at = |field: &str| format!("providers[{i}].entra.{field}");
    if api_key {
        errs.entry(
            Section::Providers,
            i,
            format!("providers[{i}].entra"),
            "set either api_key or entra, not both",
        );
    }
    if entra.scope.is_empty() || entra.scope.chars().any(char::is_control) {
        errs.entry(
            Section::Providers,
            i,
            at("scope"),
            "must be a scope such as https://cognitiveservices.azure.com/.default",
        );
    }
    for (field, value) in [("tenant_id", &entra.tenant_id), ("client_id", &entra.client_id)] {
        // Form fields and a URL path segment: no spaces, no separators.
        if value.is_empty()
            || value.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#&".contains(c))
        {
            errs.entry(
                Section::Providers,
                i,
                at(field),
                "must be a non-empty id without spaces, /, ?, # or &",
            );
        }
    }
    check_credential(errs, i, at("client_secret"), &entra.client_secret, "");
    if errs.origin == Origin::Pushed && matches!(entra.client_secret, Credential::Value(_)) {
        errs.entry(
            Section::Providers,
            i,
            format!("{}.value", at("client_secret")),
            "an inline secret is not allowed in a pushed snapshot; reference the `secrets` section",
        );
    }
    token_url(errs, i, at("token_url"), &entra.token_url(), allow_private_network);
}

/// A token endpoint, checked as a base URL is (scheme, host, the address rule).
fn token_url(errs: &mut Collector<'_>, i: usize, path: String, url: &str, allow_private_network: bool) {
    let rule = errs.origin.address_rule(allow_private_network);
    let settings = HttpSettings {
        base_url: url,
        endpoints: &[],
        api_key: None,
        api_key_prefix: "",
        headers: &[],
        timeout_ms: 1,
        timeouts: ProviderTimeouts::default(),
        allow_private_network,
    };
    if let Err(reason) = check_base_url(settings, rule) {
        errs.entry(Section::Providers, i, path, reason);
    }
}

/// The text of a credential the validator can see (a value or a `secrets` entry), after the
/// origin's rules; `None` when it is read later (env, file) or already reported.
fn credential_text(
    errs: &mut Collector<'_>,
    i: usize,
    path: String,
    credential: &Credential,
) -> Option<String> {
    let pushed = errs.origin == Origin::Pushed;
    let snapshot = errs.snapshot;
    let problem = |errs: &mut Collector<'_>, field: &str, reason: &str| {
        errs.entry(Section::Providers, i, format!("{path}.{field}"), reason);
        None
    };
    match credential {
        Credential::Env(_) if pushed => {
            problem(errs, "env", "`env` credentials are not allowed in a pushed snapshot; use `secret`")
        }
        Credential::File(_) if pushed => {
            problem(errs, "file", "`file` credentials are not allowed in a pushed snapshot; use `secret`")
        }
        Credential::Value(_) if pushed => problem(
            errs,
            "value",
            "an inline key is not allowed in a pushed snapshot; reference the `secrets` section",
        ),
        Credential::Env(_) | Credential::File(_) => None,
        Credential::Value(value) => Some(value.expose().to_owned()),
        Credential::Secret(name) => match snapshot.secrets.get(name) {
            Some(value) => Some(value.expose().to_owned()),
            None => problem(errs, "secret", &format!("no entry {name:?} in `secrets`")),
        },
    }
}

/// Whether `pem` is an RSA private key `ring` signs with (PKCS#8, as Google issues them).
fn usable_rsa_key(pem: &str) -> bool {
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;
    PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
        .is_ok_and(|der| ring::signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).is_ok())
}
