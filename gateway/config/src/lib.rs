//! The contract between the control plane and the data plane.
//!
//! A [`Snapshot`] is everything a gateway replica needs to serve traffic: upstream providers, public
//! model routes, virtual keys (as hashes) and rate limits. The standalone YAML file and the operator's
//! snapshot stream deserialize into this same type, so there is one schema and one validator.
//!
//! This crate knows nothing of Kubernetes, sockets or async runtimes on purpose: the operator
//! compiles custom resources *into* it, the gateway compiles it *into* runtime tables, and both
//! can be tested without a cluster.

mod key;
mod limit;
mod provider;
mod route;
mod time;
mod validate;

pub use key::{KeyConfig, KeyHash, hash_key};
pub use limit::{LimitConfig, LimitScope};
pub use provider::{Credential, HeaderConfig, MockProviderConfig, OpenAiProviderConfig, ProviderConfig};
pub use route::{BackendConfig, RouteConfig};
pub use time::parse_rfc3339;
pub use validate::{ConfigError, ConfigErrors};

use serde::{Deserialize, Serialize};

/// The schema version this crate reads and writes. A snapshot with another version is refused
/// (and the gateway keeps serving the one it has) rather than half-understood.
pub const SCHEMA_VERSION: u32 = 1;

/// The config the gateway serves when it is started without `--config`: one built-in `mock`
/// provider and a development key, so the README's first command answers without any API key.
pub const EMBEDDED_DEFAULT_YAML: &str = include_str!("default.yaml");

/// How a snapshot document is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// JSON for `.json` files, YAML for everything else (YAML also reads most JSON, but not JSON
    /// indented with tabs, so a `.json` file gets the JSON parser and its error messages).
    pub fn of_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// One complete, self-contained gateway configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// Schema version of this document; must equal [`SCHEMA_VERSION`].
    pub version: u32,
    /// Monotonic revision set by whoever produced the snapshot (the operator bumps it on every
    /// change). Standalone files may leave it at 0.
    #[serde(default)]
    pub generation: u64,
    /// Upstream model providers, referenced by name from routes.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Public model names and the backends that serve them.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Virtual keys handed to callers, stored as hashes only.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Request and token limits per key or per route.
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
}

impl Snapshot {
    /// Parses and validates a document in the given format.
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigErrors> {
        match format {
            Format::Yaml => Self::from_yaml(text),
            Format::Json => Self::from_json(text),
        }
    }

    /// Parses a YAML (or JSON, which is YAML too) document and validates it.
    ///
    /// Errors carry the field path of every problem found, e.g.
    /// `routes[2].backends[0].provider: unknown provider "opnai"`.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let snapshot: Snapshot = serde_path_to_error::deserialize(deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    /// Parses a JSON document (the operator's stream format) and validates it.
    pub fn from_json(text: &str) -> Result<Self, ConfigErrors> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let snapshot: Snapshot = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    /// The embedded default config, parsed. It is covered by tests, so this cannot fail at runtime
    /// unless the binary was built from a broken tree.
    pub fn embedded_default() -> Result<Self, ConfigErrors> {
        Self::from_yaml(EMBEDDED_DEFAULT_YAML)
    }

    /// Checks cross-references and values, collecting every problem rather than the first.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        validate::validate(self)
    }

    /// Serializes to JSON (the operator's stream format).
    pub fn to_json(&self) -> String {
        // Serializing plain data structs with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Every credential file the snapshot names (provider keys and header values), so whoever
    /// loads it can notice when a mounted Secret is rotated.
    pub fn credential_files(&self) -> Vec<&str> {
        let mut files = Vec::new();
        for provider in &self.providers {
            if let ProviderConfig::OpenAi(p) = provider {
                let credentials = p.api_key.iter().chain(p.headers.iter().map(|h| &h.value));
                files.extend(credentials.filter_map(|c| match c {
                    Credential::File(path) => Some(path.as_str()),
                    Credential::Env(_) | Credential::Value(_) => None,
                }));
            }
        }
        files
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name() == name)
    }
}
