//! The CRDs as objects, on a server started without them (`Options::install_crds` off): a
//! custom kind is served once its CRD is created (Established at once), only the CRDs built into
//! the server are accepted, and deleting a CRD deletes every object of its kind.

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use switchboard_crds::ModelRoute;
use switchboard_test_apiserver::Options;

use crate::common::{Error, api_error, next, start_with};

fn route(name: &str) -> Result<ModelRoute, Error> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"model": name, "backends": [{"providerRef": {"name": "p"}}]},
    }))?)
}

fn established(crd: &CustomResourceDefinition) -> bool {
    let conditions = crd.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Established" && c.status == "True")
}

async fn served_groups(client: &kube::Client) -> Result<Vec<String>, Error> {
    let groups = client.list_api_groups().await?;
    Ok(groups.groups.into_iter().map(|g| g.name).collect())
}

#[tokio::test]
async fn custom_kinds_are_served_while_their_crd_is_stored() -> Result<(), Error> {
    let env = start_with(Options { install_crds: false, ..Options::default() })?;
    env.namespace("c").await?;
    let crds = Api::<CustomResourceDefinition>::all(env.client.clone());
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "c");
    assert!(crds.list(&Default::default()).await?.items.is_empty());
    assert!(!served_groups(&env.client).await?.contains(&"switchboard.dev".to_owned()));
    let status = api_error(routes.create(&PostParams::default(), &route("early")?).await);
    assert_eq!(status.code, 404, "{status:?}");

    // Server-side apply, as `kubectl apply --server-side -f crds/yaml/` sends it.
    let apply = PatchParams::apply("test").force();
    for crd in switchboard_crds::all_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let stored = crds.patch(&name, &apply, &Patch::Apply(&crd)).await?;
        assert!(established(&stored), "{stored:?}");
        // Applying it again changes nothing.
        let again = crds.patch(&name, &apply, &Patch::Apply(&crd)).await?;
        assert_eq!(again.metadata.resource_version, stored.metadata.resource_version);
    }
    assert!(served_groups(&env.client).await?.contains(&"switchboard.dev".to_owned()));
    let discovery = kube::Discovery::new(env.client.clone()).run().await?;
    let group = discovery.get("switchboard.dev").ok_or("no switchboard.dev group")?;
    assert_eq!(group.recommended_resources().len(), 4);
    routes.create(&PostParams::default(), &route("a")?).await?;
    routes.create(&PostParams::default(), &route("b")?).await?;

    // Only the CRDs built into the server, unchanged.
    let mut other = switchboard_crds::all_crds().remove(0);
    other.metadata.name = Some("widgets.example.com".into());
    let status = api_error(crds.create(&PostParams::default(), &other).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
    assert!(status.message.contains("serves only the CRDs built into it"), "{}", status.message);
    let mut changed = crds.get("modelroutes.switchboard.dev").await?;
    changed.spec.names.short_names = Some(vec!["route".into()]);
    let status =
        api_error(crds.replace("modelroutes.switchboard.dev", &PostParams::default(), &changed).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");

    // Deleting the CRD deletes its objects (watchers see them go), and the kind is gone.
    let rv = routes.list(&Default::default()).await?.metadata.resource_version.unwrap_or_default();
    let mut watch = routes.watch(&WatchParams::default(), &rv).await?.boxed();
    crds.delete("modelroutes.switchboard.dev", &DeleteParams::default()).await?;
    for name in ["a", "b"] {
        match next(&mut watch).await? {
            WatchEvent::Deleted(r) if r.metadata.name.as_deref() == Some(name) => {}
            other => return Err(format!("expected {name} DELETED, got {other:?}").into()),
        }
    }
    assert_eq!(api_error(routes.get("a").await).code, 404);
    assert_eq!(api_error(crds.get("modelroutes.switchboard.dev").await).code, 404);
    let discovery = kube::Discovery::new(env.client.clone()).run().await?;
    let group = discovery.get("switchboard.dev").ok_or("no switchboard.dev group")?;
    assert_eq!(group.recommended_resources().len(), 3);
    Ok(())
}
