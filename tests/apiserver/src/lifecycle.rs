//! Deletion: preconditions, finalizers (an object with finalizers gets a `deletionTimestamp`
//! and stays until they are removed), garbage collection of dependents through
//! `ownerReferences`, and namespace termination.
//!
//! The garbage collector and the namespace controller are separate controllers on a real
//! cluster; here they run inside the request that removes the owner, so their effects are
//! visible (and their watch events sent) by the time the DELETE returns. `Background` and
//! `Foreground` differ only in order: foreground removes dependents before the owner. `Orphan`
//! strips the owner's references from its dependents.

use serde_json::{Value, json};

use crate::clock;
use crate::status::{self, ApiError};
use crate::store::{Key, Store};
use crate::watch::EventType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Propagation {
    Orphan,
    #[default]
    Background,
    Foreground,
}

/// The parts of `DeleteOptions` honoured here.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub propagation: Propagation,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// From a DELETE body (`DeleteOptions` JSON) and the query string's `propagationPolicy`.
    pub fn parse(body: &Value, query_policy: Option<&str>) -> Result<Self, ApiError> {
        let policy = body.get("propagationPolicy").and_then(Value::as_str).or(query_policy);
        let propagation = match policy {
            None | Some("Background") => Propagation::Background,
            Some("Foreground") => Propagation::Foreground,
            Some("Orphan") => Propagation::Orphan,
            Some(other) => {
                return Err(ApiError::bad_request(format!("unsupported propagationPolicy {other:?}")));
            }
        };
        let orphan = body.get("orphanDependents").and_then(Value::as_bool) == Some(true);
        let precondition = |field: &str| {
            body.pointer(&format!("/preconditions/{field}")).and_then(Value::as_str).map(str::to_owned)
        };
        let dry_run = body.get("dryRun").and_then(Value::as_array).is_some_and(|d| !d.is_empty());
        Ok(Self {
            propagation: if orphan { Propagation::Orphan } else { propagation },
            uid: precondition("uid"),
            resource_version: precondition("resourceVersion"),
            dry_run,
        })
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn has_finalizers(object: &Value) -> bool {
    object.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

impl Store {
    /// DELETE: the object as it was last stored (with `deletionTimestamp` when finalizers keep
    /// it), or a Success `Status` when it is gone.
    pub fn delete(
        &mut self,
        kind: usize,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let k = self.kinds[kind].clone();
        let object = self.get(kind, namespace, name)?.clone();
        let uid = text(&object, "/metadata/uid").to_owned();
        if let Some(want) = &options.uid
            && *want != uid
        {
            let why = format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}");
            return Err(ApiError::conflict(&k, name, &why));
        }
        if let Some(want) = &options.resource_version
            && want != text(&object, "/metadata/resourceVersion")
        {
            let why = format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                text(&object, "/metadata/resourceVersion")
            );
            return Err(ApiError::conflict(&k, name, &why));
        }
        if options.dry_run {
            return Ok(object);
        }
        let key: Key =
            (kind, if k.namespaced { namespace.to_owned() } else { String::new() }, name.to_owned());
        match options.propagation {
            Propagation::Orphan => self.orphan_dependents(&uid),
            Propagation::Foreground => self.collect_dependents(&uid, true),
            Propagation::Background => {}
        }
        if k.kind == "Namespace" && k.group.is_empty() {
            return Ok(self.terminate_namespace(&key));
        }
        if self.is_crd_kind(kind) {
            self.remove_custom_objects(name);
        }
        Ok(self.mark_or_remove(&key, &k, &uid, name))
    }

    /// Sets `deletionTimestamp` on an object with finalizers, or removes one without.
    fn mark_or_remove(&mut self, key: &Key, k: &crate::kinds::Kind, uid: &str, name: &str) -> Value {
        let Some(object) = self.objects.get(key).cloned() else { return status::success(k, name, uid) };
        if object.pointer("/metadata/deletionTimestamp").is_some() {
            return object;
        }
        if has_finalizers(&object) {
            let mut object = object;
            let rv = self.bump();
            object["metadata"]["deletionTimestamp"] = json!(clock::rfc3339(clock::now()));
            object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.hub.record(rv, key.0, EventType::Modified, &object);
            self.objects.insert(key.clone(), object.clone());
            return object;
        }
        let removed = self.remove(key);
        removed.unwrap_or_else(|| status::success(k, name, uid))
    }

    /// Removes an object for good: a DELETED event, then its dependents are collected and, if
    /// it was the last object of a terminating namespace, the namespace goes too.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Value> {
        let mut object = self.objects.remove(key)?;
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.hub.record(rv, key.0, EventType::Deleted, &object);
        if self.is_crd_kind(key.0) {
            self.sync_served();
        }
        let uid = text(&object, "/metadata/uid").to_owned();
        self.collect_dependents(&uid, false);
        if !key.1.is_empty() {
            self.reap_namespace(&key.1);
        }
        Some(object)
    }

    /// Objects that name `uid` among their owners.
    fn dependents(&self, uid: &str) -> Vec<Key> {
        self.objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| text(r, "/uid") == uid))
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The garbage collector: a dependent whose owners are all gone is deleted (its own
    /// finalizers still hold it); one with a remaining owner loses the reference to `uid`.
    /// `foreground` deletes dependents of an owner that still exists (it is about to go).
    fn collect_dependents(&mut self, uid: &str, foreground: bool) {
        for key in self.dependents(uid) {
            let Some(dependent) = self.objects.get(&key) else { continue };
            let owners: Vec<String> = dependent
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| text(r, "/uid").to_owned())
                .collect();
            let live = |owner: &String| {
                (!foreground || owner != uid)
                    && self.objects.values().any(|o| text(o, "/metadata/uid") == owner)
            };
            if owners.iter().any(live) {
                self.drop_owner_reference(&key, uid);
            } else {
                let kind = self.kinds[key.0].clone();
                let dependent_uid = text(dependent, "/metadata/uid").to_owned();
                if foreground {
                    self.collect_dependents(&dependent_uid, true);
                }
                self.mark_or_remove(&key, &kind, &dependent_uid, &key.2.clone());
            }
        }
    }

    fn orphan_dependents(&mut self, uid: &str) {
        for key in self.dependents(uid) {
            self.drop_owner_reference(&key, uid);
        }
    }

    fn drop_owner_reference(&mut self, key: &Key, uid: &str) {
        let Some(mut object) = self.objects.get(key).cloned() else { return };
        if let Some(refs) = object.pointer_mut("/metadata/ownerReferences").and_then(Value::as_array_mut) {
            refs.retain(|r| text(r, "/uid") != uid);
            if refs.is_empty()
                && let Some(meta) = object["metadata"].as_object_mut()
            {
                meta.remove("ownerReferences");
            }
        }
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.hub.record(rv, key.0, EventType::Modified, &object);
        self.objects.insert(key.clone(), object);
    }

    /// The namespace controller: a deleted namespace turns `Terminating`, everything in it is
    /// deleted, and the namespace goes when the last object (finalizers included) has gone.
    fn terminate_namespace(&mut self, key: &Key) -> Value {
        let Some(mut namespace) = self.objects.get(key).cloned() else { return Value::Null };
        if namespace.pointer("/metadata/deletionTimestamp").is_none() {
            let rv = self.bump();
            namespace["metadata"]["deletionTimestamp"] = json!(clock::rfc3339(clock::now()));
            namespace["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            namespace["metadata"]["resourceVersion"] = json!(rv.to_string());
            namespace["status"] = json!({"phase": "Terminating"});
            self.hub.record(rv, key.0, EventType::Modified, &namespace);
            self.objects.insert(key.clone(), namespace.clone());
        }
        let name = key.2.clone();
        let contents: Vec<Key> = self.objects.keys().filter(|(_, ns, _)| *ns == name).cloned().collect();
        for content in contents {
            let Some(object) = self.objects.get(&content) else { continue };
            let uid = text(object, "/metadata/uid").to_owned();
            let kind = self.kinds[content.0].clone();
            self.mark_or_remove(&content, &kind, &uid, &content.2.clone());
        }
        self.reap_namespace(&name);
        self.objects.get(key).cloned().unwrap_or(namespace)
    }

    /// Removes a terminating namespace once nothing is left in it.
    fn reap_namespace(&mut self, name: &str) {
        let Some(ns_kind) = self.kind_index("", "namespaces") else { return };
        let key: Key = (ns_kind, String::new(), name.to_owned());
        let terminating =
            self.objects.get(&key).is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_some());
        let empty = !self.objects.keys().any(|(_, ns, _)| ns == name);
        if terminating && empty && self.objects.get(&key).is_some_and(|ns| !has_finalizers(ns)) {
            self.remove(&key);
        }
    }
}
