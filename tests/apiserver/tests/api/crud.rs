//! Create, get, list, update and delete of every kind through kube's typed client, with the
//! bookkeeping a real apiserver does and the errors it answers.

use std::fmt::Debug;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Namespace, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use switchboard_crds::{LlmProvider, ModelRoute, RateLimitPolicy, VirtualKey};

use crate::common::{Error, api_error, start};

fn object<K: DeserializeOwned>(value: Value) -> Result<K, Error> {
    Ok(serde_json::from_value(value)?)
}

/// The whole round trip for one kind: `change` makes a visible edit.
async fn round_trip<K>(api: Api<K>, created: K, change: fn(&mut K)) -> Result<(), Error>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    let name = created.name_any();
    let plural = K::plural(&Default::default()).into_owned();
    let stored = api.create(&PostParams::default(), &created).await?;
    let meta = stored.meta();
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36), "{plural}: uid {:?}", meta.uid);
    assert!(meta.creation_timestamp.is_some(), "{plural}: no creationTimestamp");
    let rv: u64 = stored.resource_version().unwrap_or_default().parse()?;

    let fetched = api.get(&name).await?;
    assert_eq!(serde_json::to_value(&fetched)?, serde_json::to_value(&stored)?, "{plural}: get");
    let listed = api.list(&ListParams::default()).await?;
    assert!(listed.items.iter().any(|o| o.name_any() == name), "{plural}: not listed");
    let list_rv: u64 = listed.metadata.resource_version.unwrap_or_default().parse()?;
    assert!(list_rv >= rv, "{plural}: list resourceVersion {list_rv} before the object's {rv}");

    let again = api.create(&PostParams::default(), &created).await;
    let status = api_error(again);
    assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"), "{plural}: {status:?}");

    let mut edited = fetched.clone();
    change(&mut edited);
    let updated = api.replace(&name, &PostParams::default(), &edited).await?;
    let new_rv: u64 = updated.resource_version().unwrap_or_default().parse()?;
    assert!(new_rv > rv, "{plural}: resourceVersion {new_rv} after {rv}");
    assert_eq!(updated.meta().uid, stored.meta().uid, "{plural}: uid changed");

    // `fetched` still carries the old resourceVersion: optimistic concurrency refuses it.
    let mut stale = fetched;
    change(&mut stale);
    let status = api_error(api.replace(&name, &PostParams::default(), &stale).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"), "{plural}: {status:?}");
    assert!(status.message.contains("the object has been modified"), "{plural}: {}", status.message);

    api.delete(&name, &DeleteParams::default()).await?;
    let status = api_error(api.get(&name).await);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"), "{plural}: {status:?}");
    let status = api_error(api.delete(&name, &DeleteParams::default()).await);
    assert_eq!(status.code, 404, "{plural}: second delete");
    Ok(())
}

fn label<K: Resource>(object: &mut K) {
    object.meta_mut().labels.get_or_insert_default().insert("edited".into(), "yes".into());
}

async fn namespaced<K>(env: &crate::common::Env, value: Value, change: fn(&mut K)) -> Result<(), Error>
where
    K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    K::DynamicType: Default,
{
    round_trip(Api::<K>::namespaced(env.client.clone(), "crud"), object(value)?, change).await
}

#[tokio::test]
async fn every_kind_round_trips_with_bookkeeping_and_conflicts() -> Result<(), Error> {
    let env = start()?;
    round_trip(
        Api::<Namespace>::all(env.client.clone()),
        object(json!({"metadata": {"name": "other"}}))?,
        label,
    )
    .await?;
    env.namespace("crud").await?;
    let meta = json!({"name": "x", "namespace": "crud"});
    namespaced::<Secret>(&env, json!({"metadata": meta, "stringData": {"key": "v"}}), label).await?;
    namespaced::<Lease>(&env, json!({"metadata": meta, "spec": {"holderIdentity": "a"}}), label).await?;
    let involved = json!({"kind": "Secret", "name": "s", "namespace": "crud"});
    namespaced::<CoreEvent>(
        &env,
        json!({"metadata": meta, "involvedObject": involved, "reason": "R"}),
        label,
    )
    .await?;
    let event = json!({"metadata": meta, "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "c",
                       "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal"});
    namespaced::<Event>(&env, event, label).await?;
    let provider = json!({"metadata": meta, "spec": {"type": "mock"}});
    namespaced::<LlmProvider>(&env, provider, |p| p.spec.stream_usage = !p.spec.stream_usage).await?;
    let route =
        json!({"metadata": meta, "spec": {"model": "m", "backends": [{"providerRef": {"name": "p"}}]}});
    namespaced::<ModelRoute>(&env, route, |r| r.spec.model = "n".into()).await?;
    let key = json!({"metadata": meta, "spec": {"secretRef": {"name": "k"}}});
    namespaced::<VirtualKey>(&env, key, |k| k.spec.disabled = !k.spec.disabled).await?;
    let policy = json!({"metadata": meta, "spec": {"scope": "Key", "limits": {"concurrentRequests": 1}}});
    namespaced::<RateLimitPolicy>(&env, policy, label).await
}

#[tokio::test]
async fn resource_versions_increase_across_kinds() -> Result<(), Error> {
    let env = start()?;
    env.namespace("rv").await?;
    let secrets = Api::<Secret>::namespaced(env.client.clone(), "rv");
    let leases = Api::<Lease>::namespaced(env.client.clone(), "rv");
    let mut last = 0u64;
    for i in 0..3 {
        let s = secrets
            .create(&PostParams::default(), &object(json!({"metadata": {"name": format!("s{i}")}}))?)
            .await?;
        let l = leases
            .create(&PostParams::default(), &object(json!({"metadata": {"name": format!("l{i}")}}))?)
            .await?;
        for rv in [s.resource_version(), l.resource_version()] {
            let rv: u64 = rv.unwrap_or_default().parse()?;
            assert!(rv > last, "{rv} after {last}");
            last = rv;
        }
    }
    Ok(())
}

