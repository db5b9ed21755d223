//! The objects, and every write to them: the bookkeeping a real apiserver does (a global
//! `resourceVersion`, `uid`, `creationTimestamp`, `generation`), optimistic concurrency, the
//! status subresource split, and for custom resources pruning, defaulting and schema + CEL
//! validation. Deletion, finalizers and garbage collection are in `lifecycle.rs`; watch fan-out
//! in `watch.rs`. Everything runs on the server's one thread, so a write and the watch events
//! it causes are one step: no watcher can see them out of order.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clock;
use crate::crds;
use crate::discovery::OpenApi;
use crate::kinds::Kind;
use crate::patch::{self, PatchType};
use crate::schema;
use crate::status::{ApiError, Cause};
use crate::validate::Validator;
use crate::watch::{EventType, Hub};
use crate::wording;

/// (index into `Store::kinds`, namespace or "" when cluster-scoped, name)
pub(crate) type Key = (usize, String, String);

pub(crate) struct Store {
    pub kinds: Vec<Kind>,
    pub(crate) validator: Validator,
    /// The CRDs this server can serve (`crds.rs`), as generated, without status.
    pub(crate) builtin_crds: Vec<Value>,
    /// Discovery's OpenAPI documents for the kinds served now.
    pub openapi: OpenApi,
    rv: u64,
    pub(crate) objects: BTreeMap<Key, Value>,
    pub(crate) hub: Hub,
}

/// Query parameters that change how a write is done.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: everything but storing.
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields are refused instead of pruned with a warning.
    pub strict: bool,
    pub field_manager: Option<String>,
}

/// What a write returns: the object as stored, whether it was created, and `Warning` headers.
#[derive(Debug)]
pub(crate) struct Written {
    pub object: Value,
    pub created: bool,
    pub warnings: Vec<String>,
}

/// Which part of an object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The main endpoint: everything but `.status` when the kind has a status subresource.
    Main,
    /// `/status`: only `.status`.
    Status,
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// An object without what the server alone changes, to tell a no-op write from a real one.
fn content(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

/// What `metadata.generation` tracks: everything but metadata and status.
fn spec_of(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    object
}

/// DNS-1123 subdomain: what names of the kinds served here must be.
fn valid_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
        && name.starts_with(alnum)
        && name.ends_with(alnum)
}

