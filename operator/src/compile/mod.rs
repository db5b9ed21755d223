//! The pure compile: custom resources and Secrets in, one snapshot and every object's status out.
//!
//! No I/O and no clock: the same [`Inputs`] always give a byte-identical snapshot. Rules, as in
//! Gateway API:
//! - an invalid object gets `Accepted=False, reason Invalid` naming the field, and is left out;
//! - two ModelRoutes claiming one public model name: the older wins, the newer gets
//!   `Accepted=False, reason Conflict` (likewise two VirtualKeys holding the same key);
//! - a reference that does not resolve gives `ResolvedRefs=False` naming what is missing: a route
//!   serves with the backends that resolve (none: it is left out); a route or key bound to a
//!   policy that does not serve is left out rather than served without its limits; a key naming a
//!   model without a route still serves the models it can reach;
//! - one bad object never blocks the others.
//!
//! Providers and policies are compiled first and checked with the contract's own per-object
//! acceptance ([`Snapshot::accept`], the code every replica runs), so routes and keys are built
//! only on what will serve. The finished snapshot is accepted once more, so what the operator
//! sends is exactly what replicas will serve.

mod bedrock;
mod fleet;
mod key;
mod provider;
mod route;
mod status;

pub use fleet::{Fleet, ServedSince};
pub use status::ObjectStatus;

use crate::Inputs;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use status::{Kind, Verdicts};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use switchboard_config::{ObjectRef, Snapshot, parse_rfc3339};

/// What one compile produced.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// What every replica should serve (secrets included: it travels only on the stream).
    pub snapshot: Snapshot,
    /// The desired status of every input object, sorted by kind, namespace and name.
    pub statuses: Vec<ObjectStatus>,
    /// VirtualKeys whose Secret does not exist: the controller generates a random key into a new
    /// Secret owned by the VirtualKey (so deleting the key deletes it), then compiles again.
    pub generate: Vec<KeySecretToGenerate>,
}

/// A Secret the controller must create for a VirtualKey.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeySecretToGenerate {
    pub namespace: String,
    pub name: String,
    /// The entry of the Secret's `data` that holds the key.
    pub key: String,
    /// The VirtualKey that will own it.
    pub owner: ObjectRef,
}

/// Compiles `inputs` (see the module docs): [`compile_snapshot`], then its statuses.
pub fn compile(inputs: &Inputs) -> Compiled {
    let draft = compile_snapshot(inputs);
    let statuses = draft.statuses(inputs);
    Compiled { snapshot: draft.snapshot, statuses, generate: draft.generate }
}

/// The first half of a compile: the snapshot and what the compile found about each object.
/// Statuses are its second half ([`Draft::statuses`]): the controller renders them again when
/// only what the replicas report changed, without compiling the snapshot again.
#[derive(Debug)]
pub struct Draft {
    pub snapshot: Snapshot,
    pub generate: Vec<KeySecretToGenerate>,
    verdicts: Verdicts,
}

impl Draft {
    /// Every input object's status for this snapshot, with `inputs.now` as the transition time
    /// and `inputs.fleet` for `Programmed`. `inputs` must hold the objects the draft was
    /// compiled from (their current statuses may differ: that is what `changed` reports).
    pub fn statuses(&self, inputs: &Inputs) -> Vec<ObjectStatus> {
        let now = inputs.now.clone().unwrap_or_else(epoch);
        status::render(inputs, &self.snapshot, &self.verdicts, &now)
    }
}

/// Compiles the snapshot of `inputs` (the first half of [`compile`]).
pub fn compile_snapshot(inputs: &Inputs) -> Draft {
    let secrets = SecretIndex::new(&inputs.secrets);
    let mut verdicts = Verdicts::default();

    let mut first = Snapshot { generation: inputs.generation, ..Snapshot::default() };
    provider::compile_all(&inputs.providers, &secrets, &mut first, &mut verdicts);
    route::compile_policies(&inputs.policies, &mut first, &mut verdicts);
    let serving = accept(first, &mut verdicts);

    let mut snapshot = Snapshot { generation: inputs.generation, ..Snapshot::default() };
    snapshot.providers = serving.providers;
    snapshot.policies = serving.policies;
    snapshot.secrets = serving.secrets;
    let existing = Existing::new(inputs);
    route::compile_routes(&inputs.routes, &existing, &mut snapshot, &mut verdicts);
    let generate = key::compile_all(&inputs.keys, &existing, &secrets, &mut snapshot, &mut verdicts);
    drop_unused_secrets(&mut snapshot);
    sort(&mut snapshot);
    let snapshot = accept(snapshot, &mut verdicts);
    Draft { snapshot, generate, verdicts }
}

/// Runs the contract's per-object acceptance and records its rejections on their objects.
fn accept(snapshot: Snapshot, verdicts: &mut Verdicts) -> Snapshot {
    let generation = snapshot.generation;
    match snapshot.accept() {
        Ok(accepted) => {
            for rejection in &accepted.rejected {
                if let Some(object) = &rejection.object {
                    for error in &rejection.errors {
                        verdicts.invalid_from_contract(object, &error.path, &error.reason);
                    }
                }
            }
            accepted.snapshot
        }
        // Only a document-level problem (the schema version) lands here, which would be a bug in
        // this compile: serve nothing new rather than something half-understood.
        Err(errors) => {
            verdicts.document_errors.push(errors.to_string());
            Snapshot { generation, ..Snapshot::default() }
        }
    }
}