#[tokio::test]
async fn generate_name_selectors_and_secret_string_data() -> Result<(), Error> {
    let env = start()?;
    env.namespace("sel").await?;
    let secrets = Api::<Secret>::namespaced(env.client.clone(), "sel");
    let mut names = Vec::new();
    for (team, tier) in [("search", "gold"), ("search", "free"), ("support", "gold")] {
        let secret: Secret = object(json!({
            "metadata": {"generateName": "key-", "labels": {"team": team, "tier": tier}},
            "stringData": {"key": "sk-1"},
        }))?;
        let created = secrets.create(&PostParams::default(), &secret).await?;
        let name = created.name_any();
        assert!(name.starts_with("key-") && name.len() == 9, "generated name {name}");
        // stringData is write-only: it is stored base64-encoded in data.
        assert_eq!(
            created.data.as_ref().and_then(|d| d.get("key")).map(|k| k.0.as_slice()),
            Some(&b"sk-1"[..])
        );
        assert_eq!(created.string_data, None);
        assert_eq!(created.type_.as_deref(), Some("Opaque"));
        names.push(name);
    }
    let listed = |selector: &'static str| {
        let secrets = secrets.clone();
        async move {
            let list = secrets.list(&ListParams::default().labels(selector)).await?;
            Ok::<_, kube::Error>(list.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>())
        }
    };
    assert_eq!(listed("team=search").await?.len(), 2);
    assert_eq!(listed("team=search,tier=gold").await?, [names[0].clone()]);
    assert_eq!(listed("tier!=gold").await?, [names[1].clone()]);
    assert_eq!(listed("team in (support,other)").await?, [names[2].clone()]);
    let by_name = secrets.list(&ListParams::default().fields(&format!("metadata.name={}", names[1]))).await?;
    assert_eq!(by_name.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), [names[1].clone()]);
    let all = Api::<Secret>::all(env.client.clone()).list(&ListParams::default()).await?;
    assert_eq!(all.items.len(), 3, "a list across namespaces");
    Ok(())
}

#[tokio::test]
async fn errors_are_status_objects_with_the_apiservers_codes() -> Result<(), Error> {
    let env = start()?;
    let secret: Secret = object(json!({"metadata": {"name": "s"}}))?;
    let nowhere = Api::<Secret>::namespaced(env.client.clone(), "missing");
    let status = api_error(nowhere.create(&PostParams::default(), &secret).await);
    assert_eq!((status.code, status.message.as_str()), (404, "namespaces \"missing\" not found"));

    env.namespace("errors").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "errors");
    let status = api_error(routes.get("nope").await);
    assert_eq!(
        (status.code, status.reason.as_str(), status.message.as_str()),
        (404, "NotFound", "modelroutes.switchboard.dev \"nope\" not found")
    );
    let route: ModelRoute = object(json!({"metadata": {"name": "r"},
        "spec": {"model": "m", "backends": [{"providerRef": {"name": "p"}}]}}))?;
    routes.create(&PostParams::default(), &route).await?;
    // Custom resources have no strategic merge patch: 415, as on a real apiserver.
    let strategic = Patch::Strategic(json!({"spec": {"model": "x"}}));
    let status = api_error(routes.patch("r", &PatchParams::default(), &strategic).await);
    assert_eq!((status.code, status.reason.as_str()), (415, "UnsupportedMediaType"));
    // The CRDs are installed when the server starts (crds.rs: installing and deleting them).
    let crds = Api::<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >::all(env.client.clone());
    let crd = crds.get("modelroutes.switchboard.dev").await?;
    assert_eq!(crd.spec.names.short_names, Some(vec!["mr".to_owned()]));
    // A dry run changes nothing.
    let dry = PostParams { dry_run: true, ..Default::default() };
    let mut other = route.clone();
    other.metadata.name = Some("dry".into());
    routes.create(&dry, &other).await?;
    assert_eq!(api_error(routes.get("dry").await).code, 404);
    Ok(())
}

#[tokio::test]
async fn discovery_finds_every_kind_with_its_scope_and_subresources() -> Result<(), Error> {
    let env = start()?;
    let discovery = kube::Discovery::new(env.client.clone()).run().await?;
    let group = discovery.get("switchboard.dev").ok_or("no switchboard.dev group")?;
    let mut kinds: Vec<String> = group.recommended_resources().iter().map(|(r, _)| r.kind.clone()).collect();
    kinds.sort();
    assert_eq!(kinds, ["LLMProvider", "ModelRoute", "RateLimitPolicy", "VirtualKey"]);
    for (resource, capabilities) in group.recommended_resources() {
        assert_eq!(capabilities.scope, kube::discovery::Scope::Namespaced, "{}", resource.kind);
        assert!(
            capabilities.subresources.iter().any(|(s, _)| s.plural == "status"),
            "{}: no status",
            resource.kind
        );
    }
    for (group, kind) in
        [("", "Secret"), ("", "Namespace"), ("coordination.k8s.io", "Lease"), ("events.k8s.io", "Event")]
    {
        let gvk = kube::core::GroupVersionKind::gvk(group, "v1", kind);
        assert!(discovery.resolve_gvk(&gvk).is_some(), "{gvk:?} not discovered");
    }
    Ok(())
}