impl Store {
    /// A store with the usual namespaces and, when `install_crds`, the CRDs given.
    pub fn new(
        kinds: Vec<Kind>,
        validator: Validator,
        builtin_crds: Vec<Value>,
        install_crds: bool,
        history: usize,
    ) -> Self {
        let openapi = OpenApi::new(&kinds, &validator);
        let mut store = Self {
            kinds,
            validator,
            builtin_crds,
            openapi,
            rv: 0,
            objects: BTreeMap::new(),
            hub: Hub::new(history),
        };
        let now = clock::rfc3339(clock::now());
        let crd_kind = store.kind_index("apiextensions.k8s.io", "customresourcedefinitions");
        let namespace_kind = store.kind_index("", "namespaces");
        let namespaces = ["default", "kube-system", "kube-public"].map(|name| {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                   "status": {"phase": "Active"}})
        });
        let installed: Vec<Value> = if install_crds {
            store
                .builtin_crds
                .iter()
                .map(|crd| {
                    let mut crd = crd.clone();
                    crd["status"] = crds::status(&crd);
                    crd
                })
                .collect()
        } else {
            Vec::new()
        };
        let seeds =
            installed.into_iter().map(|o| (crd_kind, o)).chain(namespaces.map(|o| (namespace_kind, o)));
        for (kind, mut object) in seeds {
            let Some(kind) = kind else { continue };
            store.rv += 1;
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("uid".into(), json!(clock::uid()));
                meta.insert("resourceVersion".into(), json!(store.rv.to_string()));
                meta.insert("creationTimestamp".into(), json!(now));
            }
            let key = (kind, String::new(), text(&object, "/metadata/name").to_owned());
            store.hub.record(store.rv, kind, EventType::Added, &object);
            store.objects.insert(key, object);
        }
        store.sync_served();
        store
    }

    pub fn kind_index(&self, group: &str, plural: &str) -> Option<usize> {
        self.kinds.iter().position(|k| k.group == group && k.plural == plural)
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The next resourceVersion, for a change about to be stored.
    pub(crate) fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn key(&self, kind: usize, namespace: &str, name: &str) -> Key {
        let namespace = if self.kinds[kind].namespaced { namespace } else { "" };
        (kind, namespace.to_owned(), name.to_owned())
    }

    pub fn get(&self, kind: usize, namespace: &str, name: &str) -> Result<&Value, ApiError> {
        self.objects
            .get(&self.key(kind, namespace, name))
            .ok_or_else(|| ApiError::not_found(&self.kinds[kind], name))
    }

    /// Objects of a kind, in one namespace or all, sorted by namespace and name.
    pub fn list(&self, kind: usize, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .range((kind, String::new(), String::new())..(kind + 1, String::new(), String::new()))
            .filter(|((_, ns, _), _)| namespace.is_none_or(|n| n == ns))
            .map(|(_, v)| v)
            .collect()
    }

    fn check_namespace(&self, kind: usize, namespace: &str) -> Result<(), ApiError> {
        if !self.kinds[kind].namespaced {
            return Ok(());
        }
        let ns_kind = self.kind_index("", "namespaces").unwrap_or_default();
        match self.objects.get(&(ns_kind, String::new(), namespace.to_owned())) {
            None => Err(ApiError::namespace_not_found(namespace)),
            Some(ns) if ns.pointer("/metadata/deletionTimestamp").is_some() => {
                Err(ApiError::namespace_terminating(namespace))
            }
            Some(_) => Ok(()),
        }
    }

    /// The identity checks every write shares: the body is this kind, and names the object and
    /// namespace the URL does.
    fn check_identity(&self, kind: usize, namespace: &str, object: &mut Value) -> Result<(), ApiError> {
        let k = &self.kinds[kind];
        let Some(map) = object.as_object_mut() else {
            return Err(ApiError::bad_request("the request body must be a JSON object"));
        };
        for (field, want) in [("apiVersion", k.api_version()), ("kind", k.kind.clone())] {
            match map.get(field).and_then(Value::as_str) {
                None | Some("") => drop(map.insert(field.into(), json!(want))),
                Some(got) if got == want => {}
                Some(got) => {
                    return Err(ApiError::bad_request(format!(
                        "the API version in the data ({got}) does not match the expected API version ({})",
                        k.api_version()
                    )));
                }
            }
        }
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else {
            return Err(ApiError::bad_request("metadata must be an object"));
        };
        if k.namespaced {
            match meta.get("namespace").and_then(Value::as_str) {
                None | Some("") => drop(meta.insert("namespace".into(), json!(namespace))),
                Some(ns) if ns == namespace => {}
                Some(_) => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        } else {
            meta.remove("namespace");
        }
        Ok(())
    }

    /// Pruning, defaulting and validation of a custom resource (nothing for built-ins).
    fn admit(
        &self,
        kind: usize,
        object: &mut Value,
        options: &WriteOptions,
    ) -> Result<Vec<String>, ApiError> {
        let k = &self.kinds[kind];
        if k.kind == "Secret" {
            fold_string_data(object);
        }
        if self.is_crd_kind(kind) {
            self.admit_crd(k, object)?;
        }
        if !k.custom {
            return Ok(Vec::new());
        }
        let Some(schema) = self.validator.schema(&k.kind) else { return Ok(Vec::new()) };
        let unknown = schema::prune(object, schema);
        if options.strict && !unknown.is_empty() {
            let fields: Vec<String> = unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {fields}",
                kind = k.kind,
                version = k.version,
                fields = fields.join(", ")
            )));
        }
        schema::apply_defaults(object, schema);
        let problems = self.validator.validate(object).unwrap_or_default();
        if !problems.is_empty() {
            let causes = problems.iter().map(|p| wording::cause(p, object)).collect();
            return Err(ApiError::invalid(k, text(object, "/metadata/name"), causes));
        }
        Ok(unknown.into_iter().map(|f| format!("unknown field \"{f}\"")).collect())
    }

    pub fn create(
        &mut self,
        kind: usize,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let k = self.kinds[kind].clone();
        self.check_identity(kind, namespace, &mut object)?;
        let meta = object.get_mut("metadata").and_then(Value::as_object_mut);
        let Some(meta) = meta else { return Err(ApiError::bad_request("metadata must be an object")) };
        let mut name = meta.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        if name.is_empty() {
            let prefix = meta.get("generateName").and_then(Value::as_str).unwrap_or_default();
            if prefix.is_empty() {
                let cause = Cause {
                    field: "metadata.name".into(),
                    reason: "FieldValueRequired",
                    message: "Required value: name or generateName is required".into(),
                };
                return Err(ApiError::invalid(&k, "", vec![cause]));
            }
            name = format!("{prefix}{}", clock::name_suffix());
            meta.insert("name".into(), json!(name));
        }
        if !valid_name(&name) {
            let message = format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            );
            let cause = Cause { field: "metadata.name".into(), reason: "FieldValueInvalid", message };
            return Err(ApiError::invalid(&k, &name, vec![cause]));
        }
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(field);
        }
        meta.insert("uid".into(), json!(clock::uid()));
        meta.insert("creationTimestamp".into(), json!(clock::rfc3339(clock::now())));
        if k.custom {
            meta.insert("generation".into(), json!(1));
        }
        if k.kind == "Namespace" {
            object["status"] = json!({"phase": "Active"});
        }
        if k.kind == "Event"
            && k.group == "events.k8s.io"
            && object.get("eventTime").is_none_or(Value::is_null)
        {
            object["eventTime"] = json!(clock::rfc3339_micros());
        }
        self.check_namespace(kind, namespace)?;
        let key = self.key(kind, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::already_exists(&k, &name));
        }
        let warnings = self.admit(kind, &mut object, options)?;
        if !options.dry_run {
            let rv = self.bump();
            object["metadata"]["resourceVersion"] = json!(rv.to_string());
            self.hub.record(rv, kind, EventType::Added, &object);
            self.objects.insert(key, object.clone());
            if self.is_crd_kind(kind) {
                self.sync_served();
            }
        }
        Ok(Written { object, created: true, warnings })
    }

    /// PUT: replace the object (or its status), if `metadata.resourceVersion` is absent or current.
    pub fn update(
        &mut self,
        kind: usize,
        namespace: &str,
        name: &str,
        mut object: Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        self.check_identity(kind, namespace, &mut object)?;
        let body_name = text(&object, "/metadata/name");
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        object["metadata"]["name"] = json!(name);
        self.store_update(kind, namespace, name, object, part, options)
    }

    /// PATCH: the patch applied to the current object, then stored like an update. A
    /// server-side apply of an object that does not exist creates it.
    #[expect(clippy::too_many_arguments, reason = "one parameter per part of a PATCH request")]
    pub fn patch(
        &mut self,
        kind: usize,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let k = self.kinds[kind].clone();
        if patch_type == PatchType::Strategic && k.custom {
            return Err(ApiError::unsupported_media_type("application/strategic-merge-patch+json"));
        }
        if patch_type == PatchType::Apply && options.field_manager.as_deref().is_none_or(str::is_empty) {
            let cause = Cause {
                field: "fieldManager".into(),
                reason: "FieldValueRequired",
                message: "Required value: is required for apply patch".into(),
            };
            let mut error = ApiError::invalid(&k, "", vec![cause]);
            error.message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into();
            return Err(error);
        }
        let current = match self.get(kind, namespace, name) {
            Ok(current) => current.clone(),
            Err(_) if patch_type == PatchType::Apply && part == Part::Main => {
                let mut object = patch.clone();
                if text(&object, "/metadata/name").is_empty() {
                    object["metadata"]["name"] = json!(name);
                }
                return self.create(kind, namespace, object, options);
            }
            Err(e) => return Err(e),
        };
        let mut patched = current.clone();
        match patch_type {
            PatchType::Merge => patch::merge(&mut patched, patch),
            PatchType::Json => patch::json_patch(&mut patched, patch)?,
            PatchType::Strategic => patch::strategic(&mut patched, patch, "")?,
            PatchType::Apply => {
                let applied_name = text(patch, "/metadata/name");
                if !applied_name.is_empty() && applied_name != name {
                    return Err(ApiError::bad_request(
                        "the name of the applied object does not match the URL",
                    ));
                }
                patch::apply(&mut patched, patch);
            }
        }
        self.store_update(kind, namespace, name, patched, part, options)
    }

    fn store_update(
        &mut self,
        kind: usize,
        namespace: &str,
        name: &str,
        mut object: Value,
        part: Part,
        options: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let k = self.kinds[kind].clone();
        self.check_identity(kind, namespace, &mut object)?;
        let key = self.key(kind, namespace, name);
        let old = self.objects.get(&key).cloned().ok_or_else(|| ApiError::not_found(&k, name))?;
        let wanted_rv = text(&object, "/metadata/resourceVersion");
        if !wanted_rv.is_empty() && wanted_rv != text(&old, "/metadata/resourceVersion") {
            return Err(ApiError::modified(&k, name));
        }
        if part == Part::Status {
            // Only the status changes; everything else stays as stored.
            let status = object.get("status").cloned();
            object = old.clone();
            match status {
                Some(status) => object["status"] = status,
                None => drop(object.as_object_mut().map(|m| m.remove("status"))),
            }
        } else if k.status {
            match old.get("status") {
                Some(status) => object["status"] = status.clone(),
                None => drop(object.as_object_mut().map(|m| m.remove("status"))),
            }
        }
        // What only the server sets stays as the server set it.
        for field in
            ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"]
        {
            match old["metadata"].get(field) {
                Some(value) => object["metadata"][field] = value.clone(),
                None => drop(object["metadata"].as_object_mut().map(|m| m.remove(field))),
            }
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            let old_finalizers = old.pointer("/metadata/finalizers").and_then(Value::as_array);
            let added = object
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|f| !old_finalizers.is_some_and(|o| o.contains(f)));
            if added {
                let cause = Cause {
                    field: "metadata.finalizers".into(),
                    reason: "FieldValueForbidden",
                    message: "Forbidden: no new finalizers can be added if the object is being deleted"
                        .into(),
                };
                return Err(ApiError::invalid(&k, name, vec![cause]));
            }
        }
        let warnings = self.admit(kind, &mut object, options)?;
        if k.custom && spec_of(&object) != spec_of(&old) {
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            object["metadata"]["generation"] = json!(generation + 1);
        }
        object["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if content(&object) == content(&old) || options.dry_run {
            // A no-op write stores nothing and tells no watcher, as the apiserver does.
            return Ok(Written { object, created: false, warnings });
        }
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let finalized = object.pointer("/metadata/deletionTimestamp").is_some()
            && object.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
        self.hub.record(rv, kind, EventType::Modified, &object);
        self.objects.insert(key.clone(), object.clone());
        if finalized {
            // The last finalizer is gone from an object being deleted: it goes now.
            self.remove(&key);
        }
        Ok(Written { object, created: false, warnings })
    }
}

