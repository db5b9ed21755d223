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
    stream: String,
    log: PathBuf,
}

impl Operator {
    fn start(cluster: &Cluster, dir: &Path) -> Operator {
        let log = dir.join("operator.log");
        let mut child = Command::new(binary("switchboard-operator"))
            .args(["run", "--stream-listen", "127.0.0.1:0", "--stream-insecure", "--identity", "op-0"])
            .env("KUBECONFIG", &cluster.kubeconfig)
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let Some(address) = line.trim().strip_prefix("listening stream=") else {
            panic!("operator did not start: {line:?}\n{}", std::fs::read_to_string(&log).unwrap_or_default());
        };
        Operator { stream: format!("http://{address}"), child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let operator = Operator::start(&cluster, &dir.0);
    let replicas: Vec<Gateway> = (0..2)
        .map(|i| {
            Gateway::start(&[
                "--operator",
                &operator.stream,
                "--operator-insecure",
                "--replica-name",
                &format!("gw-{i}"),
            ])
        })
        .collect();

    // The operator generates the key of a VirtualKey whose Secret does not exist.
    let mut key = String::new();
    let generated = eventually(Duration::from_secs(20), async || {
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
        if output.status.success() {
            key = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        }
        !key.is_empty()
    })
    .await;
    assert!(generated, "no key generated:\n{}", operator.log());
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

    // A new VirtualKey authenticates on every replica.
    let new_key = dir.0.join("new-key.yaml");
    std::fs::write(
        &new_key,
        "apiVersion: v1\nkind: Secret\nmetadata: { name: late-key, namespace: switchboard-demo }\nstringData: { key: sk-late-arrival-0123456789 }\n---\napiVersion: switchboard.dev/v1alpha1\nkind: VirtualKey\nmetadata: { name: late, namespace: switchboard-demo }\nspec: { secretRef: { name: late-key }, models: [mock] }\n",
    )
    .unwrap();
    cluster.kubectl(&["apply", "-f", new_key.to_str().unwrap()]);
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
