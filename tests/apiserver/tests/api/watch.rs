//! Watches as kube's raw `Api::watch` and kube-runtime's `watcher`/`reflector` consume them:
//! order, resourceVersions, history replay, 410 Expired and relisting, bookmarks, streaming
//! lists, metadata-only watches and selectors.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::watcher::{self, Event, watcher};
use kube::runtime::{WatchStreamExt, reflector};
use serde_json::json;
use switchboard_crds::ModelRoute;
use switchboard_test_apiserver::Options;

use crate::common::{Error, next, start, start_with};

fn route(name: &str) -> Result<ModelRoute, Error> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"model": name, "backends": [{"providerRef": {"name": "p"}}]},
    }))?)
}

async fn set_model(api: &Api<ModelRoute>, name: &str, model: &str) -> Result<ModelRoute, Error> {
    Ok(api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"model": model}}))).await?)
}

/// A watcher event in a comparable form: `Apply a/m` is route `a` with model `m`.
fn describe(event: &Event<ModelRoute>) -> String {
    match event {
        Event::Init => "Init".into(),
        Event::InitApply(r) => format!("InitApply {}/{}", r.name_any(), r.spec.model),
        Event::InitDone => "InitDone".into(),
        Event::Apply(r) => format!("Apply {}/{}", r.name_any(), r.spec.model),
        Event::Delete(r) => format!("Delete {}", r.name_any()),
    }
}

#[tokio::test]
async fn a_watch_replays_changes_after_its_resource_version_in_order() -> Result<(), Error> {
    let env = start()?;
    env.namespace("w").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "w");
    let start_rv = routes.list(&ListParams::default()).await?.metadata.resource_version.unwrap_or_default();
    routes.create(&PostParams::default(), &route("a")?).await?;
    set_model(&routes, "a", "b").await?;
    routes.delete("a", &DeleteParams::default()).await?;
    // Opened after the changes: they come from the history.
    let mut stream = routes.watch(&WatchParams::default(), &start_rv).await?.boxed();
    let mut last_rv = start_rv.parse::<u64>()?;
    for want in ["ADDED a", "MODIFIED b", "DELETED b"] {
        let (kind, route) = match next(&mut stream).await? {
            WatchEvent::Added(r) => ("ADDED", r),
            WatchEvent::Modified(r) => ("MODIFIED", r),
            WatchEvent::Deleted(r) => ("DELETED", r),
            other => return Err(format!("unexpected {other:?}").into()),
        };
        assert_eq!(format!("{kind} {}", route.spec.model), want);
        let rv: u64 = route.resource_version().unwrap_or_default().parse()?;
        assert!(rv > last_rv, "{want}: resourceVersion {rv} after {last_rv}");
        last_rv = rv;
    }
    Ok(())
}

#[tokio::test]
async fn watcher_and_reflector_see_create_modify_delete_in_order() -> Result<(), Error> {
    let env = start()?;
    env.namespace("r").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "r");
    routes.create(&PostParams::default(), &route("old")?).await?;
    let (reader, writer) = reflector::store();
    let mut events = reflector(writer, watcher(routes.clone(), watcher::Config::default())).boxed();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next(&mut events).await?));
    }
    assert_eq!(seen, ["Init", "InitApply old/old", "InitDone"]);
    assert_eq!(reader.state().len(), 1);

    routes.create(&PostParams::default(), &route("new")?).await?;
    set_model(&routes, "new", "changed").await?;
    routes.delete("old", &DeleteParams::default()).await?;
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(describe(&next(&mut events).await?));
    }
    assert_eq!(seen, ["Apply new/new", "Apply new/changed", "Delete old"]);
    let state: Vec<String> =
        reader.state().iter().map(|r| format!("{}/{}", r.name_any(), r.spec.model)).collect();
    assert_eq!(state, ["new/changed"]);
    Ok(())
}

#[tokio::test]
async fn a_watch_from_before_the_history_gets_410_expired() -> Result<(), Error> {
    let env = start_with(Options {
        history: 2,
        bookmark_interval: Duration::from_secs(3600),
        ..Options::default()
    })?;
    env.namespace("h").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "h");
    let old_rv =
        routes.create(&PostParams::default(), &route("a")?).await?.resource_version().unwrap_or_default();
    for model in ["b", "c", "d"] {
        set_model(&routes, "a", model).await?;
    }
    let mut stream = routes.watch(&WatchParams::default(), &old_rv).await?.boxed();
    match next(&mut stream).await? {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired"), "{e:?}"),
        other => return Err(format!("expected a 410 error event, got {other:?}").into()),
    }
    // Within the window it still replays.
    let recent = routes.get("a").await?.resource_version().unwrap_or_default();
    set_model(&routes, "a", "e").await?;
    let mut stream = routes.watch(&WatchParams::default(), &recent).await?.boxed();
    assert!(matches!(next(&mut stream).await?, WatchEvent::Modified(r) if r.spec.model == "e"));
    Ok(())
}

