//! `kubectl apply` → the API server → the real `switchboard-operator` binary → real gateway
//! replicas: the examples serve through every replica with the key the operator generated,
//! `kubectl get` shows Programmed once every replica acked, an invalid object says why while the
//! rest keeps serving, and a deleted route is gone from every replica; leader failover, a fleet
//! that outlives both operators, and generations that never go backwards.
//!
//! The API server is the in-repo one, or the cluster `KUBECONFIG` names (`Cluster`): then every
//! test works in namespaces of its own and scopes its operators to them.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use std::time::Duration;
use switchboard_e2e::{Cluster, Gateway, Operator, TempDir, eventually};

/// A condition's field of an object in `namespace`, through kubectl.
fn condition(cluster: &Cluster, namespace: &str, object: &str, type_: &str, field: &str) -> String {
    let path = format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].{field}}}");
    let (resource, name) = object.split_once('/').unwrap();
    cluster.kubectl(&["get", resource, name, "-n", namespace, "-o", &path])
}

async fn chat(gateway: &Gateway, key: &str, model: &str) -> u16 {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    gateway.call("POST", "/v1/chat/completions", Some(key), &body).await.0
}

fn replicas(stream: &str, count: usize) -> Vec<Gateway> {
    (0..count)
        .map(|i| {
            Gateway::start(&[
                "--operator",
                stream,
                "--operator-insecure",
                "--replica-name",
                &format!("gw-{i}"),
            ])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_reaches_every_replica_and_kubectl_get_tells_the_truth() {
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("switchboard-demo");
    let patience = cluster.patience(Duration::from_secs(20));
    cluster.apply_examples(&ns);
    let dir = TempDir::new();
    let operator = Operator::start(&cluster, &ns, &dir.0, "op-0", "127.0.0.1:0");
    let stream = operator.leading(patience).unwrap_or_else(|| panic!("{}", operator.log()));
    let replicas = replicas(&stream, 2);

    // The operator generates the key of a VirtualKey whose Secret does not exist.
    let key =
        generated_key(&cluster, &ns).await.unwrap_or_else(|| panic!("no key generated:\n{}", operator.log()));
    assert!(key.starts_with("sk-sb-"));

    for replica in &replicas {
        let served = eventually(patience, async || chat(replica, &key, "mock").await == 200).await;
        assert!(served, "replica never served the route:\n{}\n{}", replica.log(), operator.log());
    }
    // Both replicas serve, but the second one's ack may still be on its way: a status written
    // before it connected says True with 1/1. Wait for the one that counts both.
    let programmed = eventually(patience, async || {
        condition(&cluster, &ns, "modelroute/mock", "Programmed", "status") == "True"
            && condition(&cluster, &ns, "modelroute/mock", "Programmed", "message")
                .starts_with("2/2 replicas at generation")
    })
    .await;
    assert!(programmed, "{}", cluster.kubectl(&["get", "mr", "mock", "-n", &ns, "-o", "yaml"]));
    assert_eq!(operator.admin("/readyz").await, (200, "leading\n".to_owned()));
    let metrics = operator.admin("/metrics").await.1;
    for line in ["switchboard_operator_leading 1", "switchboard_operator_replicas_connected 2"] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains("switchboard_operator_acks_total 0"), "{metrics}");
    let table = cluster.kubectl(&["get", "modelroutes", "-n", &ns]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["MODEL", "ACCEPTED", "PROGRAMMED", "AGE"] {
        assert!(header.contains(column), "{table}");
    }

    // An invalid object says why; everything else keeps serving.
    cluster.apply(&format!(
        "apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{ name: imds, namespace: {ns} }}\nspec: {{ type: openai, baseURL: \"http://169.254.169.254/latest\" }}\n"
    ));
    let refused = eventually(patience, async || {
        condition(&cluster, &ns, "llmprovider/imds", "Accepted", "status") == "False"
    })
    .await;
    assert!(refused, "{}", operator.log());
    let why = condition(&cluster, &ns, "llmprovider/imds", "Accepted", "message");
    assert!(why.starts_with("spec.baseURL: host \"169.254.169.254\" is refused"), "{why}");
    for replica in &replicas {
        assert_eq!(chat(replica, &key, "mock").await, 200);
    }
    // ... and a Warning Event on the object, for `kubectl describe` (posted after the status).
    let event_posted = eventually(patience, async || {
        let events = cluster.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            &ns,
            "-o",
            "jsonpath={range .items[*]}{.regarding.name} {.type} {.reason} {.note}{\"\\n\"}{end}",
        ]);
        events.lines().any(|l| l.starts_with("imds Warning Invalid spec.baseURL: host"))
    })
    .await;
    assert!(event_posted, "no event for the refused object:\n{}", operator.log());

    // A new VirtualKey authenticates on every replica.
    apply_virtual_key(&cluster, &ns, "sk-late-arrival-0123456789");
    for replica in &replicas {
        let accepted =
            eventually(patience, async || chat(replica, "sk-late-arrival-0123456789", "mock").await == 200)
                .await;
        assert!(accepted, "{}", operator.log());
    }

    // A deleted route is gone from every replica within 2 s (on a real cluster: its patience).
    cluster.kubectl(&["delete", "modelroute", "mock", "-n", &ns]);
    for replica in &replicas {
        let gone = eventually(cluster.patience(Duration::from_secs(2)), async || {
            chat(replica, &key, "mock").await == 404
        })
        .await;
        assert!(gone, "{}", operator.log());
    }

    // A replica that stops still counts, named, for the grace period (2 s here), then leaves
    // the count; its series leave /metrics with it.
    let metrics = operator.admin("/metrics").await.1;
    for replica in ["gw-0", "gw-1"] {
        let series = format!("switchboard_operator_push_latency_seconds_count{{replica=\"{replica}\"}} ");
        let acked = metrics.lines().find_map(|l| l.strip_prefix(&series)).unwrap_or("0");
        assert_ne!(acked, "0", "push latency of {replica} in\n{metrics}");
        assert!(
            metrics
                .contains(&format!("switchboard_operator_stream_sent_bytes_total{{replica=\"{replica}\"}} "))
        );
    }
    let mut replicas = replicas;
    drop(replicas.pop());
    let message = || condition(&cluster, &ns, "llmprovider/mock", "Programmed", "message");
    let counted = eventually(patience, async || message().contains("(gw-1 disconnected")).await;
    assert!(counted, "{}", message());
    assert!(message().starts_with("2/2 replicas at generation"), "{}", message());
    let left = eventually(patience, async || message().starts_with("1/1 replicas at generation")).await;
    assert!(left, "{}", message());
    let metrics = operator.admin("/metrics").await.1;
    assert!(!metrics.contains("replica=\"gw-1\""), "{metrics}");
    assert!(metrics.lines().any(|l| l == "switchboard_operator_replicas_connected 1"), "{metrics}");
}

/// Applies a Secret holding `key` and a VirtualKey `late` on it, allowed the `mock` model.
fn apply_virtual_key(cluster: &Cluster, ns: &str, key: &str) {
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: late-key, namespace: {ns} }}\nstringData: {{ key: {key} }}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: late, namespace: {ns} }}\nspec: {{ secretRef: {{ name: late-key }}, models: [mock] }}\n"
    ));
}

