//! `kubectl apply` → the in-repo API server → the real `switchboard-operator` binary → real
//! gateway replicas: the examples serve through every replica with the key the operator
//! generated, `kubectl get` shows Programmed once every replica acked, an invalid object says why
//! while the rest keeps serving, and a deleted route is gone from every replica.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests: a failed step fails the test")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use switchboard_e2e::{Gateway, TempDir, binary, eventually};
use switchboard_test_apiserver::ApiServer;

/// The real kubectl: `$SWITCHBOARD_KUBECTL` (scripts/test provisions it).
fn kubectl_binary() -> PathBuf {
    match std::env::var_os("SWITCHBOARD_KUBECTL") {
        Some(path) => PathBuf::from(path),
        None => panic!("set SWITCHBOARD_KUBECTL to a kubectl binary (scripts/test provisions v1.36)"),
    }
}

struct Cluster {
    _server: ApiServer,
    kubeconfig: PathBuf,
    _dir: TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let server = ApiServer::start(Default::default()).unwrap();
        let dir = TempDir::new();
        let kubeconfig = dir.0.join("kubeconfig");
        std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
        Cluster { _server: server, kubeconfig, _dir: dir }
    }

    /// Runs kubectl; returns stdout, failing the test with stderr when it fails.
    fn kubectl(&self, args: &[&str]) -> String {
        let output =
            Command::new(kubectl_binary()).args(args).env("KUBECONFIG", &self.kubeconfig).output().unwrap();
        assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn condition(&self, resource: &str, name: &str, type_: &str, field: &str) -> String {
        let path = format!("jsonpath={{.status.conditions[?(@.type==\"{type_}\")].{field}}}");
        self.kubectl(&["get", resource, name, "-n", "switchboard-demo", "-o", &path])
    }
}

struct Operator {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// `/healthz`, `/readyz`, `/metrics`.
    admin: String,
    log: PathBuf,
}

