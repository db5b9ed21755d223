//! Per-object acceptance of pushed snapshots.
//!
//! A standalone file has one author: any problem refuses the whole file, loudly. A pushed
//! snapshot carries objects written by many teams, so one bad object must not block the rest:
//! entries with problems are left out, then entries that depended on them (a route on a rejected
//! provider, a key bound to a rejected policy), until what remains validates. Every rejected entry
//! is reported with the object it came from, so the operator can put the reason on its status.
//! Only a problem with the document itself (syntax, schema version) refuses it as a whole.

use crate::validate::{Gone, validate};
use crate::{
    ConfigError, ConfigErrors, KeyConfig, ObjectRef, Origin, PolicyConfig, ProviderConfig, RouteConfig,
    Section, Snapshot,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// What a replica serves from a pushed snapshot, and what it left out.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Only the entries that serve; it passes `validate(Origin::Pushed)`.
    pub snapshot: Snapshot,
    /// In document order per section.
    pub rejected: Vec<Rejection>,
}

/// One entry left out of a pushed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub section: Section,
    /// The entry's name (provider name, route model, key id or policy name), if it had one.
    pub name: String,
    pub object: Option<ObjectRef>,
    /// Every problem with the entry; paths index the document as it was received.
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reasons: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&reasons.join("; "))
    }
}

impl Snapshot {
    /// Accepts a pushed snapshot entry by entry (see the module docs).
    pub fn accept(self) -> Result<Accepted, ConfigErrors> {
        let origins = Origins::identity(&self);
        accept(self, origins, Vec::new())
    }

    /// Parses a pushed JSON snapshot entry by entry, so an entry that does not even parse (a
    /// field this version does not know, a wrong type) is rejected alone, then accepts it.
    pub fn from_pushed_json(text: &str) -> Result<Accepted, ConfigErrors> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: RawSnapshot = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        let mut rejected = Vec::new();
        let mut origins = Origins::default();
        let providers =
            parse_entries::<ProviderConfig>(Section::Providers, raw.providers, &mut origins, &mut rejected);
        let routes = parse_entries::<RouteConfig>(Section::Routes, raw.routes, &mut origins, &mut rejected);
        let keys = parse_entries::<KeyConfig>(Section::Keys, raw.keys, &mut origins, &mut rejected);
        let policies =
            parse_entries::<PolicyConfig>(Section::Policies, raw.policies, &mut origins, &mut rejected);
        let snapshot = Snapshot {
            version: raw.version,
            generation: raw.generation,
            providers,
            routes,
            keys,
            policies,
            secrets: raw.secrets,
            limits: raw.limits,
        };
        accept(snapshot, origins, rejected)
    }
}

/// The outer shape of a snapshot, with entries left unparsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    version: u32,
    #[serde(default)]
    generation: u64,
    #[serde(default)]
    providers: Vec<Box<RawValue>>,
    #[serde(default)]
    routes: Vec<Box<RawValue>>,
    #[serde(default)]
    keys: Vec<Box<RawValue>>,
    #[serde(default)]
    policies: Vec<Box<RawValue>>,
    #[serde(default)]
    secrets: crate::Secrets,
    #[serde(default)]
    limits: Vec<serde_json::Value>,
}

/// What can be read from an entry that does not parse: enough to report it.
#[derive(Deserialize, Default)]
struct Identity {
    #[serde(default)]
    source: Option<ObjectRef>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

fn parse_entries<T: DeserializeOwned>(
    section: Section,
    raw: Vec<Box<RawValue>>,
    origins: &mut Origins,
    rejected: &mut Vec<Rejection>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        // The plain parse first: only an entry that fails needs the path of every field tracked
        // (to say where), and a snapshot holds thousands of entries.
        if let Ok(value) = serde_json::from_str::<T>(entry.get()) {
            parsed.push(value);
            origins.get_mut(section).push(index);
            continue;
        }
        let mut deserializer = serde_json::Deserializer::from_str(entry.get());
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Ok(value) => {
                parsed.push(value);
                origins.get_mut(section).push(index);
            }
            Err(err) => {
                let identity: Identity = serde_json::from_str(entry.get()).unwrap_or_default();
                let inner = err.path().to_string();
                let path = if inner == "." {
                    format!("{section}[{index}]")
                } else {
                    format!("{section}[{index}].{inner}")
                };
                let ConfigErrors(mut errors) = ConfigErrors::from_parse(path, err.inner());
                for error in &mut errors {
                    error.object = identity.source.clone();
                    error.entry = Some((section, index));
                }
                rejected.push(Rejection {
                    section,
                    name: identity.name.or(identity.model).or(identity.id).unwrap_or_default(),
                    object: identity.source,
                    errors,
                });
            }
        }
    }
    parsed
}

