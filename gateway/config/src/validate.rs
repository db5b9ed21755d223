//! Semantic validation of a [`Snapshot`]: every problem, each with its field path, the entry it
//! belongs to and the object that entry came from.
//!
//! Deserialization already rejected unknown fields and wrong types; this checks what types cannot
//! express: references between sections, duplicates, ranges and formats, and everything a
//! gateway would otherwise only find out while compiling (header values, URLs, addresses), so
//! that `validate` passing means a replica will accept the snapshot. The only exception is
//! reading a standalone file's `env` and `file` credentials, which depends on the machine.

use crate::error::{ConfigError, Section};
use crate::network::AddressRule;
use crate::{
    Credential, HttpSettings, KeyConfig, Origin, ProviderConfig, SUPPORTED_SCHEMA_VERSIONS, Snapshot,
    parse_rfc3339,
};
use std::collections::{HashMap, HashSet};

mod bedrock;
mod cloud;
mod policy;
mod route;

use policy::{validate_budget, validate_policies, validate_price};
use route::validate_routes;

/// Names that were in a pushed snapshot but were rejected, so entries referring to them can say
/// so instead of calling them unknown.
pub(crate) type Gone = HashSet<(Section, String)>;

/// Collects problems, stamping each with its entry and that entry's object.
struct Collector<'a> {
    snapshot: &'a Snapshot,
    origin: Origin,
    gone: &'a Gone,
    errors: Vec<ConfigError>,
}

impl Collector<'_> {
    fn document(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(ConfigError::document(path, reason));
    }

    fn entry(&mut self, section: Section, index: usize, path: impl Into<String>, reason: impl Into<String>) {
        let object = match section {
            Section::Providers => self.snapshot.providers.get(index).and_then(|p| p.source()),
            Section::Routes => self.snapshot.routes.get(index).and_then(|r| r.source.as_ref()),
            Section::Keys => self.snapshot.keys.get(index).and_then(|k| k.source.as_ref()),
            Section::Policies => self.snapshot.policies.get(index).and_then(|p| p.source.as_ref()),
        };
        self.errors.push(ConfigError {
            path: path.into(),
            reason: reason.into(),
            object: object.cloned(),
            entry: Some((section, index)),
        });
    }

    /// The reason for a reference to `name` in `section` that does not resolve.
    fn missing(&self, section: Section, what: &str, name: &str) -> String {
        if self.gone.contains(&(section, name.to_owned())) {
            format!("{what} {name:?} is not serving (it was rejected)")
        } else {
            format!("unknown {what} {name:?}")
        }
    }
}

pub(crate) fn validate(snapshot: &Snapshot, origin: Origin, gone: &Gone) -> Vec<ConfigError> {
    let mut errs = Collector { snapshot, origin, gone, errors: Vec::new() };
    if !SUPPORTED_SCHEMA_VERSIONS.contains(&snapshot.version) {
        errs.document(
            "version",
            format!(
                "unsupported schema version {} (this build understands {} to {})",
                snapshot.version,
                SUPPORTED_SCHEMA_VERSIONS.start(),
                SUPPORTED_SCHEMA_VERSIONS.end()
            ),
        );
        return errs.errors;
    }
    if !snapshot.limits.is_empty() {
        errs.document(
            "limits",
            "`limits` were replaced by `policies` in schema version 2 (see docs/config.md); \
             they were never enforced, so remove them or rewrite them as policies",
        );
    }
    if snapshot.version < 2 {
        for (entry, path, reason) in crate::version::v1_violations(snapshot) {
            match entry {
                Some((section, index)) => errs.entry(section, index, path, reason),
                None => errs.document(path, reason),
            }
        }
    }
    for name in snapshot.secrets.keys() {
        validate_name(&mut errs, None, format!("secrets.{name}"), name, "secret name");
    }
    let providers = validate_providers(&mut errs);
    let policies = validate_policies(&mut errs);
    let routes = validate_routes(&mut errs, &providers, &policies);
    validate_keys(&mut errs, &routes, &policies);
    errs.errors
}

fn validate_name(
    errs: &mut Collector<'_>,
    entry: Option<(Section, usize)>,
    path: String,
    name: &str,
    what: &str,
) {
    let Some(reason) = name_problem(name, what) else { return };
    match entry {
        Some((section, index)) => errs.entry(section, index, path, reason),
        None => errs.document(path, reason),
    }
}