impl Operator {
    /// Starts `switchboard-operator run`; it prints `listening stream=ADDR` once it leads.
    fn start(cluster: &Cluster, dir: &Path, identity: &str, listen: &str) -> Operator {
        let log = dir.join(format!("{identity}.log"));
        let mut child = Command::new(binary("switchboard-operator"))
            .args(["run", "--stream-listen", listen, "--stream-insecure", "--identity", identity])
            .args(["--lease-duration", "2", "--admin-listen", "127.0.0.1:0"])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let Some(admin) = first.trim().strip_prefix("admin listening admin=") else {
            panic!(
                "operator did not start: {first:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let admin = format!("http://{admin}");
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        Operator { child, lines, admin, log }
    }

    /// The stream URL once this operator leads (within `timeout`).
    fn leading(&self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        line.trim().strip_prefix("listening stream=").map(|address| format!("http://{address}"))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn admin(&self, path: &str) -> (u16, String) {
        switchboard_e2e::send("GET", &format!("{}{path}", self.admin), None, "").await
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn chat(gateway: &Gateway, key: &str, model: &str) -> u16 {
    let body = format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
    gateway.call("POST", "/v1/chat/completions", Some(key), &body).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_reaches_every_replica_and_kubectl_get_tells_the_truth() {
    let cluster = Cluster::start();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes");
    cluster.kubectl(&["apply", "-f", examples.to_str().unwrap()]);
    let dir = TempDir::new();
    let operator = Operator::start(&cluster, &dir.0, "op-0", "127.0.0.1:0");
    let stream = operator.leading(Duration::from_secs(20)).unwrap_or_else(|| panic!("{}", operator.log()));
    let replicas: Vec<Gateway> = (0..2)
        .map(|i| {
            Gateway::start(&[
                "--operator",
                &stream,
                "--operator-insecure",
                "--replica-name",
                &format!("gw-{i}"),
            ])
        })
        .collect();

    // The operator generates the key of a VirtualKey whose Secret does not exist.
    let key =
        generated_key(&cluster).await.unwrap_or_else(|| panic!("no key generated:\n{}", operator.log()));
    assert!(key.starts_with("sk-sb-"));

    for replica in &replicas {
        let served =
            eventually(Duration::from_secs(20), async || chat(replica, &key, "mock").await == 200).await;
        assert!(served, "replica never served the route:\n{}\n{}", replica.log(), operator.log());
    }
    let programmed = eventually(Duration::from_secs(20), async || {
        cluster.condition("modelroute", "mock", "Programmed", "status") == "True"
    })
    .await;
    assert!(
        programmed,
        "{}",
        cluster.kubectl(&["get", "mr", "mock", "-n", "switchboard-demo", "-o", "yaml"])
    );
    let message = cluster.condition("modelroute", "mock", "Programmed", "message");
    assert!(message.starts_with("2/2 replicas at generation"), "{message}");
    assert_eq!(operator.admin("/readyz").await, (200, "leading\n".to_owned()));
    let metrics = operator.admin("/metrics").await.1;
    for line in ["switchboard_operator_leading 1", "switchboard_operator_replicas_connected 2"] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert!(!metrics.contains("switchboard_operator_acks_total 0"), "{metrics}");
    let table = cluster.kubectl(&["get", "modelroutes", "-n", "switchboard-demo"]);
    let header = table.lines().next().unwrap_or_default();
    for column in ["MODEL", "ACCEPTED", "PROGRAMMED", "AGE"] {
        assert!(header.contains(column), "{table}");
    }

    // An invalid object says why; everything else keeps serving.
    let bad = dir.0.join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: { name: imds, namespace: switchboard-demo }\nspec: { type: openai, baseURL: \"http://169.254.169.254/latest\" }\n",
    )
    .unwrap();
    cluster.kubectl(&["apply", "-f", bad.to_str().unwrap()]);
    let refused = eventually(Duration::from_secs(20), async || {
        cluster.condition("llmprovider", "imds", "Accepted", "status") == "False"
    })
    .await;
    assert!(refused, "{}", operator.log());
    let why = cluster.condition("llmprovider", "imds", "Accepted", "message");
    assert!(why.starts_with("spec.baseURL: host \"169.254.169.254\" is refused"), "{why}");
    for replica in &replicas {
        assert_eq!(chat(replica, &key, "mock").await, 200);
    }
    // ... and a Warning Event on the object, for `kubectl describe` (posted after the status).
    let event_posted = eventually(Duration::from_secs(20), async || {
        let events = cluster.kubectl(&[
            "get",
            "events.events.k8s.io",
            "-n",
            "switchboard-demo",
            "-o",
            "jsonpath={range .items[*]}{.regarding.name} {.type} {.reason} {.note}{\"\\n\"}{end}",
        ]);
        events.lines().any(|l| l.starts_with("imds Warning Invalid spec.baseURL: host"))
    })
    .await;
    assert!(event_posted, "no event for the refused object:\n{}", operator.log());

    // A new VirtualKey authenticates on every replica.
    apply_virtual_key(&cluster, &dir.0, "sk-late-arrival-0123456789");
    for replica in &replicas {
        let accepted = eventually(Duration::from_secs(20), async || {
            chat(replica, "sk-late-arrival-0123456789", "mock").await == 200
        })
        .await;
        assert!(accepted, "{}", operator.log());
    }

    // A deleted route is gone from every replica within 2 s.
    cluster.kubectl(&["delete", "modelroute", "mock", "-n", "switchboard-demo"]);
    for replica in &replicas {
        let gone =
            eventually(Duration::from_secs(2), async || chat(replica, &key, "mock").await == 404).await;
        assert!(gone, "{}", operator.log());
    }
}

/// Applies a Secret holding `key` and a VirtualKey `late` on it, allowed the `mock` model.
fn apply_virtual_key(cluster: &Cluster, dir: &Path, key: &str) {
    let file = dir.join("late-key.yaml");
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{ name: late-key, namespace: switchboard-demo }}\nstringData: {{ key: {key} }}\n---\napiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: late, namespace: switchboard-demo }}\nspec: {{ secretRef: {{ name: late-key }}, models: [mock] }}\n"
    );
    std::fs::write(&file, manifest).unwrap();
    cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
}

/// The key the operator generated for the example VirtualKey `ci-smoke`.
async fn generated_key(cluster: &Cluster) -> Option<String> {
    let mut key = None;
    eventually(Duration::from_secs(20), async || {
        let output = Command::new(kubectl_binary())
            .args([
                "get",
                "secret",
                "ci-smoke-key",
                "-n",
                "switchboard-demo",
                "-o",
                "go-template={{.data.key | base64decode}}",
            ])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if output.status.success() && !text.is_empty() {
            key = Some(text);
        }
        key.is_some()
    })
    .await;
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_dies_and_pushes_the_next_change() {
    let cluster = Cluster::start();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes");
    cluster.kubectl(&["apply", "-f", examples.to_str().unwrap()]);
    // Both candidates use one address, as both sit behind one Service: only the leader listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let dir = TempDir::new();
    let mut first = Operator::start(&cluster, &dir.0, "op-a", &listen);
    let stream = first.leading(Duration::from_secs(20)).unwrap_or_else(|| panic!("{}", first.log()));
    let second = Operator::start(&cluster, &dir.0, "op-b", &listen);
    let standing_by =
        eventually(Duration::from_secs(20), async || second.log().contains("standing by")).await;
    assert!(standing_by, "{}", second.log());

    let gateway = Gateway::start(&["--operator", &stream, "--operator-insecure", "--replica-name", "gw"]);
    let key = generated_key(&cluster).await.unwrap_or_else(|| panic!("{}", first.log()));
    assert!(eventually(Duration::from_secs(20), async || chat(&gateway, &key, "mock").await == 200).await);

    // The leader dies without releasing its Lease: the standby waits for it to expire (2 s).
    first.kill();
    assert!(second.leading(Duration::from_secs(20)).is_some(), "{}", second.log());
    assert_eq!(second.admin("/readyz").await.0, 200);
    let holder = cluster.kubectl(&[
        "get",
        "lease",
        "switchboard-operator",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "op-b");

    // The new leader pushes the next change; the replica kept serving meanwhile.
    assert_eq!(chat(&gateway, &key, "mock").await, 200);
    apply_virtual_key(&cluster, &dir.0, "sk-after-failover-0123456789");
    let pushed = eventually(Duration::from_secs(20), async || {
        chat(&gateway, "sk-after-failover-0123456789", "mock").await == 200
    })
    .await;
    assert!(pushed, "{}\n{}", second.log(), gateway.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_provider_secret_is_used_upstream() {
    let upstream = switchboard_mock_upstream::MockUpstream::start(([127, 0, 0, 1], 0).into()).await.unwrap();
    let cluster = Cluster::start();
    let dir = TempDir::new();
    // A provider on a loopback upstream (allowed explicitly), its key in a Secret, a route and a
    // VirtualKey whose key we know.
    let manifest = |upstream_key: &str| {
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{ name: team }}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{ name: upstream, namespace: team }}\nstringData: {{ api-key: {upstream_key} }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: {{ name: local, namespace: team }}\n\
             spec: {{ type: openai, baseURL: \"{}\", allowPrivateNetwork: true, apiKey: {{ secretKeyRef: {{ name: upstream, key: api-key }} }} }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: ModelRoute\nmetadata: {{ name: chat, namespace: team }}\n\
             spec: {{ model: chat, backends: [{{ providerRef: {{ name: local }} }}] }}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {{ name: caller, namespace: team }}\nstringData: {{ key: sk-caller-0123456789 }}\n---\n\
             apiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: {{ name: caller, namespace: team }}\nspec: {{ secretRef: {{ name: caller }} }}\n",
            upstream.base_url()
        )
    };
    let file = dir.0.join("team.yaml");
    std::fs::write(&file, manifest("sk-upstream-first")).unwrap();
    cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let operator = Operator::start(&cluster, &dir.0, "op-0", "127.0.0.1:0");
    let stream = operator.leading(Duration::from_secs(20)).unwrap_or_else(|| panic!("{}", operator.log()));
    let gateway = Gateway::start(&["--operator", &stream, "--operator-insecure", "--replica-name", "gw"]);
    let upstream_auth = async || {
        if chat(&gateway, "sk-caller-0123456789", "chat").await != 200 {
            return String::new();
        }
        upstream.last_request().and_then(|r| r.header("authorization").map(str::to_owned)).unwrap_or_default()
    };
    let first =
        eventually(Duration::from_secs(20), async || upstream_auth().await == "Bearer sk-upstream-first")
            .await;
    assert!(first, "{}\n{}", operator.log(), gateway.log());

    // Rotate the Secret: the next requests carry the new key upstream.
    std::fs::write(&file, manifest("sk-upstream-second")).unwrap();
    cluster.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    let rotated =
        eventually(Duration::from_secs(20), async || upstream_auth().await == "Bearer sk-upstream-second")
            .await;
    assert!(rotated, "{}", operator.log());
    assert!(
        !operator.log().contains("sk-upstream-") && !gateway.log().contains("sk-upstream-"),
        "keys stay out of logs"
    );
}