#[tokio::test]
async fn the_watcher_lists_again_after_410_and_not_after_a_normal_end() -> Result<(), Error> {
    let env = start()?;
    env.namespace("x").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "x");
    routes.create(&PostParams::default(), &route("a")?).await?;
    let mut events = watcher(routes.clone(), watcher::Config::default()).boxed();
    for _ in 0..3 {
        next(&mut events).await?;
    }
    // Once it sees a change, its watch is open.
    routes.create(&PostParams::default(), &route("b")?).await?;
    assert_eq!(describe(&next(&mut events).await?), "Apply b/b");

    env.server.expire_watches().await;
    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => return Err(format!("expected the 410, got {other:?}").into()),
    }
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(&next(&mut events).await?));
    }
    assert_eq!(seen, ["Init", "InitApply a/a", "InitApply b/b", "InitDone"]);

    // A watch that ends normally is resumed from its resourceVersion: no relist.
    routes.create(&PostParams::default(), &route("c")?).await?;
    assert_eq!(describe(&next(&mut events).await?), "Apply c/c");
    env.server.close_watches().await;
    routes.create(&PostParams::default(), &route("d")?).await?;
    assert_eq!(describe(&next(&mut events).await?), "Apply d/d");
    Ok(())
}

#[tokio::test]
async fn bookmarks_carry_the_current_resource_version() -> Result<(), Error> {
    let env = start()?;
    env.namespace("b").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "b");
    let leases = Api::<Lease>::namespaced(env.client.clone(), "b");
    let from = routes.list(&ListParams::default()).await?.metadata.resource_version.unwrap_or_default();
    let mut stream = routes.watch(&WatchParams::default(), &from).await?.boxed();
    // Another kind moves the resourceVersion; this watch sees no event for it.
    let lease = leases
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "l"}}))?)
        .await?;
    assert_eq!(env.server.open_watches().await, 1);
    env.server.send_bookmarks().await;
    match next(&mut stream).await? {
        WatchEvent::Bookmark(b) => assert_eq!(Some(b.metadata.resource_version), lease.resource_version()),
        other => return Err(format!("expected a bookmark, got {other:?}").into()),
    }
    // Without allowWatchBookmarks there are none.
    let mut plain = routes.watch(&WatchParams::default().disable_bookmarks(), &from).await?.boxed();
    env.server.send_bookmarks().await;
    routes.create(&PostParams::default(), &route("after")?).await?;
    assert!(matches!(next(&mut plain).await?, WatchEvent::Added(_)));
    Ok(())
}

#[tokio::test]
async fn streaming_lists_metadata_watches_and_selectors() -> Result<(), Error> {
    let env = start()?;
    env.namespace("s").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "s");
    routes.create(&PostParams::default(), &route("one")?).await?;
    routes.create(&PostParams::default(), &route("two")?).await?;

    // sendInitialEvents=true: the initial state, then a bookmark marks its end.
    let mut streaming = watcher(routes.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(describe(&next(&mut streaming).await?));
    }
    assert_eq!(seen, ["Init", "InitApply one/one", "InitApply two/two", "InitDone"]);

    let selected = watcher::Config::default().labels("app=two");
    let partial = Api::<PartialObjectMeta<ModelRoute>>::namespaced(env.client.clone(), "s");
    let mut metadata = watcher(partial, selected).applied_objects().boxed();
    assert_eq!(next(&mut metadata).await?.name_any(), "two");
    set_model(&routes, "one", "ignored").await?;
    set_model(&routes, "two", "seen").await?;
    let changed = next(&mut metadata).await?;
    assert_eq!((changed.name_any(), changed.metadata.generation), ("two".to_owned(), Some(2)));
    assert_eq!(
        changed.types.map(|t| t.kind).as_deref(),
        Some("PartialObjectMetadata"),
        "a whole object was sent"
    );
    assert_eq!(describe(&next(&mut streaming).await?), "Apply one/ignored");
    Ok(())
}