/// Secrets: `stringData` is write-only, merged into `data` (base64) as the apiserver does, so
/// readers of `data` see what `kubectl apply` of a `stringData` manifest wrote.
fn fold_string_data(secret: &mut Value) {
    let Some(map) = secret.as_object_mut() else { return };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = map.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (key, value) in strings {
            data[key.as_str()] = json!(base64(value.as_str().unwrap_or_default().as_bytes()));
        }
    }
    if map.get("type").is_none_or(Value::is_null) {
        map.insert("type".into(), json!("Opaque"));
    }
}

/// Standard base64 with padding (RFC 4648), as `data` values are encoded.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_data_is_folded_into_base64_data() {
        assert_eq!(
            [base64(b""), base64(b"f"), base64(b"fo"), base64(b"foo"), base64(b"foob")],
            ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg=="]
        );
        let mut secret = json!({"data": {"a": "YQ=="}, "stringData": {"key": "sk-1"}});
        fold_string_data(&mut secret);
        assert_eq!(secret, json!({"data": {"a": "YQ==", "key": "c2stMQ=="}, "type": "Opaque"}));
    }

    #[test]
    fn names_must_be_dns_subdomains() {
        assert!(valid_name("chat"));
        assert!(valid_name("llama-3.1-8b"));
        for bad in ["", "Chat", "-a", "a-", "a_b", &"a".repeat(254)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
