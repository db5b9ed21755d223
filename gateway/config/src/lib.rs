//! The contract between the control plane and the data plane.
//!
//! A [`Snapshot`] is everything a gateway replica needs to serve traffic: upstream providers, public
//! model routes, virtual keys (as hashes) and rate limits. The standalone YAML file and the operator's
//! snapshot stream deserialize into this same type, so there is one schema and one validator.
//!
//! This crate knows nothing of Kubernetes, sockets or async runtimes on purpose: the operator
//! compiles custom resources *into* it, the gateway compiles it *into* runtime tables, and both
//! can be tested without a cluster.

mod accept;
mod bedrock;
pub mod counters;
pub mod document;
mod error;
mod key;
pub mod network;
mod policy;
mod provider;
mod route;
mod secret;
mod source;
pub mod stream;
mod time;
mod validate;
mod version;

pub use accept::{Accepted, Rejection};
pub use bedrock::{BedrockCredentials, BedrockProviderConfig, WebIdentityConfig};
pub use document::Document;
pub use error::{ConfigError, ConfigErrors, Section};
pub use key::{KeyConfig, KeyHash, KeyHashConfig, hash_key};
pub use network::AddressRule;
pub use policy::{BudgetConfig, FailureMode, PolicyConfig, PolicyMode, PolicyScope, parse_usd};
pub use provider::{
    AnthropicProviderConfig, AzureOpenAiProviderConfig, Credential, EntraConfig, GeminiProviderConfig,
    HeaderConfig, HttpSettings, MockProviderConfig, OpenAiProviderConfig, ProviderConfig, ProviderTimeouts,
    VertexProviderConfig, endpoint_url, vertex_base_url,
};
pub use route::{
    BackendConfig, Balancing, CapabilitiesConfig, PriceConfig, RetryConfig, RouteConfig, RouteTimeouts,
};
pub use secret::{SecretValue, Secrets};
pub use source::ObjectRef;
pub use time::{civil_date, parse_rfc3339, start_of_next_month};

use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema versions this crate reads: this one and the one before (see [`version`] for the
/// skew policy). A snapshot of any other version is refused as a whole, and a gateway keeps
/// serving the one it has, rather than half-understanding it.
pub const SUPPORTED_SCHEMA_VERSIONS: RangeInclusive<u32> = 1..=SCHEMA_VERSION;

/// The config the gateway serves when it is started without `--config`: one built-in `mock`
/// provider and a development key, so the README's first command answers without any API key.
pub const EMBEDDED_DEFAULT_YAML: &str = include_str!("default.yaml");

/// Who wrote a snapshot, which decides how much it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A file on the gateway's own disk: one author, who also controls the machine. Any problem
    /// refuses the whole file; `env` and `file` credentials are allowed.
    File,
    /// Sent by the operator, compiled from objects written by many teams: accepted entry by
    /// entry, no `env` or `file` credentials, and no loopback upstreams unless a provider allows
    /// private networks.
    Pushed,
}

impl Origin {
    /// Which upstream addresses a provider from this origin may reach.
    pub fn address_rule(self, allow_private_network: bool) -> AddressRule {
        match (allow_private_network, self) {
            (true, _) => AddressRule::AllowAll,
            (false, Origin::File) => AddressRule::NoLinkLocal,
            (false, Origin::Pushed) => AddressRule::NoLocal,
        }
    }
}

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
    /// Schema version of this document; one of [`SUPPORTED_SCHEMA_VERSIONS`].
    pub version: u32,
    /// Monotonic revision set by whoever produced the snapshot (the operator bumps it on every
    /// change). A gateway refuses a snapshot older than the one it serves; 0 means unversioned
    /// (hand-written files) and is always accepted.
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
    /// Rate-limit policies, bound by name from keys and routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyConfig>,
    /// Credential values referenced by `{ secret: name }` (pushed snapshots carry their
    /// credentials here and nowhere else).
    #[serde(default, skip_serializing_if = "Secrets::is_empty")]
    pub secrets: Secrets,
    /// Version 1's `limits`: never enforced, replaced by `policies`. Kept only so that a version-1
    /// file with `limits: []` still loads; a non-empty list is refused with a pointer to policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<serde_json::Value>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            version: SCHEMA_VERSION,
            generation: 0,
            providers: Vec::new(),
            routes: Vec::new(),
            keys: Vec::new(),
            policies: Vec::new(),
            secrets: Secrets::new(),
            limits: Vec::new(),
        }
    }
}

impl Snapshot {
    /// Parses and validates a file in the given format (all or nothing: [`Origin::File`]).
    pub fn parse(text: &str, format: Format) -> Result<Self, ConfigErrors> {
        match format {
            Format::Yaml => Self::from_yaml(text),
            Format::Json => Self::from_json(text),
        }
    }

    /// Parses a YAML (or JSON, which is YAML too) file and validates it.
    ///
    /// Errors carry the field path of every problem found, e.g.
    /// `routes[2].backends[0].provider: unknown provider "opnai"`.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigErrors> {
        let deserializer = serde_yaml_ng::Deserializer::from_str(text);
        let snapshot: Snapshot = serde_path_to_error::deserialize(deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        snapshot.validate(Origin::File)?;
        Ok(snapshot)
    }

    /// Parses a JSON file and validates it.
    pub fn from_json(text: &str) -> Result<Self, ConfigErrors> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let snapshot: Snapshot = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        snapshot.validate(Origin::File)?;
        Ok(snapshot)
    }

    /// The embedded default config, parsed. It is covered by tests, so this cannot fail at runtime
    /// unless the binary was built from a broken tree.
    pub fn embedded_default() -> Result<Self, ConfigErrors> {
        Self::from_yaml(EMBEDDED_DEFAULT_YAML)
    }

    /// Checks everything that depends only on the snapshot (references, values, formats, header
    /// values, URLs and their addresses), collecting every problem rather than the first. When
    /// this passes, a gateway compiles the snapshot; only reading a file's `env` or `file`
    /// credentials can still fail.
    pub fn validate(&self, origin: Origin) -> Result<(), ConfigErrors> {
        let errors = validate::validate(self, origin, &Default::default());
        if errors.is_empty() { Ok(()) } else { Err(ConfigErrors(errors)) }
    }

    /// Serializes to JSON (the operator's stream format). Includes the secrets section.
    pub fn to_json(&self) -> String {
        // Serializing plain data structs with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Every credential file the snapshot names (provider keys and header values), so whoever
    /// loads it can notice when a mounted Secret is rotated.
    pub fn credential_files(&self) -> Vec<&str> {
        let credentials = self.providers.iter().flat_map(ProviderConfig::credentials);
        credentials
            .filter_map(|c| match c {
                Credential::File(path) => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name() == name)
    }
}