/// What is wrong with a name, if anything.
fn name_problem(name: &str, what: &str) -> Option<String> {
    if name.is_empty() {
        Some(format!("{what} must not be empty"))
    } else if name.len() > 253 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Some(format!("{what} {name:?} must be at most 253 characters without spaces or control characters"))
    } else {
        None
    }
}

fn validate_providers<'a>(errs: &mut Collector<'a>) -> HashSet<&'a str> {
    let snapshot = errs.snapshot;
    let mut seen = HashMap::new();
    for (i, provider) in snapshot.providers.iter().enumerate() {
        let at = Some((Section::Providers, i));
        let name = provider.name();
        validate_name(errs, at, format!("providers[{i}].name"), name, "provider name");
        if let Some(first) = seen.get(name) {
            errs.entry(
                Section::Providers,
                i,
                format!("providers[{i}].name"),
                format!("duplicate provider {name:?} (also providers[{first}])"),
            );
            continue;
        }
        seen.insert(name, i);
        if let Some(http) = provider.http() {
            validate_http(errs, i, http);
        }
        match provider {
            // Everything a Gemini provider has is an HTTP setting, checked above.
            ProviderConfig::OpenAi(_) | ProviderConfig::Gemini(_) => {}
            ProviderConfig::Vertex(p) => cloud::vertex(errs, i, p),
            ProviderConfig::AzureOpenAi(p) => cloud::azure_openai(errs, i, p),
            ProviderConfig::Anthropic(p) => {
                if p.default_max_tokens == 0 {
                    errs.entry(
                        Section::Providers,
                        i,
                        format!("providers[{i}].default_max_tokens"),
                        "must be greater than 0",
                    );
                }
                if p.version.is_empty() || http::HeaderValue::from_str(&p.version).is_err() {
                    errs.entry(
                        Section::Providers,
                        i,
                        format!("providers[{i}].version"),
                        "must be an anthropic-version such as 2023-06-01",
                    );
                }
                cloud::one_auth(errs, i, p.api_key.is_some(), p.entra.as_ref(), p.allow_private_network);
            }
            ProviderConfig::Bedrock(p) => bedrock::validate(errs, i, p),
            ProviderConfig::Mock(p) => {
                if p.latency_ms > 600_000 {
                    errs.entry(
                        Section::Providers,
                        i,
                        format!("providers[{i}].latency_ms"),
                        "must be at most 600000 (10 minutes)",
                    );
                }
                if p.embedding_dimensions == 0 || p.embedding_dimensions > 8192 {
                    errs.entry(
                        Section::Providers,
                        i,
                        format!("providers[{i}].embedding_dimensions"),
                        "must be between 1 and 8192",
                    );
                }
            }
        }
    }
    seen.into_keys().collect()
}

/// Checks what every HTTP provider has: base URL, key, headers, timeout.
fn validate_http(errs: &mut Collector<'_>, i: usize, p: HttpSettings<'_>) {
    let rule = errs.origin.address_rule(p.allow_private_network);
    if let Err(reason) = check_base_url(p, rule) {
        errs.entry(Section::Providers, i, format!("providers[{i}].base_url"), reason);
    }
    if let Some(key) = p.api_key {
        // The key goes upstream in a header, after the dialect's prefix.
        check_credential(errs, i, format!("providers[{i}].api_key"), key, p.api_key_prefix);
        if errs.origin == Origin::Pushed && matches!(key, Credential::Value(_)) {
            // Keeping every secret in one section is what lets the rest of a pushed snapshot be
            // logged and diffed; a literal header value (an organization id) is not a secret.
            errs.entry(
                Section::Providers,
                i,
                format!("providers[{i}].api_key.value"),
                "an inline key is not allowed in a pushed snapshot; reference the `secrets` section",
            );
        }
    }
    let mut names = HashSet::new();
    for (h, header) in p.headers.iter().enumerate() {
        let path = format!("providers[{i}].headers[{h}]");
        match http::HeaderName::from_bytes(header.name.as_bytes()) {
            Err(_) => errs.entry(
                Section::Providers,
                i,
                format!("{path}.name"),
                format!("{:?} is not a valid HTTP header name", header.name),
            ),
            Ok(name) if RESERVED_HEADERS.contains(&name.as_str()) => errs.entry(
                Section::Providers,
                i,
                format!("{path}.name"),
                format!("{:?} is set by the gateway and cannot be overridden", header.name),
            ),
            Ok(name) => {
                if !names.insert(name.clone()) {
                    errs.entry(
                        Section::Providers,
                        i,
                        format!("{path}.name"),
                        format!("header {:?} is listed twice", header.name),
                    );
                }
            }
        }
        check_credential(errs, i, format!("{path}.value"), &header.value, "");
    }
    if p.timeout_ms == 0 {
        errs.entry(Section::Providers, i, format!("providers[{i}].timeout_ms"), "must be greater than 0");
    }
    let limits = [
        ("connect_ms", p.timeouts.connect_ms),
        ("idle_ms", p.timeouts.idle_ms),
        ("total_ms", p.timeouts.total_ms),
    ];
    check_time_limits(errs, Section::Providers, i, &format!("providers[{i}].timeouts"), limits);
}

