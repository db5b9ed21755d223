//! Semantic validation of a [`Snapshot`]: every problem, each with its field path.
//!
//! Deserialization already rejected unknown fields and wrong types; this checks what types cannot
//! express: references between sections, duplicates, ranges and formats.

use crate::{Credential, KeyConfig, LimitScope, ProviderConfig, SCHEMA_VERSION, Snapshot, parse_rfc3339};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One problem: where (`routes[2].backends[0].provider`) and why (`unknown provider "opnai"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Every problem found in one document. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn from_parse(path: String, err: &dyn fmt::Display) -> Self {
        // serde reports positions as "at line X column Y"; keep them, they help in a big file.
        // A syntax error has no meaningful path (serde_path_to_error renders it as `?`); the
        // message's line and column say where.
        let path = path.trim_end_matches(".?").trim_end_matches('?');
        let path = if path == "." { String::new() } else { path.to_owned() };
        // serde_yaml_ng prefixes its messages with the path it knows (for an unknown field, the
        // parent's); ours is as precise or more, so keep only ours.
        let message = err.to_string();
        let reason = match message.split_once(": ") {
            Some((prefix, rest)) if !prefix.is_empty() && path.starts_with(prefix) => rest.to_owned(),
            _ => message,
        };
        ConfigErrors(vec![ConfigError { path, reason }])
    }

    pub fn single(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError { path: path.into(), reason: reason.into() }])
    }

    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Default)]
struct Collector(Vec<ConfigError>);

impl Collector {
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ConfigError { path: path.into(), reason: reason.into() });
    }
}

pub(crate) fn validate(snapshot: &Snapshot) -> Result<(), ConfigErrors> {
    let mut errs = Collector::default();
    if snapshot.version != SCHEMA_VERSION {
        errs.push(
            "version",
            format!(
                "unsupported schema version {} (this build understands {SCHEMA_VERSION})",
                snapshot.version
            ),
        );
    }
    let providers = validate_providers(snapshot, &mut errs);
    let routes = validate_routes(snapshot, &providers, &mut errs);
    let keys = validate_keys(snapshot, &routes, &mut errs);
    validate_limits(snapshot, &keys, &routes, &mut errs);
    if errs.0.is_empty() { Ok(()) } else { Err(ConfigErrors(errs.0)) }
}

fn validate_name(path: String, name: &str, what: &str, errs: &mut Collector) {
    if name.is_empty() {
        errs.push(path, format!("{what} must not be empty"));
    } else if name.len() > 253 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        errs.push(
            path,
            format!("{what} {name:?} must be at most 253 characters without spaces or control characters"),
        );
    }
}

fn validate_providers<'a>(snapshot: &'a Snapshot, errs: &mut Collector) -> HashSet<&'a str> {
    let mut seen = HashMap::new();
    for (i, provider) in snapshot.providers.iter().enumerate() {
        let name = provider.name();
        validate_name(format!("providers[{i}].name"), name, "provider name", errs);
        if let Some(first) = seen.insert(name, i) {
            errs.push(
                format!("providers[{i}].name"),
                format!("duplicate provider {name:?} (also providers[{first}])"),
            );
        }
        match provider {
            ProviderConfig::OpenAi(p) => {
                if let Err(reason) = check_base_url(&p.base_url) {
                    errs.push(format!("providers[{i}].base_url"), reason);
                }
                if let Some(key) = &p.api_key {
                    check_credential(format!("providers[{i}].api_key"), key, errs);
                }
                for (h, header) in p.headers.iter().enumerate() {
                    let path = format!("providers[{i}].headers[{h}]");
                    if !is_header_name(&header.name) {
                        errs.push(
                            format!("{path}.name"),
                            format!("{:?} is not a valid HTTP header name", header.name),
                        );
                    } else if matches!(
                        header.name.to_ascii_lowercase().as_str(),
                        "host" | "content-length" | "transfer-encoding" | "connection"
                    ) {
                        errs.push(
                            format!("{path}.name"),
                            format!("{:?} is set by the gateway and cannot be overridden", header.name),
                        );
                    }
                    check_credential(format!("{path}.value"), &header.value, errs);
                }
                if p.timeout_ms == 0 {
                    errs.push(format!("providers[{i}].timeout_ms"), "must be greater than 0");
                }
            }
            ProviderConfig::Mock(p) => {
                if p.latency_ms > 600_000 {
                    errs.push(format!("providers[{i}].latency_ms"), "must be at most 600000 (10 minutes)");
                }
                if p.embedding_dimensions == 0 || p.embedding_dimensions > 8192 {
                    errs.push(format!("providers[{i}].embedding_dimensions"), "must be between 1 and 8192");
                }
            }
        }
    }
    seen.into_keys().collect()
}

fn check_base_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if url.contains(['?', '#']) || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{url:?} must be a plain base URL without query, fragment or spaces"));
    }
    Ok(())
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_credential(path: String, credential: &Credential, errs: &mut Collector) {
    match credential {
        Credential::Env(name) if name.is_empty() => {
            errs.push(format!("{path}.env"), "must name an environment variable")
        }
        Credential::File(file) if file.is_empty() => errs.push(format!("{path}.file"), "must name a file"),
        Credential::Value(value) if value.is_empty() => {
            errs.push(format!("{path}.value"), "must not be empty")
        }
        _ => {}
    }
}

fn validate_routes<'a>(
    snapshot: &'a Snapshot,
    providers: &HashSet<&str>,
    errs: &mut Collector,
) -> HashSet<&'a str> {
    let mut seen = HashMap::new();
    for (i, route) in snapshot.routes.iter().enumerate() {
        validate_name(format!("routes[{i}].model"), &route.model, "model name", errs);
        if let Some(first) = seen.insert(route.model.as_str(), i) {
            errs.push(
                format!("routes[{i}].model"),
                format!("duplicate route {:?} (also routes[{first}])", route.model),
            );
        }
        if route.backends.is_empty() {
            errs.push(format!("routes[{i}].backends"), "must list at least one backend");
        }
        for (b, backend) in route.backends.iter().enumerate() {
            let path = format!("routes[{i}].backends[{b}]");
            if !providers.contains(backend.provider.as_str()) {
                errs.push(format!("{path}.provider"), format!("unknown provider {:?}", backend.provider));
            }
            if let Some(model) = &backend.model {
                validate_name(format!("{path}.model"), model, "upstream model id", errs);
            }
            if backend.weight == 0 {
                errs.push(
                    format!("{path}.weight"),
                    "must be at least 1 (remove the backend to stop sending it traffic)",
                );
            } else if backend.weight > 10_000 {
                errs.push(format!("{path}.weight"), "must be at most 10000");
            }
        }
    }
    seen.into_keys().collect()
}

fn validate_keys<'a>(
    snapshot: &'a Snapshot,
    routes: &HashSet<&str>,
    errs: &mut Collector,
) -> HashSet<&'a str> {
    let mut names = HashMap::new();
    let mut hashes = HashMap::new();
    for (i, key) in snapshot.keys.iter().enumerate() {
        let KeyConfig { name, hash, models, disabled: _, expires_at } = key;
        validate_name(format!("keys[{i}].name"), name, "key name", errs);
        if let Some(first) = names.insert(name.as_str(), i) {
            errs.push(format!("keys[{i}].name"), format!("duplicate key name {name:?} (also keys[{first}])"));
        }
        match hash.digest() {
            Ok(digest) => {
                if let Some(first) = hashes.insert(digest, i) {
                    errs.push(format!("keys[{i}].hash"), format!("same hash as keys[{first}]"));
                }
            }
            Err(reason) => errs.push(format!("keys[{i}].hash"), reason),
        }
        if let Some(models) = models {
            if models.is_empty() {
                errs.push(
                    format!("keys[{i}].models"),
                    "an empty list allows nothing; omit the field to allow every model",
                );
            }
            for (m, model) in models.iter().enumerate() {
                if model != "*" && !routes.contains(model.as_str()) {
                    errs.push(
                        format!("keys[{i}].models[{m}]"),
                        format!("unknown model {model:?} (no route has it)"),
                    );
                }
            }
        }
        if let Some(expires_at) = expires_at
            && let Err(reason) = parse_rfc3339(expires_at)
        {
            errs.push(format!("keys[{i}].expires_at"), reason);
        }
    }
    names.into_keys().collect()
}

fn validate_limits(snapshot: &Snapshot, keys: &HashSet<&str>, routes: &HashSet<&str>, errs: &mut Collector) {
    let mut names = HashMap::new();
    for (i, limit) in snapshot.limits.iter().enumerate() {
        validate_name(format!("limits[{i}].name"), &limit.name, "limit name", errs);
        if let Some(first) = names.insert(limit.name.as_str(), i) {
            errs.push(
                format!("limits[{i}].name"),
                format!("duplicate limit {:?} (also limits[{first}])", limit.name),
            );
        }
        match &limit.scope {
            LimitScope::Key(key) if !keys.contains(key.as_str()) => {
                errs.push(format!("limits[{i}].scope.key"), format!("unknown key {key:?}"));
            }
            LimitScope::Route(route) if !routes.contains(route.as_str()) => {
                errs.push(format!("limits[{i}].scope.route"), format!("unknown route {route:?}"));
            }
            _ => {}
        }
        if limit.window_seconds == 0 || limit.window_seconds > 31 * 86_400 {
            errs.push(format!("limits[{i}].window_seconds"), "must be between 1 and 2678400 (31 days)");
        }
        match (limit.requests, limit.tokens) {
            (None, None) => errs.push(format!("limits[{i}]"), "must set requests, tokens or both"),
            (Some(0), _) => errs.push(format!("limits[{i}].requests"), "must be at least 1"),
            (_, Some(0)) => errs.push(format!("limits[{i}].tokens"), "must be at least 1"),
            _ => {}
        }
    }
}
