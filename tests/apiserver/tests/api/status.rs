//! The status subresource and `metadata.generation`: what the operator relies on to tell a new
//! spec from its own status writes.

use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use switchboard_crds::ModelRoute;

use crate::common::{Error, start};

fn route() -> Result<ModelRoute, Error> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "chat"},
        "spec": {"model": "chat", "backends": [{"providerRef": {"name": "openai"}}]},
    }))?)
}

fn accepted(status: &str) -> serde_json::Value {
    json!({"status": {"observedGeneration": 1, "conditions": [{
        "type": "Accepted", "status": status, "reason": "Accepted", "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}})
}

#[tokio::test]
async fn status_writes_change_only_status_and_keep_the_generation() -> Result<(), Error> {
    let env = start()?;
    env.namespace("st").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "st");
    let created = routes.create(&PostParams::default(), &route()?).await?;
    assert_eq!(created.metadata.generation, Some(1));

    // Through /status: the status changes, the spec in the same patch does not, generation stays.
    let mut patch = accepted("True");
    patch["spec"] = json!({"model": "sneaky"});
    let patched = routes.patch_status("chat", &PatchParams::default(), &Patch::Merge(&patch)).await?;
    let status = patched.status.as_ref().ok_or("no status")?;
    assert_eq!(status.conditions.first().map(|c| c.status.as_str()), Some("True"));
    assert_eq!(patched.spec.model, "chat");
    assert_eq!(patched.metadata.generation, Some(1));
    assert!(patched.resource_version() != created.resource_version());

    // Through the main endpoint: status changes are ignored.
    let mut replaced = patched.clone();
    replaced.status = None;
    let replaced = routes.replace("chat", &PostParams::default(), &replaced).await?;
    assert!(replaced.status.is_some(), "the main endpoint dropped the status");
    assert_eq!(replaced.resource_version(), patched.resource_version(), "a no-op write bumped the version");

    // PUT /status with a stale resourceVersion conflicts like any update.
    let mut stale = created.clone();
    stale.status = patched.status.clone();
    let result = routes.replace_status("chat", &PostParams::default(), &stale).await;
    assert_eq!(crate::common::api_error(result).code, 409);
    Ok(())
}

#[tokio::test]
async fn spec_changes_bump_the_generation_and_metadata_changes_do_not() -> Result<(), Error> {
    let env = start()?;
    env.namespace("gen").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "gen");
    routes.create(&PostParams::default(), &route()?).await?;
    let labelled = json!({"metadata": {"labels": {"team": "search"}}});
    let r = routes.patch("chat", &PatchParams::default(), &Patch::Merge(&labelled)).await?;
    assert_eq!(r.metadata.generation, Some(1), "a label is not a spec change");
    let respec = json!({"spec": {"model": "chat-v2"}});
    let r = routes.patch("chat", &PatchParams::default(), &Patch::Merge(&respec)).await?;
    assert_eq!((r.metadata.generation, r.spec.model.as_str()), (Some(2), "chat-v2"));
    let same = routes.patch("chat", &PatchParams::default(), &Patch::Merge(&respec)).await?;
    assert_eq!(same.metadata.generation, Some(2), "the same spec again is no change");
    assert_eq!(same.resource_version(), r.resource_version());
    let s = routes.patch_status("chat", &PatchParams::default(), &Patch::Merge(&accepted("False"))).await?;
    assert_eq!(s.metadata.generation, Some(2));
    Ok(())
}