/// Headers the gateway owns on upstream requests.
const RESERVED_HEADERS: [&str; 6] =
    ["host", "content-length", "transfer-encoding", "connection", "x-request-id", "anthropic-version"];

/// Checks a base URL exactly as the gateway will use it: every endpoint URL built from it must
/// parse, and its host must be allowed by `rule`. A URL with credentials in it is never echoed.
fn check_base_url(p: HttpSettings<'_>, rule: AddressRule) -> Result<(), String> {
    let url = p.base_url;
    let shown = if url.contains('@') { "the URL".to_owned() } else { format!("{url:?}") };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains(['?', '#']) {
        return Err(format!("{shown} must be a plain base URL without query, fragment or spaces"));
    }
    let uri: http::Uri = url.parse().map_err(|err| format!("{shown} is not a valid URL ({err})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(format!("{shown} must start with http:// or https://")),
    }
    let authority = uri.authority().ok_or_else(|| format!("{shown} has no host"))?;
    if authority.as_str().contains('@') {
        return Err("must not contain user:password@ (put credentials in api_key or headers)".into());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(format!("{shown} has no host"));
    }
    let after_host = &authority.as_str()[authority.as_str().rfind(host).map_or(0, |at| at + host.len())..];
    if let Some(port) = after_host.strip_prefix(':') {
        match port.parse::<u16>() {
            Ok(port) if port > 0 => {}
            _ => return Err(format!("{shown} has an invalid port (1 to 65535)")),
        }
    }
    for endpoint in p.endpoints {
        if p.endpoint_url(endpoint).parse::<http::Uri>().is_err() {
            return Err(format!("{shown} does not form a valid URL with {endpoint}"));
        }
    }
    rule.check_host(host)
}

fn check_credential(errs: &mut Collector<'_>, i: usize, path: String, credential: &Credential, prefix: &str) {
    let pushed = errs.origin == Origin::Pushed;
    let secrets = &errs.snapshot.secrets;
    let mut problem = |field: &str, reason: String| {
        errs.entry(Section::Providers, i, format!("{path}.{field}"), reason);
    };
    let value = match credential {
        Credential::Env(_) | Credential::File(_) if pushed => {
            let field = if matches!(credential, Credential::Env(_)) { "env" } else { "file" };
            return problem(
                field,
                format!(
                    "`{field}` credentials are not allowed in a pushed snapshot (replicas never read \
                     their own environment or files for an object's author); use `secret`"
                ),
            );
        }
        Credential::Env(name) if name.is_empty() => {
            return problem("env", "must name an environment variable".into());
        }
        Credential::File(file) if file.is_empty() => return problem("file", "must name a file".into()),
        // Read when the config loads; checked then.
        Credential::Env(_) | Credential::File(_) => return,
        Credential::Value(value) => ("value", value.expose()),
        Credential::Secret(name) => match secrets.get(name) {
            Some(value) => ("secret", value.expose()),
            None => return problem("secret", format!("no entry {name:?} in `secrets`")),
        },
    };
    let (field, value) = value;
    if value.is_empty() {
        return problem(field, "must not be empty".into());
    }
    let mut header = String::with_capacity(prefix.len() + value.len());
    header.push_str(prefix);
    header.push_str(value);
    if http::HeaderValue::from_str(&header).is_err() {
        // Never echo the value: it is a secret.
        problem(
            field,
            "contains characters not allowed in an HTTP header (control characters or non-ASCII)".into(),
        );
    }
}

/// The longest time limit a route or provider may set: a day. Anything longer is a typo.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// Each time limit that is set (`(field, milliseconds)` under `path`) is from 1 ms to a day.
fn check_time_limits<const N: usize>(
    errs: &mut Collector<'_>,
    section: Section,
    i: usize,
    path: &str,
    limits: [(&str, Option<u64>); N],
) {
    for (field, value) in limits {
        if value.is_some_and(|ms| ms == 0 || ms > MAX_TIMEOUT_MS) {
            errs.entry(
                section,
                i,
                format!("{path}.{field}"),
                format!("must be from 1 to {MAX_TIMEOUT_MS} (one day)"),
            );
        }
    }
}

fn check_policy_refs(
    errs: &mut Collector<'_>,
    section: Section,
    i: usize,
    refs: &[String],
    policies: &HashSet<&str>,
) {
    for (p, name) in refs.iter().enumerate() {
        if !policies.contains(name.as_str()) {
            let reason = errs.missing(Section::Policies, "policy", name);
            errs.entry(section, i, format!("{section}[{i}].policies[{p}]"), reason);
        }
    }
}

fn validate_keys(errs: &mut Collector<'_>, routes: &HashSet<&str>, policies: &HashSet<&str>) {
    let snapshot = errs.snapshot;
    let mut ids = HashMap::new();
    let mut digests = HashMap::new();
    for (i, key) in snapshot.keys.iter().enumerate() {
        let KeyConfig {
            id,
            labels,
            hash,
            hashes,
            models,
            disabled: _,
            expires_at,
            policies: refs,
            budget,
            source: _,
        } = key;
        // Paths are formatted only for a problem: a snapshot holds 10,000 keys, each validated
        // on every push.
        if let Some(reason) = name_problem(id, "key id") {
            errs.entry(Section::Keys, i, format!("keys[{i}].id"), reason);
        }
        if let Some(first) = ids.get(id.as_str()) {
            errs.entry(
                Section::Keys,
                i,
                format!("keys[{i}].id"),
                format!("duplicate key id {id:?} (also keys[{first}])"),
            );
            continue;
        }
        ids.insert(id.as_str(), i);
        for (label, value) in labels {
            if let Some(reason) = name_problem(label, "label name") {
                errs.entry(Section::Keys, i, format!("keys[{i}].labels"), reason);
            }
            if value.len() > 253 || value.chars().any(char::is_control) {
                errs.entry(
                    Section::Keys,
                    i,
                    format!("keys[{i}].labels.{label}"),
                    "must be at most 253 characters without control characters",
                );
            }
        }
        if hash.is_none() && hashes.is_empty() {
            errs.entry(Section::Keys, i, format!("keys[{i}]"), "set `hash` (or `hashes`)");
        }
        // The `hash` shorthand (no index), then each entry of `hashes`.
        let shorthand = hash.iter().map(|h| (None, h, None, None));
        let listed = hashes.iter().enumerate().map(|(h, entry)| {
            (Some(h), &entry.hash, entry.not_before.as_deref(), entry.expires_at.as_deref())
        });
        for (h, hash, not_before, expires) in shorthand.chain(listed) {
            let path = |field: &str| match h {
                None => format!("keys[{i}].hash"),
                Some(h) => format!("keys[{i}].hashes[{h}].{field}"),
            };
            match hash.digest() {
                Ok(digest) => {
                    if let Some(first) = digests.insert(digest, i)
                        && first != i
                    {
                        errs.entry(Section::Keys, i, path("hash"), format!("same hash as keys[{first}]"));
                    }
                }
                Err(reason) => errs.entry(Section::Keys, i, path("hash"), reason),
            }
            for (field, time) in [("not_before", not_before), ("expires_at", expires)] {
                if let Some(time) = time
                    && let Err(reason) = parse_rfc3339(time)
                {
                    errs.entry(Section::Keys, i, path(field), reason);
                }
            }
        }
        if let Some(models) = models {
            if models.is_empty() {
                errs.entry(
                    Section::Keys,
                    i,
                    format!("keys[{i}].models"),
                    "an empty list allows nothing; omit the field to allow every model",
                );
            }
            // In a pushed snapshot a key may name a model whose route is not serving (rejected,
            // or not created yet): the key simply cannot use it. Refusing the key would turn one
            // team's broken route into an outage of every other model the key may use.
            if errs.origin == Origin::File {
                for (m, model) in models.iter().enumerate() {
                    if model != "*" && !routes.contains(model.as_str()) {
                        errs.entry(
                            Section::Keys,
                            i,
                            format!("keys[{i}].models[{m}]"),
                            format!("unknown model {model:?} (no route has it)"),
                        );
                    }
                }
            }
        }
        if let Some(expires_at) = expires_at
            && let Err(reason) = parse_rfc3339(expires_at)
        {
            errs.entry(Section::Keys, i, format!("keys[{i}].expires_at"), reason);
        }
        check_policy_refs(errs, Section::Keys, i, refs, policies);
        if let Some(budget) = budget {
            validate_budget(errs, i, budget);
        }
    }
}
