//! A snapshot in its wire form, and the changes from one to the next.
//!
//! The operator pushes a snapshot of 10,000 keys (megabytes) to every replica; a change to one
//! key should cost a replica one key, not the whole document. Both sides therefore hold the
//! snapshot as a [`Document`]: each entry's JSON text under its name (provider name, route
//! model, key id, policy name), sections sorted by name as the operator writes them. The operator
//! sends [`Changes`] between two documents (entries upserted or removed, secrets set or removed);
//! the replica applies them to the document it holds, re-parses only the entries that changed,
//! and checks that the result is exactly the operator's document by comparing
//! [`Document::digest`]s. Any mismatch (a missed message, a bug) makes the replica ask for the
//! whole document again rather than serve something else. Protocol: `docs/stream.md`.

use crate::{
    ConfigError, ConfigErrors, KeyConfig, PolicyConfig, ProviderConfig, RouteConfig, Section, Snapshot,
};
use crate::{SecretValue, Secrets};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// A snapshot as entries of JSON text by name. Entries are parsed only when asked for
/// ([`Entry::parsed`]), and the result is kept, so applying [`Changes`] parses only what
/// changed.
#[derive(Debug)]
pub struct Document {
    pub version: u32,
    pub generation: u64,
    pub(crate) providers: Entries<ProviderConfig>,
    pub(crate) routes: Entries<RouteConfig>,
    pub(crate) keys: Entries<KeyConfig>,
    pub(crate) policies: Entries<PolicyConfig>,
    pub(crate) secrets: Secrets,
    pub(crate) limits: Vec<serde_json::Value>,
}

/// One section's entries, in document order.
#[derive(Debug)]
pub(crate) struct Entries<T> {
    pub(crate) items: Vec<Entry<T>>,
    /// Whether every entry has a name and the names ascend strictly (as the operator writes
    /// them): only then can changes address entries by name.
    indexed: bool,
}

/// One entry: its name (if it has one), its text as received, and its parse once done.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub(crate) name: Option<String>,
    pub(crate) text: Box<RawValue>,
    parsed: OnceLock<Result<T, Box<EntryFailure>>>,
}

/// Why an entry does not parse, kept without its index (which changes as entries come and go).
#[derive(Debug)]
pub(crate) struct EntryFailure {
    /// The field path inside the entry (`.` for the entry itself).
    pub(crate) inner_path: String,
    pub(crate) message: String,
    pub(crate) source: Option<crate::ObjectRef>,
}

impl EntryFailure {
    /// The problem as it is reported for the entry at `index` of `section`.
    pub(crate) fn errors(&self, section: Section, index: usize) -> Vec<ConfigError> {
        let path = if self.inner_path == "." {
            format!("{section}[{index}]")
        } else {
            format!("{section}[{index}].{}", self.inner_path)
        };
        let ConfigErrors(mut errors) = ConfigErrors::from_parse(path, &self.message);
        for error in &mut errors {
            error.object = self.source.clone();
            error.entry = Some((section, index));
        }
        errors
    }
}

impl<T: DeserializeOwned> Entry<T> {
    fn new(name: Option<String>, text: Box<RawValue>) -> Self {
        Entry { name, text, parsed: OnceLock::new() }
    }

    /// The entry parsed (once): the plain parse first, and only for an entry that fails the
    /// parse that tracks field paths, to say where.
    pub(crate) fn parsed(&self) -> &Result<T, Box<EntryFailure>> {
        self.parsed.get_or_init(|| {
            if let Ok(value) = serde_json::from_str::<T>(self.text.get()) {
                return Ok(value);
            }
            let mut deserializer = serde_json::Deserializer::from_str(self.text.get());
            serde_path_to_error::deserialize::<_, T>(&mut deserializer).map_err(|err| {
                #[derive(Deserialize, Default)]
                struct Source {
                    #[serde(default)]
                    source: Option<crate::ObjectRef>,
                }
                let source: Source = serde_json::from_str(self.text.get()).unwrap_or_default();
                Box::new(EntryFailure {
                    inner_path: err.path().to_string(),
                    message: err.inner().to_string(),
                    source: source.source,
                })
            })
        })
    }
}

impl<T: DeserializeOwned> Entries<T> {
    fn new(items: Vec<Entry<T>>) -> Self {
        let indexed = items.iter().all(|e| e.name.is_some())
            && items.windows(2).all(|pair| pair[0].name < pair[1].name);
        Entries { items, indexed }
    }

    fn from_texts(section: Section, texts: Vec<Box<RawValue>>) -> Self {
        Entries::new(texts.into_iter().map(|text| Entry::new(entry_name(section, &text), text)).collect())
    }

