//! Custom resources are checked as the apiserver checks them: schema and CEL on every write,
//! refused with 422 `Invalid` naming each field; unknown fields pruned with a warning, or
//! refused under `fieldValidation=Strict`; schema defaults applied.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams, ValidationDirective};
use serde_json::{Value, json};
use switchboard_crds::{ModelRoute, VirtualKey};

use crate::common::{Error, api_error, start};

fn causes(status: &kube::core::Status) -> Vec<(String, String)> {
    status.details.iter().flat_map(|d| &d.causes).map(|c| (c.field.clone(), c.message.clone())).collect()
}

#[tokio::test]
async fn invalid_routes_and_keys_are_refused_with_field_paths() -> Result<(), Error> {
    let env = start()?;
    env.namespace("v").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "v");
    let route: ModelRoute = serde_json::from_value(json!({"metadata": {"name": "chat"},
        "spec": {"model": "chat", "backends": [{"providerRef": {"name": "a"}, "weight": 0}]}}))?;
    let status = api_error(routes.create(&PostParams::default(), &route).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "ModelRoute.switchboard.dev \"chat\" is invalid: spec.backends[0].weight: Invalid value: 0: \
         spec.backends[0].weight in body should be greater than or equal to 1"
    );
    let cause = "Invalid value: 0: spec.backends[0].weight in body should be greater than or equal to 1";
    assert_eq!(causes(&status), [("spec.backends[0].weight".to_owned(), cause.to_owned())]);
    let details = status.details.as_ref().ok_or("no details")?;
    assert_eq!(
        (details.name.as_str(), details.group.as_str(), details.kind.as_str()),
        ("chat", "switchboard.dev", "ModelRoute")
    );

    // A CEL rule: the previous key must differ from the current one.
    let keys = Api::<VirtualKey>::namespaced(env.client.clone(), "v");
    let key: VirtualKey = serde_json::from_value(json!({"metadata": {"name": "k"}, "spec": {
        "secretRef": {"name": "s"},
        "rotation": {"previousSecretRef": {"name": "s"}, "validUntil": "2027-01-01T00:00:00Z"}}}))?;
    let status = api_error(keys.create(&PostParams::default(), &key).await);
    let fields: Vec<String> = causes(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["spec.rotation.previousSecretRef"], "{status:?}");
    assert!(status.message.contains("must name a different Secret key than secretRef"), "{}", status.message);

    // Several problems: one cause each, the message bracketed like the apiserver's.
    let missing: ModelRoute = serde_json::from_value(json!({"metadata": {"name": "m"},
        "spec": {"model": "has space", "backends": []}}))?;
    let status = api_error(routes.create(&PostParams::default(), &missing).await);
    let fields: Vec<String> = causes(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["spec.backends", "spec.model"]);
    assert!(status.message.contains("is invalid: [spec.backends: "), "{}", status.message);
    Ok(())
}

#[tokio::test]
async fn updates_patches_and_status_writes_are_validated_too() -> Result<(), Error> {
    let env = start()?;
    env.namespace("u").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "u");
    // Defaults from the schema are stored. Written untyped: the Rust types would send them.
    let untyped = Api::<DynamicObject>::namespaced_with(
        env.client.clone(),
        "u",
        &ApiResource::erase::<ModelRoute>(&()),
    );
    let minimal: DynamicObject = serde_json::from_value(json!({"apiVersion": "switchboard.dev/v1alpha1",
        "kind": "ModelRoute", "metadata": {"name": "r"}, "spec": {"model": "r", "backends": [{"providerRef": {"name": "a"}}]}}))?;
    let stored = untyped.create(&PostParams::default(), &minimal).await?;
    assert_eq!(
        stored.data.pointer("/spec/backends/0"),
        Some(&json!({"providerRef": {"name": "a"}, "weight": 1, "priority": 0}))
    );
    let created = routes.get("r").await?;

    let bad = json!({"spec": {"backends": [{"providerRef": {"name": "a"}, "priority": 101}]}});
    let status = api_error(routes.patch("r", &PatchParams::default(), &Patch::Merge(&bad)).await);
    assert_eq!(causes(&status).first().map(|c| c.0.as_str()), Some("spec.backends[0].priority"));
    let mut replaced = created.clone();
    replaced.spec.model = "two words".into();
    let status = api_error(routes.replace("r", &PostParams::default(), &replaced).await);
    assert_eq!(causes(&status).first().map(|c| c.0.as_str()), Some("spec.model"));
    let bad_status = json!({"status": {"conditions": [{"type": "Accepted"}]}});
    let status =
        api_error(routes.patch_status("r", &PatchParams::default(), &Patch::Merge(&bad_status)).await);
    assert_eq!(status.code, 422, "a condition without status, reason, message and time");
    assert_eq!(
        routes.get("r").await?.metadata.resource_version,
        created.metadata.resource_version,
        "nothing changed"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_fields_are_pruned_or_refused_when_strict() -> Result<(), Error> {
    let env = start()?;
    env.namespace("p").await?;
    let routes = Api::<ModelRoute>::namespaced(env.client.clone(), "p");
    let with_extra = |name: &str| -> Value {
        json!({"apiVersion": "switchboard.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
               "spec": {"model": name, "modle": "typo", "backends": [{"providerRef": {"name": "a"}}]}})
    };
    // kube sends no fieldValidation: the apiserver's default prunes (and warns).
    let pruned = routes
        .patch(
            "loose",
            &PatchParams::apply("test").validation(ValidationDirective::Warn),
            &Patch::Apply(with_extra("loose")),
        )
        .await?;
    let stored = serde_json::to_value(routes.get("loose").await?)?;
    assert_eq!(stored.pointer("/spec/modle"), None, "unknown field kept");
    assert_eq!(pruned.spec.model, "loose");

    let strict = PatchParams::apply("test").validation(ValidationDirective::Strict);
    let status = api_error(routes.patch("tight", &strict, &Patch::Apply(with_extra("tight"))).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert!(status.message.contains("unknown field \"spec.modle\""), "{}", status.message);
    Ok(())
}
