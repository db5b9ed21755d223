//! Per-object acceptance of pushed snapshots.
//!
//! A standalone file has one author: any problem refuses the whole file, loudly. A pushed
//! snapshot carries objects written by many teams, so one bad object must not block the rest:
//! entries with problems are left out, then entries that depended on them (a route on a rejected
//! provider, a key bound to a rejected policy), until what remains validates. Every rejected entry
//! is reported with the object it came from, so the operator can put the reason on its status.
//! Only a problem with the document itself (syntax, schema version) refuses it as a whole.

use crate::document::{Document, Entries};
use crate::validate::{Gone, validate};
use crate::{ConfigError, ConfigErrors, ObjectRef, Origin, Section, Snapshot};
use serde::de::DeserializeOwned;
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
        Document::from_json(text)?.accept()
    }
}

impl Document {
    /// Accepts the document entry by entry (see the module docs). Entries parse once per
    /// document: after changes are applied, only the changed ones parse again.
    pub fn accept(&self) -> Result<Accepted, ConfigErrors> {
        let mut rejected = Vec::new();
        let mut origins = Origins::default();
        let snapshot = Snapshot {
            version: self.version,
            generation: self.generation,
            providers: parsed(Section::Providers, &self.providers, &mut origins, &mut rejected),
            routes: parsed(Section::Routes, &self.routes, &mut origins, &mut rejected),
            keys: parsed(Section::Keys, &self.keys, &mut origins, &mut rejected),
            policies: parsed(Section::Policies, &self.policies, &mut origins, &mut rejected),
            secrets: self.secrets.clone(),
            limits: self.limits.clone(),
        };
        accept(snapshot, origins, rejected)
    }
}

/// The entries of one section that parse; those that do not are rejected, each alone.
fn parsed<T: DeserializeOwned + Clone>(
    section: Section,
    entries: &Entries<T>,
    origins: &mut Origins,
    rejected: &mut Vec<Rejection>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(entries.items.len());
    for (index, entry) in entries.items.iter().enumerate() {
        match entry.parsed() {
            Ok(value) => {
                parsed.push(value.clone());
                origins.get_mut(section).push(index);
            }
            Err(failure) => rejected.push(Rejection {
                section,
                name: entry.name.clone().unwrap_or_default(),
                object: failure.source.clone(),
                errors: failure.errors(section, index),
            }),
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
