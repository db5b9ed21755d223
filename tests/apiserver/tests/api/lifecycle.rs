//! Deletion: finalizers through kube-runtime's own finalizer helper, owner-reference garbage
//! collection (the Secret the operator generates for a VirtualKey), and namespace termination.

use std::sync::Arc;

use futures::StreamExt;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{Api, DeleteParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};
use serde_json::json;
use switchboard_crds::VirtualKey;

use crate::common::{Error, api_error, next, start};

fn key(name: &str) -> Result<VirtualKey, Error> {
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name}, "spec": {"secretRef": {"name": format!("{name}-key")}}}),
    )?)
}

/// A Secret owned by `owner`, as the operator writes a generated key.
fn owned_secret<K: Resource<DynamicType = ()>>(name: &str, owners: &[&K]) -> Result<Secret, Error> {
    let refs: Vec<_> = owners.iter().filter_map(|o| o.controller_owner_ref(&())).collect();
    Ok(serde_json::from_value(
        json!({"metadata": {"name": name, "ownerReferences": refs}, "stringData": {"key": "sk"}}),
    )?)
}

#[tokio::test]
async fn finalizers_hold_a_deleted_object_until_kube_runtimes_helper_removes_them() -> Result<(), Error> {
    let env = start()?;
    env.namespace("fin").await?;
    let keys = Api::<VirtualKey>::namespaced(env.client.clone(), "fin");
    let created = keys.create(&PostParams::default(), &key("k")?).await?;
    let start_rv = created.resource_version().unwrap_or_default();
    let mut events = keys.watch(&WatchParams::default().fields("metadata.name=k"), &start_rv).await?.boxed();
    let cleaned = std::sync::atomic::AtomicBool::new(false);
    let reconcile = |event: Finalizer<VirtualKey>| {
        if matches!(event, Finalizer::Cleanup(_)) {
            cleaned.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        async { Ok::<_, kube::Error>(Action::await_change()) }
    };

    // First pass: the helper adds its finalizer (a JSON patch that tests the list is absent).
    finalizer(&keys, "switchboard.dev/cleanup", Arc::new(created), reconcile).await?;
    let with = keys.get("k").await?;
    assert_eq!(with.finalizers(), ["switchboard.dev/cleanup"]);

    keys.delete("k", &DeleteParams::default()).await?;
    let deleting = keys.get("k").await?;
    assert!(deleting.metadata.deletion_timestamp.is_some(), "no deletionTimestamp");
    let status = api_error(
        keys.replace("k", &PostParams::default(), &{
            let mut more = deleting.clone();
            more.metadata.finalizers.get_or_insert_default().push("another".into());
            more
        })
        .await,
    );
    assert_eq!(status.code, 422, "a finalizer was added to an object being deleted");

    // Second pass: cleanup, then the helper removes its finalizer (test + remove) and it goes.
    finalizer(&keys, "switchboard.dev/cleanup", Arc::new(deleting), reconcile).await?;
    assert!(cleaned.load(std::sync::atomic::Ordering::SeqCst), "no Cleanup event");
    assert_eq!(api_error(keys.get("k").await).code, 404);

    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("DELETED") {
        seen.push(match next(&mut events).await? {
            WatchEvent::Modified(k) => {
                format!("MODIFIED {:?} {}", k.finalizers(), k.metadata.deletion_timestamp.is_some())
            }
            WatchEvent::Deleted(_) => "DELETED".to_owned(),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(
        seen,
        [
            "MODIFIED [\"switchboard.dev/cleanup\"] false",
            "MODIFIED [\"switchboard.dev/cleanup\"] true",
            "MODIFIED [] true",
            "DELETED",
        ]
    );
    Ok(())
}

#[tokio::test]
async fn deleting_a_virtual_key_collects_the_secret_it_owns() -> Result<(), Error> {
    let env = start()?;
    env.namespace("gc").await?;
    let keys = Api::<VirtualKey>::namespaced(env.client.clone(), "gc");
    let secrets = Api::<Secret>::namespaced(env.client.clone(), "gc");
    let a = keys.create(&PostParams::default(), &key("a")?).await?;
    let b = keys.create(&PostParams::default(), &key("b")?).await?;
    secrets.create(&PostParams::default(), &owned_secret("a-key", &[&a])?).await?;
    secrets.create(&PostParams::default(), &owned_secret("shared", &[&a, &b])?).await?;
    secrets.create(&PostParams::default(), &owned_secret("b-key", &[&b])?).await?;

    keys.delete("a", &DeleteParams::background()).await?;
    assert_eq!(api_error(secrets.get("a-key").await).code, 404, "the owned Secret survived its owner");
    let shared = secrets.get("shared").await?;
    let owners: Vec<String> = shared.owner_references().iter().map(|r| r.name.clone()).collect();
    assert_eq!(owners, ["b"], "a Secret with a remaining owner stays, without the dangling reference");

    keys.delete("b", &DeleteParams::orphan()).await?;
    let orphan = secrets.get("b-key").await?;
    assert!(orphan.owner_references().is_empty(), "orphaned dependents lose the owner reference");
    assert!(secrets.get("shared").await?.owner_references().is_empty());
    Ok(())
}

#[tokio::test]
async fn deleting_a_namespace_deletes_what_is_in_it() -> Result<(), Error> {
    let env = start()?;
    env.namespace("doomed").await?;
    env.namespace("kept").await?;
    let namespaces = Api::<Namespace>::all(env.client.clone());
    for ns in ["doomed", "kept"] {
        let keys = Api::<VirtualKey>::namespaced(env.client.clone(), ns);
        keys.create(&PostParams::default(), &key("k")?).await?;
    }
    let held = Api::<VirtualKey>::namespaced(env.client.clone(), "doomed");
    let mut with_finalizer = key("held")?;
    with_finalizer.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    held.create(&PostParams::default(), &with_finalizer).await?;

    namespaces.delete("doomed", &DeleteParams::default()).await?;
    assert_eq!(api_error(held.get("k").await).code, 404);
    let terminating = namespaces.get("doomed").await?;
    assert_eq!(terminating.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
    let status = api_error(held.create(&PostParams::default(), &key("new")?).await);
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));

    // The last finalizer goes, the object goes, and so does the namespace.
    let mut last = held.get("held").await?;
    last.metadata.finalizers = None;
    held.replace("held", &PostParams::default(), &last).await?;
    assert_eq!(api_error(namespaces.get("doomed").await).code, 404);
    Api::<VirtualKey>::namespaced(env.client.clone(), "kept").get("k").await?;
    Ok(())
}