/// For each section, the index each current entry had in the received document.
#[derive(Default)]
struct Origins([Vec<usize>; 4]);

impl Origins {
    fn identity(snapshot: &Snapshot) -> Self {
        let lens =
            [snapshot.providers.len(), snapshot.routes.len(), snapshot.keys.len(), snapshot.policies.len()];
        Origins(lens.map(|len| (0..len).collect()))
    }

    fn get_mut(&mut self, section: Section) -> &mut Vec<usize> {
        &mut self.0[slot(section)]
    }

    fn get(&self, section: Section, index: usize) -> usize {
        self.0[slot(section)].get(index).copied().unwrap_or(index)
    }
}

fn slot(section: Section) -> usize {
    match section {
        Section::Providers => 0,
        Section::Routes => 1,
        Section::Keys => 2,
        Section::Policies => 3,
    }
}

fn accept(
    mut snapshot: Snapshot,
    mut origins: Origins,
    mut rejected: Vec<Rejection>,
) -> Result<Accepted, ConfigErrors> {
    let mut gone: Gone = rejected.iter().map(|r| (r.section, r.name.clone())).collect();
    // Each round removes at least one entry, so this ends; in practice after as many rounds as
    // the dependency chain is long (policy → route → ...), plus one.
    loop {
        let errors = validate(&snapshot, Origin::Pushed, &gone);
        if errors.is_empty() {
            break;
        }
        let whole: Vec<ConfigError> = errors.iter().filter(|e| e.entry.is_none()).cloned().collect();
        if !whole.is_empty() {
            return Err(ConfigErrors(whole));
        }
        let mut by_entry: BTreeMap<(Section, usize), Vec<ConfigError>> = BTreeMap::new();
        for mut error in errors {
            let Some((section, index)) = error.entry else { continue };
            let original = origins.get(section, index);
            // Paths name the entry as it was received, not as it is after earlier removals.
            let current = format!("{section}[{index}]");
            if let Some(rest) = error.path.strip_prefix(&current) {
                error.path = format!("{section}[{original}]{rest}");
            }
            error.entry = Some((section, original));
            by_entry.entry((section, index)).or_default().push(error);
        }
        // Highest index first, so earlier indices stay valid while removing.
        for ((section, index), errors) in by_entry.into_iter().rev() {
            let (name, object) = remove(&mut snapshot, section, index);
            origins.get_mut(section).remove(index);
            gone.insert((section, name.clone()));
            rejected.push(Rejection { section, name, object, errors });
        }
    }
    rejected.sort_by_key(|r| (r.section, r.errors.first().and_then(|e| e.entry).map(|(_, i)| i)));
    Ok(Accepted { snapshot, rejected })
}

/// Removes one entry, returning its name and object.
fn remove(snapshot: &mut Snapshot, section: Section, index: usize) -> (String, Option<ObjectRef>) {
    match section {
        Section::Providers => {
            let p = snapshot.providers.remove(index);
            (p.name().to_owned(), p.source().cloned())
        }
        Section::Routes => {
            let r = snapshot.routes.remove(index);
            (r.model, r.source)
        }
        Section::Keys => {
            let k = snapshot.keys.remove(index);
            (k.id, k.source)
        }
        Section::Policies => {
            let p = snapshot.policies.remove(index);
            (p.name, p.source)
        }
    }
}
