//! The snapshot stream end to end: the operator's publisher (in-process) and real gateway
//! processes started with `--operator`. Snapshots arrive, are served and acked; rejected entries
//! come back with their objects; a wrong token or plain text without the flag is refused; TLS
//! works with the operator's CA; a replica keeps serving when the operator goes away.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use switchboard_config::{Document, Snapshot, hash_key};
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
    op.publisher.publish(snapshot(2, Some(imds.clone())));
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
        // It came as a delta, and the replica holds exactly the operator's document.
        let expected = Document::from_snapshot(&snapshot(2, Some(imds.clone()))).digest();
        assert_eq!(state.applied.unwrap().hash, expected);
    }
    assert_eq!(op.publisher.deltas_sent.load(Relaxed), 2, "one delta per replica");
    assert_eq!(op.publisher.resyncs.load(Relaxed), 0);
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
    // The next one arrives as a delta; the cache holds the whole document it leads to.
    op.publisher.publish(snapshot(6, None));
    replica_reaches(&op.publisher, "cached", |r| r.applied.as_ref().is_some_and(|a| a.generation == 6)).await;
    assert_eq!(op.publisher.deltas_sent.load(Relaxed), 1);
    let whole = snapshot(6, None).to_json();
    let written = eventually(Duration::from_secs(10), async || {
        std::fs::read_to_string(&cache).is_ok_and(|t| t == whole)
    })
    .await;
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
    assert!(chat(&restarted, "chat").await.1.contains("generation 6"));
    let (status, detail) =
        switchboard_e2e::send("GET", &format!("http://{}/readyz", restarted.admin), None, "").await;
    assert_eq!(status, 200);
    assert!(detail.contains("serving the cached snapshot (generation 6)"), "{detail}");
    assert_eq!(restarted.metric("switchboard_operator_connected").await, 0.0);
}

/// A replica as the protocol sees it, driven by hand: one HTTP/2 request whose body carries
/// the replica's lines, and whose response carries the operator's.
struct RawReplica {
    outgoing: tokio::sync::mpsc::Sender<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>>,
    incoming: hyper::body::Incoming,
    lines: switchboard_config::stream::Lines,
    pending: std::collections::VecDeque<serde_json::Value>,
}

impl RawReplica {
    async fn connect(url: &str, hello: serde_json::Value) -> RawReplica {
        use http_body_util::StreamBody;
        let authority = url.trim_start_matches("http://");
        let tcp = tokio::net::TcpStream::connect(authority.replace("localhost", "127.0.0.1")).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let (outgoing, queue) = tokio::sync::mpsc::channel(16);
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(queue));
        let request = http::Request::post(format!("{url}/v1/stream")).body(body).unwrap();
        outgoing.send(Ok(line(&hello))).await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        RawReplica {
            outgoing,
            incoming: response.into_body(),
            lines: Default::default(),
            pending: Default::default(),
        }
    }

    async fn send(&self, message: serde_json::Value) {
        self.outgoing.send(Ok(line(&message))).await.unwrap();
    }

    /// The next message that is not a heartbeat.
    async fn next(&mut self) -> serde_json::Value {
        use http_body_util::BodyExt;
        loop {
            if let Some(message) = self.pending.pop_front() {
                if message["type"] != "heartbeat" {
                    return message;
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.incoming.frame()).await.unwrap();
            let data = frame.unwrap().unwrap().into_data().unwrap_or_default();
            for line in self.lines.push(&data).unwrap() {
                self.pending.push_back(serde_json::from_slice(&line).unwrap());
            }
        }
    }
}

fn line(message: &serde_json::Value) -> hyper::body::Frame<bytes::Bytes> {
    hyper::body::Frame::data(bytes::Bytes::from(format!("{message}\n")))
}

#[tokio::test]
async fn a_replica_that_cannot_apply_a_delta_gets_the_whole_snapshot() {
    let op = operator(None, None).await;
    op.publisher.publish(snapshot(1, None));
    let hello = serde_json::json!({ "type": "hello", "replica": "raw", "build": "test", "reads": [1, 2],
                                    "serving": null, "deltas": true });
    let mut replica = RawReplica::connect(&op.url, hello).await;
    assert_eq!(replica.next().await["type"], "welcome");
    let whole = replica.next().await;
    assert_eq!((whole["type"].as_str(), whole["generation"].as_u64()), (Some("snapshot"), Some(1)));
    let digest = Document::from_snapshot(&snapshot(1, None)).digest();
    replica.send(serde_json::json!({ "type": "ack", "generation": 1, "hash": digest, "rejected": [] })).await;

    op.publisher.publish(snapshot(2, None));
    let delta = replica.next().await;
    assert_eq!((delta["type"].as_str(), delta["base"].as_u64()), (Some("delta"), Some(1)), "{delta}");
    assert_eq!(delta["hash"], Document::from_snapshot(&snapshot(2, None)).digest());
    assert_eq!(delta["changes"]["providers"]["upsert"].as_array().map(Vec::len), Some(1), "{delta}");
    assert!(delta.to_string().len() < 600, "only what changed: {delta}");

    replica.send(serde_json::json!({ "type": "resync", "generation": 2, "reason": "lost my copy" })).await;
    let whole = replica.next().await;
    assert_eq!(
        (whole["type"].as_str(), whole["generation"].as_u64()),
        (Some("snapshot"), Some(2)),
        "{whole}"
    );
    assert_eq!(whole["document"], serde_json::to_value(snapshot(2, None)).unwrap());
    assert_eq!(op.publisher.resyncs.load(Relaxed), 1);

    // A replica that does not say it takes deltas (an older release) gets whole snapshots only.
    let hello = serde_json::json!({ "type": "hello", "replica": "old", "build": "test", "reads": [1, 2], "serving": null });
    let mut old = RawReplica::connect(&op.url, hello).await;
    assert_eq!(old.next().await["type"], "welcome");
    assert_eq!(old.next().await["generation"], 2);
    op.publisher.publish(snapshot(3, None));
    assert_eq!(old.next().await["type"], "snapshot");
}