    /// The changes that turn `self` into `newer` (both indexed).
    fn diff(&self, newer: &Entries<T>) -> SectionChanges {
        let mut changes = SectionChanges::default();
        let (mut old, mut new) = (self.items.iter().peekable(), newer.items.iter().peekable());
        loop {
            match (old.peek(), new.peek()) {
                (None, None) => break,
                (Some(o), Some(n)) if o.name == n.name => {
                    if o.text.get() != n.text.get() {
                        changes.upsert.push(n.text.clone());
                    }
                    old.next();
                    new.next();
                }
                (Some(o), Some(n)) if o.name < n.name => {
                    changes.remove.push(o.name.clone().unwrap_or_default());
                    old.next();
                }
                (Some(o), None) => {
                    changes.remove.push(o.name.clone().unwrap_or_default());
                    old.next();
                }
                (_, Some(n)) => {
                    changes.upsert.push(n.text.clone());
                    new.next();
                }
            }
        }
        changes
    }

    /// Applies one section's changes: entries are replaced, added or removed by name, the rest
    /// are moved over with their parses. Linear in the section's size, whatever the changes.
    fn apply(&mut self, section: Section, changes: SectionChanges) -> Result<(), String> {
        if changes.upsert.is_empty() && changes.remove.is_empty() {
            return Ok(());
        }
        if !self.indexed {
            return Err(format!("the {section} of the document held are not addressable by name"));
        }
        let mut upserts = BTreeMap::new();
        for text in changes.upsert {
            let name = entry_name(section, &text)
                .ok_or_else(|| format!("an upserted entry of {section} has no name"))?;
            if upserts.insert(name.clone(), text).is_some() {
                return Err(format!("{section} {name:?} is upserted twice"));
            }
        }
        let mut removes: BTreeSet<String> = changes.remove.into_iter().collect();
        if let Some(both) = removes.iter().find(|name| upserts.contains_key(*name)) {
            return Err(format!("{section} {both:?} is both upserted and removed"));
        }
        let old = std::mem::take(&mut self.items);
        let mut items = Vec::with_capacity(old.len() + upserts.len());
        let mut upserts = upserts.into_iter().peekable();
        for entry in old {
            let name = entry.name.as_deref().unwrap_or_default();
            while let Some((added, text)) = upserts.next_if(|(added, _)| added.as_str() < name) {
                items.push(Entry::new(Some(added), text));
            }
            if let Some((replaced, text)) = upserts.next_if(|(replaced, _)| replaced == name) {
                items.push(Entry::new(Some(replaced), text));
            } else if !removes.remove(name) {
                items.push(entry);
            }
        }
        items.extend(upserts.map(|(name, text)| Entry::new(Some(name), text)));
        if let Some(missing) = removes.first() {
            return Err(format!("{section} {missing:?} is removed but the document held has none"));
        }
        self.items = items;
        Ok(())
    }
}

/// The name an entry is addressed by: a provider's or policy's `name`, a route's `model`, a
/// key's `id` (`name` in schema version 1).
fn entry_name(section: Section, text: &RawValue) -> Option<String> {
    #[derive(Deserialize)]
    struct Names {
        name: Option<String>,
        model: Option<String>,
        id: Option<String>,
    }
    let names: Names = serde_json::from_str(text.get()).ok()?;
    match section {
        Section::Providers | Section::Policies => names.name,
        Section::Routes => names.model,
        Section::Keys => names.id.or(names.name),
    }
}

/// The outer shape of a snapshot document, with entries left as text.
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
    secrets: Secrets,
    #[serde(default)]
    limits: Vec<serde_json::Value>,
}

