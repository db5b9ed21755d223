//! The checks only a Bedrock provider needs, beside every HTTP provider's (`validate_http`).

use super::{Collector, check_base_url, check_credential, validate_http};
use crate::provider::{Credential, HttpSettings};
use crate::{BedrockProviderConfig, Origin, Section};

/// Headers SigV4 writes on every request: a configured one would break or forge the signature.
const SIGNING_HEADERS: [&str; 4] =
    ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

pub(super) fn validate(errs: &mut Collector<'_>, i: usize, p: &BedrockProviderConfig) {
    let base_url = p.base_url();
    let settings = |base_url, endpoints| HttpSettings {
        base_url,
        endpoints,
        api_key: None,
        api_key_prefix: "",
        headers: &p.headers,
        timeout_ms: p.timeout_ms,
        timeouts: p.timeouts,
        allow_private_network: p.allow_private_network,
    };
    // A model id is percent-encoded into one path segment, so any stands for all.
    validate_http(errs, i, settings(&base_url, &["/model/m/converse-stream"]));
    if let Some(sts_url) = p.sts_url() {
        let rule = errs.origin.address_rule(p.allow_private_network);
        if let Err(reason) = check_base_url(settings(&sts_url, &[]), rule) {
            errs.entry(
                Section::Providers,
                i,
                format!("providers[{i}].credentials.web_identity.sts_url"),
                reason,
            );
        }
    }
    let keys = &p.credentials;
    for (field, credential) in [
        ("access_key_id", &keys.access_key_id),
        ("secret_access_key", &keys.secret_access_key),
        ("session_token", &keys.session_token),
    ] {
        let Some(credential) = credential else { continue };
        let path = format!("providers[{i}].credentials.{field}");
        check_credential(errs, i, path.clone(), credential, "");
        if errs.origin == Origin::Pushed && matches!(credential, Credential::Value(_)) {
            errs.entry(
                Section::Providers,
                i,
                format!("{path}.value"),
                "an inline key is not allowed in a pushed snapshot; reference the `secrets` section",
            );
        }
    }
    for (h, header) in p.headers.iter().enumerate() {
        if SIGNING_HEADERS.contains(&header.name.to_ascii_lowercase().as_str()) {
            errs.entry(
                Section::Providers,
                i,
                format!("providers[{i}].headers[{h}].name"),
                format!("{:?} is written by SigV4 signing and cannot be set", header.name),
            );
        }
    }
    for (path, reason) in p.problems() {
        errs.entry(Section::Providers, i, format!("providers[{i}].{path}"), reason);
    }
}
