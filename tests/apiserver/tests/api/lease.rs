//! What leader election needs from a `coordination.k8s.io/v1` Lease. kube 5 ships no lease
//! helper; the Rust implementations (kubert's LeaseManager, kube-leader-election) and client-go
//! all make the same calls: get, create (AlreadyExists when another replica won), and a
//! compare-and-swap write carrying the resourceVersion they read (replace, a merge or strategic
//! patch with `metadata.resourceVersion`, or a server-side apply with it), which must fail
//! with 409 Conflict when another replica wrote in between.

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{Error, api_error, start};

fn lease(holder: &str) -> Result<Lease, Error> {
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "switchboard-operator"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 0,
                 "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z"},
    }))?)
}

fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref())
}

#[tokio::test]
async fn a_lease_is_taken_by_one_replica_and_stale_writes_conflict() -> Result<(), Error> {
    let env = start()?;
    env.namespace("ops").await?;
    let leases = Api::<Lease>::namespaced(env.client.clone(), "ops");
    let first = leases.create(&PostParams::default(), &lease("replica-a")?).await?;
    let status = api_error(leases.create(&PostParams::default(), &lease("replica-b")?).await);
    assert_eq!(status.reason, "AlreadyExists", "the second replica must see the lease is taken");

    // Replica a renews with the version it read; replica b, still holding `first`, loses.
    let mut renewed = first.clone();
    renewed.spec.get_or_insert_default().renew_time = lease("x")?.spec.and_then(|s| s.renew_time);
    renewed.spec.get_or_insert_default().lease_duration_seconds = Some(20);
    let renewed = leases.replace("switchboard-operator", &PostParams::default(), &renewed).await?;
    let mut takeover = first.clone();
    takeover.spec.get_or_insert_default().holder_identity = Some("replica-b".into());
    let status = api_error(leases.replace("switchboard-operator", &PostParams::default(), &takeover).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

    // The same compare-and-swap through each patch type that carries a resourceVersion.
    let stale = first.resource_version().unwrap_or_default();
    let current = renewed.resource_version().unwrap_or_default();
    let take = |rv: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "switchboard-operator", "resourceVersion": rv},
        "spec": {"holderIdentity": "replica-b"}})
    };
    let apply = PatchParams::apply("replica-b").force();
    let patches = [
        ("merge", Patch::Merge(take(&stale)), PatchParams::default()),
        ("strategic", Patch::Strategic(take(&stale)), PatchParams::default()),
        ("apply", Patch::Apply(take(&stale)), apply.clone()),
    ];
    for (name, patch, params) in patches {
        let result = leases.patch("switchboard-operator", &params, &patch).await;
        assert_eq!(api_error(result).code, 409, "{name} with a stale resourceVersion");
    }
    let taken = leases.patch("switchboard-operator", &apply, &Patch::Apply(take(&current))).await?;
    assert_eq!(holder(&taken), Some("replica-b"));
    assert_eq!(
        taken.spec.as_ref().and_then(|s| s.lease_duration_seconds),
        Some(20),
        "apply keeps other fields"
    );

    // Vacating, as kubert does: a strategic patch with nulls clears the holder.
    let vacate = json!({"metadata": {"resourceVersion": taken.resource_version()},
        "spec": {"holderIdentity": null, "renewTime": null, "acquireTime": null}});
    let vacated =
        leases.patch("switchboard-operator", &PatchParams::default(), &Patch::Strategic(vacate)).await?;
    assert_eq!(holder(&vacated), None);
    assert_eq!(vacated.spec.as_ref().and_then(|s| s.lease_duration_seconds), Some(20));

    // A JSON patch can guard with `test` instead.
    let guarded = json!([{"op": "test", "path": "/spec/leaseDurationSeconds", "value": 15},
                         {"op": "replace", "path": "/spec/leaseDurationSeconds", "value": 30}]);
    let patch = Patch::Json::<()>(serde_json::from_value(guarded)?);
    let status = api_error(leases.patch("switchboard-operator", &PatchParams::default(), &patch).await);
    assert_eq!(status.code, 422, "a failed test operation refuses the whole patch");
    Ok(())
}

#[tokio::test]
async fn server_side_apply_creates_and_requires_a_field_manager() -> Result<(), Error> {
    let env = start()?;
    env.namespace("ops").await?;
    let leases = Api::<Lease>::namespaced(env.client.clone(), "ops");
    let body = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "applied"}, "spec": {"holderIdentity": "a"}});
    let created = leases.patch("applied", &PatchParams::apply("operator"), &Patch::Apply(&body)).await?;
    assert_eq!(holder(&created), Some("a"));
    let status = api_error(leases.patch("applied", &PatchParams::default(), &Patch::Apply(&body)).await);
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"), "{status:?}");
    assert!(status.message.contains("fieldManager"), "{}", status.message);
    Ok(())
}