/// Keeps only the secrets that something serving references.
fn drop_unused_secrets(snapshot: &mut Snapshot) {
    let used: std::collections::HashSet<String> = snapshot
        .providers
        .iter()
        .flat_map(|p| p.credentials())
        .filter_map(|c| match c {
            switchboard_config::Credential::Secret(name) => Some(name.clone()),
            _ => None,
        })
        .collect();
    snapshot.secrets.retain(|name, _| used.contains(name));
}

/// A fixed order, so equal inputs give byte-identical snapshots whatever order they came in.
fn sort(snapshot: &mut Snapshot) {
    snapshot.providers.sort_by(|a, b| a.name().cmp(b.name()));
    snapshot.routes.sort_by(|a, b| a.model.cmp(&b.model));
    snapshot.keys.sort_by(|a, b| a.id.cmp(&b.id));
    snapshot.policies.sort_by(|a, b| a.name.cmp(&b.name));
}

fn epoch() -> Time {
    Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// The name of an object in the snapshot: namespaced, because snapshot names are fleet-wide.
fn qualified(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// The namespace of an object (`default` when the manifest left it out, as kubectl does).
fn namespace(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// The provenance stamped on snapshot entries and used to address statuses.
fn object_ref(kind: Kind, meta: &ObjectMeta) -> ObjectRef {
    ObjectRef {
        kind: kind.as_str().to_owned(),
        namespace: namespace(meta).to_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        generation: meta.generation.unwrap_or_default(),
    }
}

/// Oldest first, then by namespace and name: who wins a conflict.
fn age_order<T>(objects: &[T], meta: impl Fn(&T) -> &ObjectMeta) -> Vec<&T> {
    let mut sorted: Vec<&T> = objects.iter().collect();
    sorted.sort_by_key(|o| {
        let m = meta(o);
        let created = m.creation_timestamp.as_ref().map_or(i64::MAX, |t| t.0.as_second());
        (created, namespace(m).to_owned(), m.name.clone().unwrap_or_default())
    });
    sorted
}

/// Formats a Kubernetes time as RFC 3339, the contract's form.
fn rfc3339(time: &Time) -> String {
    let text = time.0.to_string();
    debug_assert!(parse_rfc3339(&text).is_ok());
    text
}

/// Every provider and policy in the inputs by qualified name, serving or not, so a reference
/// can say whether its target is missing or refused.
struct Existing(HashSet<(&'static str, String)>);

impl Existing {
    fn new(inputs: &Inputs) -> Self {
        let qualify = |m: &ObjectMeta| qualified(namespace(m), m.name.as_deref().unwrap_or_default());
        let providers = inputs.providers.iter().map(|p| ("LLMProvider", qualify(&p.metadata)));
        let policies = inputs.policies.iter().map(|p| ("RateLimitPolicy", qualify(&p.metadata)));
        Existing(providers.chain(policies).collect())
    }

    /// Why a reference to `kind` `name` does not resolve.
    fn describe(&self, kind: &'static str, name: &str) -> String {
        if self.0.contains(&(kind, name.to_owned())) {
            format!("{kind} {name} is not serving (see its status)")
        } else {
            format!("{kind} {name} not found")
        }
    }
}

/// Resolves an object's policy references (namespace-local) against the policies that serve.
/// Returns the snapshot names that resolve, and a reason for each that does not; `what` ends the
/// reason ("the route is not served without its limits").
fn resolve_policies(
    references: &[switchboard_crds::LocalObjectRef],
    namespace: &str,
    serving: &HashSet<String>,
    existing: &Existing,
    what: &str,
) -> (Vec<String>, Vec<String>) {
    let mut resolved = Vec::with_capacity(references.len());
    let mut missing = Vec::new();
    for reference in references {
        let policy = qualified(namespace, &reference.name);
        if serving.contains(&policy) {
            resolved.push(policy);
        } else {
            let why = existing.describe("RateLimitPolicy", &policy);
            missing.push(format!("{why}; the {what} is not served without its limits"));
        }
    }
    (resolved, missing)
}

/// Secrets by namespace and name.
struct SecretIndex<'a>(HashMap<(&'a str, &'a str), &'a Secret>);

/// Why a Secret reference does not resolve.
enum SecretProblem {
    /// The Secret itself does not exist.
    Missing,
    /// It exists but has no such entry, or the entry is empty or not UTF-8.
    Entry(String),
}

impl<'a> SecretIndex<'a> {
    fn new(secrets: &'a [Arc<Secret>]) -> Self {
        let index = secrets
            .iter()
            .filter_map(|s| Some(((namespace(&s.metadata), s.metadata.name.as_deref()?), &**s)))
            .collect();
        SecretIndex(index)
    }

    /// The trimmed text of one entry of a Secret.
    fn value(&self, namespace: &str, name: &str, key: &str) -> Result<String, SecretProblem> {
        let secret = self.0.get(&(namespace, name)).ok_or(SecretProblem::Missing)?;
        let data: &BTreeMap<String, k8s_openapi::ByteString> = match &secret.data {
            Some(data) => data,
            None => {
                return Err(SecretProblem::Entry(format!("Secret {namespace}/{name} has no key {key:?}")));
            }
        };
        let bytes = data
            .get(key)
            .ok_or_else(|| SecretProblem::Entry(format!("Secret {namespace}/{name} has no key {key:?}")))?;
        let text = std::str::from_utf8(&bytes.0).map_err(|_| {
            SecretProblem::Entry(format!("Secret {namespace}/{name} key {key:?} is not UTF-8 text"))
        })?;
        let text = text.trim();
        if text.is_empty() {
            return Err(SecretProblem::Entry(format!("Secret {namespace}/{name} key {key:?} is empty")));
        }
        Ok(text.to_owned())
    }
}