/// The key the operator generated for the example VirtualKey `ci-smoke`.
async fn generated_key(cluster: &Cluster, ns: &str) -> Option<String> {
    let mut key = None;
    eventually(cluster.patience(Duration::from_secs(20)), async || {
        let output = cluster.try_kubectl(&[
            "get",
            "secret",
            "ci-smoke-key",
            "-n",
            ns,
            "-o",
            "go-template={{.data.key | base64decode}}",
        ]);
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && !text.is_empty() {
            key = Some(text);
        }
        key.is_some()
    })
    .await;
    key
}

/// A free address for two operator candidates to listen on in turn. While neither listens (the
/// leader died, the standby waits for its Lease), nothing else may take the port: not another
/// test's port-0 bind, not an outgoing connection (whose local port would make the standby's
/// bind fail), and not the replica reconnecting to it (from a local port equal to the one it
/// dials, TCP connects a socket to itself). So the address is a loopback address of its own,
/// 127.x.y.z (Linux routes all of 127/8 to lo): sockets bound to 127.0.0.1 and connections from
/// it cannot conflict with it. Where only 127.0.0.1 exists (macOS), that.
fn candidates_address() -> String {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let [a, b, c, ..] = random.to_le_bytes();
    let ip = format!("127.{}.{b}.{}", a.max(1), c.clamp(1, 254));
    for ip in [ip.as_str(), "127.0.0.1"] {
        if let Ok(probe) = std::net::TcpListener::bind((ip, 0)) {
            return probe.local_addr().unwrap().to_string();
        }
    }
    panic!("cannot bind a loopback address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_and_the_fleet_outlives_both_operators() {
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("switchboard-demo");
    let patience = cluster.patience(Duration::from_secs(20));
    cluster.apply_examples(&ns);
    // Both candidates use one address, as both sit behind one Service: only the leader listens.
    // Replicas must present the stream token (plain text here; TLS is tests/e2e/tests/stream.rs).
    let listen = candidates_address();
    let dir = TempDir::new();
    let token = dir.0.join("token");
    std::fs::write(&token, "stream-token-0123456789\n").unwrap();
    let token = token.to_str().unwrap();
    let operator = |identity: &str| {
        Operator::start_with(&cluster, &ns, &dir.0, identity, &listen, &["--stream-token-file", token])
    };
    let mut first = operator("op-a");
    let stream = first.leading(patience).unwrap_or_else(|| panic!("{}", first.log()));
    let mut second = operator("op-b");
    let standing_by = eventually(patience, async || second.log().contains("standing by")).await;
    assert!(standing_by, "{}", second.log());

    // Three replicas; the third keeps its snapshot on disk.
    let cache = dir.0.join("gw-2.snapshot.json");
    let replica = |name: &str, extra: &[&str]| {
        let mut args = vec!["--operator", &stream, "--operator-insecure", "--operator-token-file", token];
        args.extend(["--replica-name", name]);
        args.extend(extra);
        Gateway::start(&args)
    };
    let cache_flag = ["--snapshot-cache", cache.to_str().unwrap()];
    let mut fleet = vec![replica("gw-0", &[]), replica("gw-1", &[]), replica("gw-2", &cache_flag)];
    let key = generated_key(&cluster, &ns).await.unwrap_or_else(|| panic!("{}", first.log()));
    for gateway in &fleet {
        assert!(
            eventually(patience, async || chat(gateway, &key, "mock").await == 200).await,
            "{}",
            gateway.log()
        );
    }

    // A wrong stream credential is refused: that replica gets nothing to serve.
    let wrong = dir.0.join("wrong-token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let intruder = Gateway::start(&[
        "--operator",
        &stream,
        "--operator-insecure",
        "--operator-token-file",
        wrong.to_str().unwrap(),
        "--replica-name",
        "intruder",
    ]);
    let refused =
        eventually(patience, async || intruder.log().contains("the operator refused our stream token")).await;
    assert!(refused, "{}", intruder.log());
    assert_eq!(chat(&intruder, &key, "mock").await, 503);
    assert!(!intruder.ready().await);

    // The leader dies without releasing its Lease: the standby waits for it to expire.
    first.kill();
    assert!(second.leading(patience).is_some(), "{}", second.log());
    assert_eq!(second.admin("/readyz").await.0, 200);
    let holder = cluster.kubectl(&[
        "get",
        "lease",
        "switchboard-operator",
        "-n",
        &cluster.lease_namespace(&ns),
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "op-b");

    // The new leader pushes the next change to every replica; they kept serving meanwhile.
    for gateway in &fleet {
        assert_eq!(chat(gateway, &key, "mock").await, 200);
    }
    apply_virtual_key(&cluster, &ns, "sk-after-failover-0123456789");
    for gateway in &fleet {
        let pushed =
            eventually(patience, async || chat(gateway, "sk-after-failover-0123456789", "mock").await == 200)
                .await;
        assert!(pushed, "{}\n{}", second.log(), gateway.log());
    }

    // Both operators dead: every replica keeps serving what it has.
    second.kill();
    let disconnected = eventually(patience, async || {
        let mut all = true;
        for gateway in &fleet {
            all &= gateway.metric("switchboard_operator_connected").await == 0.0;
        }
        all
    })
    .await;
    assert!(disconnected);
    for gateway in &fleet {
        assert_eq!(chat(gateway, "sk-after-failover-0123456789", "mock").await, 200, "{}", gateway.log());
    }

    // A replica restarted while no operator answers serves its persisted snapshot.
    drop(fleet.pop());
    let restarted = replica("gw-2", &cache_flag);
    assert!(restarted.ready().await, "{}", restarted.log());
    assert_eq!(chat(&restarted, "sk-after-failover-0123456789", "mock").await, 200, "{}", restarted.log());
    assert_eq!(chat(&restarted, &key, "mock").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serving_a_higher_generation_gets_the_next_one_numbered_above_it() {
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("switchboard-demo");
    let patience = cluster.patience(Duration::from_secs(20));
    cluster.apply_examples(&ns);
    let dir = TempDir::new();
    // A replica whose cached snapshot (from another operator, whose clock ran far ahead) has a
    // generation above anything this operator's clock gives.
    let far_ahead: u64 = 9_000_000_000_000;
    let cache = dir.0.join("cache.json");
    std::fs::write(&cache, format!(r#"{{"version":2,"generation":{far_ahead}}}"#)).unwrap();
    let operator = Operator::start(&cluster, &ns, &dir.0, "op-0", "127.0.0.1:0");
    let stream = operator.leading(patience).unwrap_or_else(|| panic!("{}", operator.log()));
    let gateway = Gateway::start(&[
        "--operator",
        &stream,
        "--operator-insecure",
        "--replica-name",
        "gw",
        "--snapshot-cache",
        cache.to_str().unwrap(),
    ]);
    let key = generated_key(&cluster, &ns).await.unwrap_or_else(|| panic!("{}", operator.log()));
    let served = eventually(patience, async || chat(&gateway, &key, "mock").await == 200).await;
    assert!(served, "{}\n{}", operator.log(), gateway.log());
    let generation = gateway.metric("switchboard_config_generation").await;
    assert!(generation > far_ahead as f64, "{generation}");
    // Never offered the older snapshot, so never refused one.
    assert!(!gateway.log().contains("refus"), "{}", gateway.log());
    assert!(operator.admin("/metrics").await.1.contains("switchboard_operator_nacks_total 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_provider_secret_is_used_upstream() {
    let upstream = switchboard_mock_upstream::MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let mut cluster = Cluster::start();
    let ns = cluster.namespace("team");
    let patience = cluster.patience(Duration::from_secs(20));
    let dir = TempDir::new();
    // A provider on a loopback upstream (allowed explicitly), its key in a Secret, a route and a
    // VirtualKey whose key we know.
    let manifest = |upstream_key: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{ name: {ns} }}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{ name: upstream, namespace: {ns} }}\nstringData: {{ api-key: {upstream_key} }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{ name: local, namespace: {ns} }}\n\
             spec: {{ type: openai, baseURL: \"{}\", allowPrivateNetwork: true, apiKey: {{ secretKeyRef: {{ name: upstream, key: api-key }} }} }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: ModelRoute\nmetadata: {{ name: chat, namespace: {ns} }}\n\
             spec: {{ model: chat, backends: [{{ providerRef: {{ name: local }} }}] }}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{ name: caller, namespace: {ns} }}\nstringData: {{ key: sk-caller-0123456789 }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: caller, namespace: {ns} }}\nspec: {{ secretRef: {{ name: caller }} }}\n",
            upstream.base_url()
        )
    };
    cluster.apply(&manifest("sk-upstream-first"));
    let operator = Operator::start(&cluster, &ns, &dir.0, "op-0", "127.0.0.1:0");
    let stream = operator.leading(patience).unwrap_or_else(|| panic!("{}", operator.log()));
    let gateway = Gateway::start(&["--operator", &stream, "--operator-insecure", "--replica-name", "gw"]);
    let upstream_auth = async || {
        if chat(&gateway, "sk-caller-0123456789", "chat").await != 200 {
            return String::new();
        }
        upstream.last_request().and_then(|r| r.header("authorization").map(str::to_owned)).unwrap_or_default()
    };
    let first = eventually(patience, async || upstream_auth().await == "Bearer sk-upstream-first").await;
    assert!(first, "{}\n{}", operator.log(), gateway.log());

    // Rotate the Secret: the next requests carry the new key upstream.
    cluster.apply(&manifest("sk-upstream-second"));
    let rotated = eventually(patience, async || upstream_auth().await == "Bearer sk-upstream-second").await;
    assert!(rotated, "{}", operator.log());
    assert!(
        !operator.log().contains("sk-upstream-") && !gateway.log().contains("sk-upstream-"),
        "keys stay out of logs"
    );
}
