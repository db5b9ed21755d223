//! Every manifest in `examples/kubernetes/` is one `kubectl apply` accepts: each Switchboard object
//! passes its CRD's schema and CEL rules and reads into the Rust types, and every reference
//! (providers, policies, Secrets and their keys) resolves within the examples, so the operator
//! would report no RefNotFound or SecretNotFound for them.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};
use switchboard_test_apiserver::validate::{Error, Validator, documents};

/// What the examples define: (namespace, kind, name) → the object.
type Objects = BTreeMap<(String, String, String), Value>;

fn load() -> Result<Vec<(String, Value)>, Error> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut out = Vec::new();
    let mut paths: Vec<_> =
        std::fs::read_dir(&dir)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    paths.sort();
    for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for document in documents(&std::fs::read_to_string(&path)?)? {
            out.push((name.clone(), document));
        }
    }
    Ok(out)
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn examples_pass_schema_and_cel() -> Result<(), Error> {
    let validator = Validator::new()?;
    let mut failures = Vec::new();
    let mut kinds = BTreeSet::new();
    for (file, object) in load()? {
        let kind = text(&object, "/kind").to_owned();
        let at = format!("{file}: {kind} {}", text(&object, "/metadata/name"));
        if let Some(problems) = validator.validate(&object) {
            failures.extend(problems.iter().map(|p| format!("{at}: {p}")));
            // The operator reads these objects through the Rust types.
            let read = match kind.as_str() {
                "LLMProvider" => serde_json::from_value::<LlmProvider>(object.clone()).map(drop),
                "ModelRoute" => serde_json::from_value::<ModelRoute>(object.clone()).map(drop),
                "VirtualKey" => serde_json::from_value::<VirtualKey>(object.clone()).map(drop),
                "RateLimitPolicy" => serde_json::from_value::<RateLimitPolicy>(object.clone()).map(drop),
                _ => Ok(()),
            };
            if let Err(error) = read {
                failures.push(format!("{at}: does not deserialize: {error}"));
            }
            kinds.insert(kind);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for kind in ["LLMProvider", "ModelRoute", "VirtualKey", "RateLimitPolicy"] {
        assert!(kinds.contains(kind), "examples/kubernetes has no {kind}");
    }
    Ok(())
}

#[test]
fn example_references_resolve() -> Result<(), Error> {
    let mut objects = Objects::new();
    for (file, object) in load()? {
        let namespace = text(&object, "/metadata/namespace");
        if namespace.is_empty() && text(&object, "/kind") != "Namespace" {
            return Err(
                format!("{file}: {} has no metadata.namespace", text(&object, "/metadata/name")).into()
            );
        }
        let key = (
            namespace.to_owned(),
            text(&object, "/kind").to_owned(),
            text(&object, "/metadata/name").to_owned(),
        );
        objects.insert(key, object);
    }
    let mut missing = Vec::new();
    for ((namespace, kind, name), object) in &objects {
        let mut expect = |target_kind: &str, target: &str, what: String| {
            if !objects.contains_key(&(namespace.clone(), target_kind.to_owned(), target.to_owned())) {
                missing.push(format!(
                    "{kind} {namespace}/{name}: {what} names {target_kind} {target:?}, not in the examples"
                ));
            }
        };
        let refs =
            |pointer: &str| object.pointer(pointer).and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, backend) in refs("/spec/backends").iter().enumerate() {
            expect("LLMProvider", text(backend, "/providerRef/name"), format!("backends[{i}].providerRef"));
        }
        for (i, policy) in refs("/spec/policyRefs").iter().enumerate() {
            expect("RateLimitPolicy", text(policy, "/name"), format!("policyRefs[{i}]"));
        }
        // Secrets: the provider's key and header values, and a rotation's previous key, must exist
        // with that key. A VirtualKey's own secretRef may be absent: the operator generates it.
        let mut secret_refs = Vec::new();
        secret_refs.extend(object.pointer("/spec/apiKey/secretKeyRef").cloned());
        secret_refs.extend(
            refs("/spec/headers").iter().filter_map(|h| h.pointer("/valueFrom/secretKeyRef").cloned()),
        );
        secret_refs.extend(object.pointer("/spec/rotation/previousSecretRef").cloned());
        for secret_ref in secret_refs {
            let (secret, key) = (text(&secret_ref, "/name"), text(&secret_ref, "/key"));
            let key = if key.is_empty() { "key" } else { key };
            match objects.get(&(namespace.clone(), "Secret".to_owned(), secret.to_owned())) {
                Some(s)
                    if s.pointer(&format!("/stringData/{key}")).is_some()
                        || s.pointer(&format!("/data/{key}")).is_some() => {}
                _ => missing.push(format!(
                    "{kind} {namespace}/{name}: Secret {secret:?} with key {key:?} is not in the examples"
                )),
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    Ok(())
}
