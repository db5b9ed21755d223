//! Config problems: where (a field path), why, and which entry and object they belong to.

use crate::ObjectRef;
use std::fmt;

/// A section of a snapshot holding named entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Providers,
    Routes,
    Keys,
    Policies,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Providers => "providers",
            Section::Routes => "routes",
            Section::Keys => "keys",
            Section::Policies => "policies",
        }
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: where (`routes[2].backends[0].provider`), why (`unknown provider "opnai"`),
/// and, when the entry came from the operator, which object to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
    /// The object the faulty entry was compiled from (pushed snapshots).
    pub object: Option<ObjectRef>,
    /// The entry at fault, by section and index; `None` for a problem with the whole document.
    pub entry: Option<(Section, usize)>,
}

impl ConfigError {
    /// A problem with the document as a whole (syntax, schema version).
    pub fn document(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError { path: path.into(), reason: reason.into(), object: None, entry: None }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !(self.path.is_empty() || self.path == ".") {
            write!(f, "{}", self.path)?;
            if let Some(object) = &self.object {
                write!(f, " ({object})")?;
            }
            f.write_str(": ")?;
        } else if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        f.write_str(&self.reason)
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
        ConfigErrors(vec![ConfigError::document(path, reason)])
    }

    pub fn single(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::document(path, reason)])
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