impl Document {
    /// Reads a pushed JSON document. Only a problem with the document itself fails here
    /// (syntax, the outer shape); entries are parsed later, each on its own.
    pub fn from_json(text: &str) -> Result<Document, ConfigErrors> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let raw: RawSnapshot = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|err| ConfigErrors::from_parse(err.path().to_string(), err.inner()))?;
        Ok(Document {
            version: raw.version,
            generation: raw.generation,
            providers: Entries::from_texts(Section::Providers, raw.providers),
            routes: Entries::from_texts(Section::Routes, raw.routes),
            keys: Entries::from_texts(Section::Keys, raw.keys),
            policies: Entries::from_texts(Section::Policies, raw.policies),
            secrets: raw.secrets,
            limits: raw.limits,
        })
    }

    /// The document of a snapshot (the operator's side).
    pub fn from_snapshot(snapshot: &Snapshot) -> Document {
        fn entries<T: Serialize + DeserializeOwned>(items: &[T], name: impl Fn(&T) -> &str) -> Entries<T> {
            Entries::new(
                items
                    .iter()
                    // Plain data with string keys always serializes.
                    .filter_map(|item| {
                        Some(Entry::new(
                            Some(name(item).to_owned()),
                            serde_json::value::to_raw_value(item).ok()?,
                        ))
                    })
                    .collect(),
            )
        }
        Document {
            version: snapshot.version,
            generation: snapshot.generation,
            providers: entries(&snapshot.providers, ProviderConfig::name),
            routes: entries(&snapshot.routes, |r| &r.model),
            keys: entries(&snapshot.keys, |k| &k.id),
            policies: entries(&snapshot.policies, |p| &p.name),
            secrets: snapshot.secrets.clone(),
            limits: snapshot.limits.clone(),
        }
    }

    /// The document as JSON text: what [`Snapshot::to_json`] writes for the same snapshot, byte
    /// for byte, so a replica holding this document and one sent the whole text agree.
    pub fn to_json(&self) -> String {
        fn section<T>(out: &mut String, field: &str, entries: &Entries<T>) {
            out.push_str(",\"");
            out.push_str(field);
            out.push_str("\":[");
            for (i, entry) in entries.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(entry.text.get());
            }
            out.push(']');
        }
        let size: usize = [
            self.providers.items.iter().map(|e| e.text.get().len() + 1).sum::<usize>(),
            self.routes.items.iter().map(|e| e.text.get().len() + 1).sum(),
            self.keys.items.iter().map(|e| e.text.get().len() + 1).sum(),
            self.policies.items.iter().map(|e| e.text.get().len() + 1).sum(),
        ]
        .iter()
        .sum();
        let mut out = String::with_capacity(size + 256);
        out.push_str(&format!("{{\"version\":{},\"generation\":{}", self.version, self.generation));
        section(&mut out, "providers", &self.providers);
        section(&mut out, "routes", &self.routes);
        section(&mut out, "keys", &self.keys);
        if !self.policies.items.is_empty() {
            section(&mut out, "policies", &self.policies);
        }
        // Plain data with string keys always serializes.
        if !self.secrets.is_empty() {
            out.push_str(",\"secrets\":");
            out.push_str(&serde_json::to_string(&self.secrets).unwrap_or_default());
        }
        if !self.limits.is_empty() {
            out.push_str(",\"limits\":");
            out.push_str(&serde_json::to_string(&self.limits).unwrap_or_default());
        }
        out.push('}');
        out
    }

    /// A short hash of [`Document::to_json`]: equal documents have equal digests on both sides.
    pub fn digest(&self) -> String {
        digest(&self.to_json())
    }

    /// The changes that turn `self` into `newer`, or `None` when a section of either is not
    /// addressable by name (then only the whole document can be sent).
    pub fn diff(&self, newer: &Document) -> Option<Changes> {
        let indexed =
            [&self.providers.indexed, &self.routes.indexed, &self.keys.indexed, &self.policies.indexed]
                .into_iter()
                .chain([
                    &newer.providers.indexed,
                    &newer.routes.indexed,
                    &newer.keys.indexed,
                    &newer.policies.indexed,
                ])
                .all(|indexed| *indexed);
        if !indexed || self.version != newer.version || self.limits != newer.limits {
            return None;
        }
        let mut secrets = SecretChanges::default();
        for (name, value) in &newer.secrets {
            if self.secrets.get(name) != Some(value) {
                secrets.upsert.insert(name.clone(), value.clone());
            }
        }
        secrets.remove =
            self.secrets.keys().filter(|name| !newer.secrets.contains_key(*name)).cloned().collect();
        Some(Changes {
            providers: self.providers.diff(&newer.providers),
            routes: self.routes.diff(&newer.routes),
            keys: self.keys.diff(&newer.keys),
            policies: self.policies.diff(&newer.policies),
            secrets,
        })
    }

    /// This document with `changes` applied, numbered `generation`. An error means the changes
    /// do not fit the document (they were computed against another one): the replica then asks
    /// for the whole document.
    pub fn apply(mut self, generation: u64, changes: Changes) -> Result<Document, String> {
        let Changes { providers, routes, keys, policies, secrets } = changes;
        self.providers.apply(Section::Providers, providers)?;
        self.routes.apply(Section::Routes, routes)?;
        self.keys.apply(Section::Keys, keys)?;
        self.policies.apply(Section::Policies, policies)?;
        for name in secrets.remove {
            if self.secrets.remove(&name).is_none() {
                return Err(format!("secret {name:?} is removed but the document held has none"));
            }
        }
        self.secrets.extend(secrets.upsert);
        self.generation = generation;
        Ok(self)
    }
}

/// The short hash the stream names documents by: the first 6 bytes of SHA-256, in hex.
pub fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// What changed between two documents (the body of a `delta` message).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    #[serde(default, skip_serializing_if = "SectionChanges::is_empty")]
    pub providers: SectionChanges,
    #[serde(default, skip_serializing_if = "SectionChanges::is_empty")]
    pub routes: SectionChanges,
    #[serde(default, skip_serializing_if = "SectionChanges::is_empty")]
    pub keys: SectionChanges,
    #[serde(default, skip_serializing_if = "SectionChanges::is_empty")]
    pub policies: SectionChanges,
    #[serde(default, skip_serializing_if = "SecretChanges::is_empty")]
    pub secrets: SecretChanges,
}

/// One section's changes: whole entries added or replaced, and the names of entries removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SectionChanges {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upsert: Vec<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl SectionChanges {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

/// Secret values set (added or changed) and removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretChanges {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upsert: BTreeMap<String, SecretValue>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
}

impl SecretChanges {
    pub fn is_empty(&self) -> bool {
        self.upsert.is_empty() && self.remove.is_empty()
    }
}

impl Changes {
    /// How many entries and secrets change.
    pub fn len(&self) -> usize {
        let sections = [&self.providers, &self.routes, &self.keys, &self.policies];
        sections.iter().map(|s| s.upsert.len() + s.remove.len()).sum::<usize>()
            + self.secrets.upsert.len()
            + self.secrets.remove.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
