//! The snapshot stream end to end: the operator's publisher (in-process) and real gateway
//! processes started with `--operator`. Snapshots arrive, are served and acked; rejected entries
//! come back with their objects; a wrong token or plain text without the flag is refused; TLS
//! works with the operator's CA; a replica keeps serving when the operator goes away.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use switchboard_config::{Snapshot, hash_key};
use switchboard_e2e::{Gateway, TempDir, eventually};
use switchboard_operator::publish::{Publisher, ReplicaState, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;

const KEY: &str = "sk-e2e-stream";

fn snapshot(generation: u64, extra_provider: Option<serde_json::Value>) -> Snapshot {
    let digest: [u8; 32] = Sha256::digest(KEY.as_bytes()).into();
    let mut providers = vec![
        serde_json::json!({ "type": "mock", "name": "ns/mock", "reply": format!("generation {generation}"),
        "source": { "kind": "LLMProvider", "namespace": "ns", "name": "mock", "generation": 1 } }),
    ];
    let mut routes = vec![serde_json::json!({ "model": "chat", "backends": [{ "provider": "ns/mock" }] })];
    if let Some(provider) = extra_provider {
        providers.push(provider);
        routes.push(serde_json::json!({ "model": "other", "backends": [{ "provider": "ns/other" }] }));
    }
    serde_json::from_value(serde_json::json!({
        "version": 2,
        "generation": generation,
        "providers": providers,
        "routes": routes,
        "keys": [{ "id": "ns/team", "hashes": [{ "hash": hash_key(&digest).0 }] }],
    }))
    .unwrap()
}

struct Operator {
    publisher: Arc<Publisher>,
    url: String,
    _stop: watch::Sender<bool>,
}

async fn operator(token: Option<&str>, tls: Option<tokio_rustls::TlsAcceptor>) -> Operator {
    let publisher = Publisher::new("test-operator", token.map(str::to_owned));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://localhost:{}", listener.local_addr().unwrap().port());
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(serve(listener, tls, publisher.clone(), stopped));
    Operator { publisher, url, _stop: stop }
}

/// Waits until `replica` reports something `check` accepts.
async fn replica_reaches(
    publisher: &Publisher,
    replica: &str,
    check: impl Fn(&ReplicaState) -> bool,
) -> ReplicaState {
    let mut changes = publisher.changes();
    let wait = async {
        loop {
            if let Some(state) = publisher.replicas().into_iter().find(|r| r.replica == replica && check(r)) {
                return state;
            }
            changes.changed().await.unwrap();
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(state) => state,
        Err(_) => panic!("replica {replica} never got there: {:#?}", publisher.replicas()),
    }
}

async fn chat(gateway: &Gateway, model: &str) -> (u16, String) {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    gateway.call("POST", "/v1/chat/completions", Some(KEY), &body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_reach_every_replica_and_each_acks_what_it_serves() {
    let op = operator(None, None).await;
    let gateways: Vec<Gateway> = (0..2)
        .map(|i| {
            Gateway::start(&[
                "--operator",
                &op.url,
                "--operator-insecure",
                "--replica-name",
                &format!("gw-{i}"),
            ])
        })
        .collect();
    for gateway in &gateways {
        assert!(!gateway.ready().await, "no snapshot yet: not ready");
        assert_eq!(chat(gateway, "chat").await.0, 503);
    }
    op.publisher.publish(snapshot(1, None));
    for (i, gateway) in gateways.iter().enumerate() {
        let state = replica_reaches(&op.publisher, &format!("gw-{i}"), |r| {
            r.applied.as_ref().is_some_and(|a| a.generation == 1)
        })
        .await;
        assert!(state.connected && state.rejected.is_empty() && state.version == 2, "{state:?}");
        let (status, body) = chat(gateway, "chat").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("generation 1"), "{body}");
        assert!(gateway.ready().await);
        assert_eq!(gateway.metric("switchboard_operator_connected").await, 1.0);
    }

    // A provider every replica refuses (the cloud metadata endpoint): the rest serves, and the
    // ack names the object.
    let imds = serde_json::json!({ "type": "openai", "name": "ns/other", "base_url": "http://169.254.169.254/v1",
        "source": { "kind": "LLMProvider", "namespace": "ns", "name": "other", "generation": 4 } });
    op.publisher.publish(snapshot(2, Some(imds)));
    for (i, gateway) in gateways.iter().enumerate() {
        let state = replica_reaches(&op.publisher, &format!("gw-{i}"), |r| {
            r.applied.as_ref().is_some_and(|a| a.generation == 2)
        })
        .await;
        let names: Vec<_> = state.rejected.iter().map(|r| (r.section.as_str(), r.name.as_str())).collect();
        assert_eq!(names, [("providers", "ns/other"), ("routes", "other")], "{state:?}");
        assert_eq!(state.rejected[0].object.as_ref().unwrap().to_string(), "LLMProvider ns/other");
        assert!(chat(gateway, "chat").await.1.contains("generation 2"));
        assert_eq!(chat(gateway, "other").await.0, 404);
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_the_right_one_accepted() {
    let op = operator(Some("s3cret-stream-token"), None).await;
    op.publisher.publish(snapshot(1, None));
    let dir = TempDir::new();
    let (wrong, right) = (dir.0.join("wrong"), dir.0.join("right"));
    std::fs::write(&wrong, "not-the-token\n").unwrap();
    std::fs::write(&right, "s3cret-stream-token\n").unwrap();
    let intruder = Gateway::start(&[
        "--operator",
        &op.url,
        "--operator-insecure",
        "--replica-name",
        "intruder",
        "--operator-token-file",
        wrong.to_str().unwrap(),
    ]);
    let member = Gateway::start(&[
        "--operator",
        &op.url,
        "--operator-insecure",
        "--replica-name",
        "member",
        "--operator-token-file",
        right.to_str().unwrap(),
    ]);
    replica_reaches(&op.publisher, "member", |r| r.applied.is_some()).await;
    let refused = eventually(Duration::from_secs(10), async || {
        intruder.log().contains("the operator refused our stream token")
    })
    .await;
    assert!(refused, "{}", intruder.log());
    assert!(op.publisher.replicas().iter().all(|r| r.replica != "intruder"));
    assert!(!intruder.ready().await);
    assert!(
        !intruder.log().contains("not-the-token") && !member.log().contains("s3cret"),
        "tokens stay out of logs"
    );
}

#[tokio::test]
async fn plain_text_needs_the_insecure_flag() {
    let output = std::process::Command::new(switchboard_e2e::binary("switchboard-gateway"))
        .args(["--operator", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--operator-insecure"));
}

#[tokio::test]
async fn tls_with_the_operators_ca_and_static_stability_when_it_goes_away() {
    let ca = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server_params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca);
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let dir = TempDir::new();
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).unwrap();

    use tokio_rustls::rustls;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(server_key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let op = operator(None, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
    op.publisher.publish(snapshot(3, None));
    let gateway = Gateway::start(&[
        "--operator",
        &op.url,
        "--operator-ca-file",
        ca_file.to_str().unwrap(),
        "--replica-name",
        "tls",
    ]);
    replica_reaches(&op.publisher, "tls", |r| r.applied.as_ref().is_some_and(|a| a.generation == 3)).await;
    assert_eq!(chat(&gateway, "chat").await.0, 200);

    // Without the CA the operator's certificate is not trusted: nothing is applied.
    let stranger = Gateway::start(&["--operator", &op.url, "--replica-name", "stranger"]);
    let failed = eventually(Duration::from_secs(10), async || stranger.log().contains("TLS")).await;
    assert!(failed, "{}", stranger.log());
    assert!(!stranger.ready().await);

    // The operator goes away: the replica keeps serving its last snapshot.
    drop(op);
    let noticed = eventually(Duration::from_secs(15), async || {
        gateway.metric("switchboard_operator_connected").await == 0.0
    })
    .await;
    assert!(noticed, "{}", gateway.log());
    assert_eq!(chat(&gateway, "chat").await.0, 200, "static stability: still serving");
}

#[tokio::test]
async fn a_replica_restarted_while_the_operator_is_down_serves_its_cached_snapshot() {
    let dir = TempDir::new();
    let cache = dir.0.join("snapshot.json");
    let cache_arg = cache.to_str().unwrap().to_owned();
    let op = operator(None, None).await;
    let url = op.url.clone();
    op.publisher.publish(snapshot(5, None));
    let first = Gateway::start(&[
        "--operator",
        &url,
        "--operator-insecure",
        "--replica-name",
        "cached",
        "--snapshot-cache",
        &cache_arg,
    ]);
    replica_reaches(&op.publisher, "cached", |r| r.applied.as_ref().is_some_and(|a| a.generation == 5)).await;
    let written = eventually(Duration::from_secs(10), async || cache.exists()).await;
    assert!(written, "{}", first.log());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600,
        "it holds credentials"
    );

    // Operator and replica both go down; the replica comes back first.
    drop(first);
    drop(op);
    let restarted = Gateway::start(&[
        "--operator",
        &url,
        "--operator-insecure",
        "--replica-name",
        "cached",
        "--snapshot-cache",
        &cache_arg,
    ]);
    let serving = eventually(Duration::from_secs(10), async || chat(&restarted, "chat").await.0 == 200).await;
    assert!(serving, "{}", restarted.log());
    assert!(chat(&restarted, "chat").await.1.contains("generation 5"));
    let (status, detail) =
        switchboard_e2e::send("GET", &format!("http://{}/readyz", restarted.admin), None, "").await;
    assert_eq!(status, 200);
    assert!(detail.contains("serving the cached snapshot (generation 5)"), "{detail}");
    assert_eq!(restarted.metric("switchboard_operator_connected").await, 0.0);
}
