//! The chart's operator and gateway Deployments, as `helm template` renders them, run from the
//! static binaries the way a kubelet would start their pods: the rendered `args` unchanged (the
//! image's entrypoint is the binary; the chart sets no `command`), the rendered `env` resolved
//! (`fieldRef` to the pod's made-up name and namespace, `secretKeyRef` from the API server), each
//! `volumeMount` laid out from its pod `volume` in a distroless-like root (Secret items from the
//! rendered Secrets, read back from the API server; `emptyDir` an empty writable directory; the
//! service-account token where the pod automounts one), as the pod's user 65532.
//!
//! Each pod has its own network namespace (so both can listen on the rendered ports, 9090
//! twice), joined by a bridge in a node namespace this test's thread enters: the operator at
//! 10.0.0.2, the gateway at 10.0.0.3, the test and the in-repo API server on the bridge at
//! 10.0.0.1. The gateway finds the operator by the stream Service's DNS name from its args.
//!
//! Where the run differs from the rendered manifest, and why:
//! - The operator gets `KUBECONFIG` (a kubeconfig file at [`KUBECONFIG_PATH`]) in addition to its
//!   env: in-cluster configuration (`KUBERNETES_SERVICE_HOST`/`_PORT`, the service-account token
//!   and CA) always speaks HTTPS, and the in-repo API server serves plain HTTP. The
//!   service-account files are still mounted where the kubelet mounts them.
//! - Names resolve through each root's `/etc/hosts` (the Service name straight to the operator
//!   pod's address, the API server's name to the bridge), not cluster DNS and a Service's
//!   virtual IP: no kube-proxy or DNS server runs here. The Service's port is its targetPort.
//! - Mounts are files in the root, owned by root with the Secret's `defaultMode` and the pod's
//!   `fsGroup`, not bind mounts: uid 65532 can write none of them (nor anything else in the
//!   root but the emptyDir), which is what `readOnly` and `readOnlyRootFilesystem` enforce.
//! - No probes, resources, seccomp or capabilities: no kubelet or container runtime applies them
//!   (the policy test in chart.rs checks they are rendered).
//! - The root holds what the container runtime adds: `/etc/hosts` and the default devices in
//!   `/dev` ([`DEFAULT_DEVICES`]).
//! - The examples (`examples/kubernetes`) go into the first namespace the operator watches when
//!   the values limit it (the dev set: `dev`), as a user of that release would apply them.
//! - The env holds what the image and kubelet add (`PATH`, `SSL_CERT_FILE`, `HOSTNAME`,
//!   `KUBERNETES_SERVICE_HOST`/`_PORT`) besides the rendered variables; service links for the
//!   namespace's other Services are left out (the binaries read none of them).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helper: a failed step must abort the test with its context"
)]

use super::empty_root::{Process, distroless_root_at, in_root_in, on_path, running_as_root};
use serde_json::Value;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use switchboard_e2e::tools::{helm, repo_root, succeeded};
use switchboard_e2e::{TempDir, eventually, kubectl_binary, send};

/// The release's name and namespace, as in `helm install sb -n switchboard`.
const RELEASE: &str = "sb";
const NAMESPACE: &str = "switchboard";
/// The node's address on the pods' bridge (the test, the API server) and the pods' addresses.
const NODE_IP: &str = "10.0.0.1";
const OPERATOR_IP: &str = "10.0.0.2";
const GATEWAY_IP: &str = "10.0.0.3";
/// The API server's name in the roots' `/etc/hosts` (the in-cluster Service's name).
const APISERVER_NAME: &str = "kubernetes.default.svc";
/// The one addition to the operator's mounted files: the kubeconfig its `KUBECONFIG` names.
const KUBECONFIG_PATH: &str = "/var/run/switchboard-test/kubeconfig";
/// Where the kubelet mounts an automounted service-account token
/// (https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/).
const SERVICE_ACCOUNT_DIR: &str = "var/run/secrets/kubernetes.io/serviceaccount";
/// The pod user's group: Secret volume files are readable by it through `fsGroup`.
const FS_GROUP: u32 = 65532;
/// distroless/static's image config (its `Env`): what the container runtime sets first.
const IMAGE_ENV: [(&str, &str); 2] = [
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"),
];

/// `helm template` of the chart with `values` files (relative to the chart), as JSON objects.
fn render(values: &[&str]) -> Vec<Value> {
    let chart = repo_root().join("charts/switchboard");
    let mut command = Command::new(helm());
    command.args(["template", RELEASE]).arg(&chart).args(["--namespace", NAMESPACE]);
    for file in values {
        command.arg("--values").arg(chart.join(file));
    }
    let rendered = succeeded("helm template", &command.output().unwrap());
    serde_yaml_ng::Deserializer::from_str(&rendered)
        .map(|document| serde::Deserialize::deserialize(document).unwrap())
        .filter(|object: &Value| !object.is_null())
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

/// Runs `program` with `args` (this thread's network namespace); fails the test if it fails.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(on_path(program)).args(args).output().unwrap();
    succeeded(&format!("{program} {}", args.join(" ")), &output)
}

/// Moves this thread (and every thread and process it starts from now on) into a new network
/// namespace: the node, with loopback and a bridge for the pods. The test runs alone in its
/// process (nextest), so nothing else sees the change.
#[expect(unsafe_code, reason = "unshare(2) has no safe wrapper in std")]
fn enter_node_network() {
    // SAFETY: unshare takes a flag word and touches only this thread's namespace membership.
    let result = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(result, 0, "unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    run("ip", &["link", "set", "lo", "up"]);
    run("ip", &["link", "add", "sb-node", "type", "bridge"]);
    run("ip", &["addr", "add", &format!("{NODE_IP}/24"), "dev", "sb-node"]);
    run("ip", &["link", "set", "sb-node", "up"]);
}

/// A pod's network namespace, held by a `sleep` in it, cabled to the node's bridge as `eth0`.
struct PodNetwork {
    holder: std::process::Child,
    netns: PathBuf,
}

impl PodNetwork {
    fn new(name: &str, ip: &str) -> PodNetwork {
        let holder = Command::new(on_path("unshare"))
            .args(["--net", "--"])
            .arg(on_path("sleep"))
            .arg("600")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let netns = PathBuf::from(format!("/proc/{}/ns/net", holder.id()));
        // The holder enters its namespace after it starts: wait until it is not ours.
        let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(&netns).unwrap() == ours {
            assert!(std::time::Instant::now() < deadline, "unshare --net never entered its namespace");
            std::thread::sleep(Duration::from_millis(5));
        }
        let pid = holder.id().to_string();
        let host_side = format!("veth-{name}");
        run("ip", &["link", "add", &host_side, "type", "veth", "peer", "name", "eth0", "netns", &pid]);
        run("ip", &["link", "set", &host_side, "master", "sb-node", "up"]);
        let inside = |args: &[&str]| {
            let enter = format!("--net={}", netns.display());
            let mut all = vec![enter.as_str(), "ip"];
            all.extend_from_slice(args);
            run("nsenter", &all);
        };
        inside(&["link", "set", "lo", "up"]);
        inside(&["addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        inside(&["link", "set", "eth0", "up"]);
        PodNetwork { holder, netns }
    }
}

impl Drop for PodNetwork {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// kubectl against the in-repo API server.
struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
}

impl Kubectl {
    fn try_run(&self, args: &[&str]) -> std::process::Output {
        Command::new(kubectl_binary())
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> String {
        succeeded(&format!("kubectl {args:?}"), &self.try_run(args))
    }

    fn apply(&self, path: &Path) {
        self.run(&["apply", "-f", path.to_str().unwrap()]);
    }

    /// One key of a Secret, decoded, as the kubelet reads it for a volume or an env variable.
    fn secret_key(&self, namespace: &str, name: &str, key: &str) -> String {
        let template = format!("go-template={{{{index .data \"{key}\" | base64decode}}}}");
        self.run(&["get", "secret", name, "-n", namespace, "-o", &template])
    }
}

/// A pod of one rendered Deployment, about to be started.
struct Pod<'a> {
    deployment: &'a Value,
    /// A made-up pod name, shaped like a ReplicaSet's (`<deployment>-<hash>-<suffix>`).
    name: String,
    ip: &'static str,
}

impl Pod<'_> {
    fn spec(&self) -> &Value {
        &self.deployment["spec"]["template"]["spec"]
    }

    fn container(&self) -> &Value {
        let containers = self.spec()["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "one container per pod: {containers:?}");
        &containers[0]
    }

    /// The container's env as the kubelet resolves it, after the image's and kubelet's own.
    fn env(&self, kubectl: &Kubectl, apiserver: SocketAddr) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> =
            IMAGE_ENV.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        env.push(("HOSTNAME".to_owned(), self.name.clone()));
        env.push(("KUBERNETES_SERVICE_HOST".to_owned(), apiserver.ip().to_string()));
        env.push(("KUBERNETES_SERVICE_PORT".to_owned(), apiserver.port().to_string()));
        for variable in self.container()["env"].as_array().into_iter().flatten() {
            let name = variable["name"].as_str().unwrap().to_owned();
            let value = if let Some(value) = variable["value"].as_str() {
                value.to_owned()
            } else if let Some(field) = variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                match field {
                    "metadata.name" => self.name.clone(),
                    "metadata.namespace" => NAMESPACE.to_owned(),
                    "status.podIP" => self.ip.to_owned(),
                    other => panic!("{name}: fieldRef {other} is not resolved by this test"),
                }
            } else if let Some(secret) = variable["valueFrom"].get("secretKeyRef") {
                let (secret, key) = (secret["name"].as_str().unwrap(), secret["key"].as_str().unwrap());
                kubectl.secret_key(NAMESPACE, secret, key)
            } else {
                panic!("{name}: {variable} is not resolved by this test")
            };
            env.push((name, value));
        }
        env
    }

    /// Lays out every volumeMount of the container in `root` from the pod's volumes.
    fn mount_volumes(&self, root: &Path, kubectl: &Kubectl) {
        let volumes = self.spec()["volumes"].as_array().cloned().unwrap_or_default();
        for mount in self.container()["volumeMounts"].as_array().into_iter().flatten() {
            let name = mount["name"].as_str().unwrap();
            let volume = volumes.iter().find(|v| v["name"] == name).unwrap();
            let target = root.join(mount["mountPath"].as_str().unwrap().trim_start_matches('/'));
            std::fs::create_dir_all(&target).unwrap();
            if let Some(secret) = volume.get("secret") {
                let secret_name = secret["secretName"].as_str().unwrap();
                let mode = u32::try_from(secret["defaultMode"].as_u64().unwrap_or(0o644)).unwrap();
                let items = secret["items"].as_array().unwrap_or_else(|| panic!("{name}: list the items"));
                for item in items {
                    let (key, path) = (item["key"].as_str().unwrap(), item["path"].as_str().unwrap());
                    let contents = kubectl.secret_key(NAMESPACE, secret_name, key);
                    assert!(!contents.is_empty(), "{secret_name}/{key} is empty");
                    write_owned(&target.join(path), &contents, mode);
                }
            } else if volume.get("emptyDir").is_some() {
                // The kubelet makes an emptyDir world-writable (0777).
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o777)).unwrap();
            } else {
                panic!("volume {volume} is not laid out by this test");
            }
        }
    }

    /// The service-account files the kubelet mounts unless the pod (or its account) opts out.
    fn mount_service_account(&self, root: &Path, objects: &[Value]) -> bool {
        let account = find(objects, "ServiceAccount", self.spec()["serviceAccountName"].as_str().unwrap());
        let automount = self.spec()["automountServiceAccountToken"]
            .as_bool()
            .or(account["automountServiceAccountToken"].as_bool())
            .unwrap_or(true);
        if automount {
            let dir = root.join(SERVICE_ACCOUNT_DIR);
            std::fs::create_dir_all(&dir).unwrap();
            // Unused (KUBECONFIG wins, see the module docs) but present, as in the pod.
            write_owned(&dir.join("token"), "test-service-account-token", 0o644);
            write_owned(&dir.join("namespace"), NAMESPACE, 0o644);
            let ca = rcgen::generate_simple_self_signed(vec![APISERVER_NAME.to_owned()]).unwrap();
            write_owned(&dir.join("ca.crt"), &ca.cert.pem(), 0o644);
        }
        automount
    }

    /// The container's binary (the image's entrypoint) with exactly the rendered args.
    fn start(&self, root: &Path, network: &PodNetwork, env: &[(String, String)], log: PathBuf) -> Process {
        let container = self.container();
        assert!(container.get("command").is_none(), "the chart overrides the entrypoint: {container}");
        let binary = format!("/usr/local/bin/switchboard-{}", container["name"].as_str().unwrap());
        let args = strings(&container["args"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Process::spawn(in_root_in(Some(&network.netns), root, &binary, &args, &env), log)
    }
}

/// A file of a Secret volume: root-owned, the pod's fsGroup, the volume's mode.
fn write_owned(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents).unwrap();
    std::os::unix::fs::chown(path, Some(0), Some(FS_GROUP)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The device nodes every container runtime creates in the container's `/dev` (the OCI runtime
/// spec's default devices,
/// https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#default-devices):
/// name, major and minor number. Without `/dev/urandom`, the operator's hash maps panic
/// (getrandom's file fallback) once a gateway connects.
const DEFAULT_DEVICES: [(&str, &str, &str); 5] =
    [("null", "1", "3"), ("zero", "1", "5"), ("full", "1", "7"), ("random", "1", "8"), ("urandom", "1", "9")];

/// `/dev` in `root` with the runtime's default devices (mode 0666, as runc makes them).
fn make_devices(root: &Path) {
    let dev = root.join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    for (name, major, minor) in DEFAULT_DEVICES {
        let path = dev.join(name);
        run("mknod", &["-m", "0666", path.to_str().unwrap(), "c", major, minor]);
    }
}

/// `/etc/hosts` lines of a pod: its own name (as the kubelet writes it) and the peers.
fn hosts(pod: &Pod<'_>, stream_service: &str) -> String {
    format!(
        "{ip}\t{name}\n{OPERATOR_IP}\t{stream_service}\n{NODE_IP}\t{APISERVER_NAME}\n",
        ip = pod.ip,
        name = pod.name
    )
}

/// The admin port from the container's `admin` containerPort.
fn admin_port(pod: &Pod<'_>) -> u64 {
    let ports = pod.container()["ports"].as_array().unwrap();
    ports.iter().find(|p| p["name"] == "admin").unwrap()["containerPort"].as_u64().unwrap()
}

/// 200 from `url`, tolerating a refused connection (the process is still starting).
async fn answers_200(url: &str, address: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(address).await.is_ok() && send("GET", url, None, "").await.0 == 200
}

/// The chart rendered with `values`, its two Deployments run from `bin` (the static binaries):
/// the operator leads, the gateway gets its snapshot over the stream, and the gateway answers a
/// chat completion with the key the operator generated for the example VirtualKey.
pub fn rendered_deployments_serve(dir: &TempDir, bin: &Path, values: &[&str]) {
    // Like a kubelet: pods' network namespaces, device nodes, Secret files' owners (scripts/test
    // runs the suite as root in a network namespace of its own).
    assert!(running_as_root(), "this test needs root (CAP_NET_ADMIN, CAP_MKNOD, CAP_CHOWN)");
    let objects = render(values);
    let operator_name = format!("{RELEASE}-switchboard-operator");
    let gateway_name = format!("{RELEASE}-switchboard-gateway");
    let operator = Pod {
        deployment: find(&objects, "Deployment", &operator_name),
        name: format!("{operator_name}-5d8f7c9b6-x2x4q"),
        ip: OPERATOR_IP,
    };
    let gateway = Pod {
        deployment: find(&objects, "Deployment", &gateway_name),
        name: format!("{gateway_name}-7c4b9d8f5-k8m2p"),
        ip: GATEWAY_IP,
    };

    enter_node_network();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Built after entering the node's namespace: the API server's listener and thread are there.
    let options = switchboard_test_apiserver::Options {
        listen: SocketAddr::new(NODE_IP.parse().unwrap(), 0),
        ..Default::default()
    };
    let server = switchboard_test_apiserver::ApiServer::start(options).unwrap();
    let kubectl = Kubectl { kubeconfig: dir.0.join("kubeconfig"), cache: dir.0.join("kubectl-cache") };
    std::fs::write(&kubectl.kubeconfig, server.kubeconfig()).unwrap();

    // The release's namespace and its Secrets, as `helm install` creates them; the examples.
    let namespace = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n");
    let mut release =
        vec![serde_yaml_ng::to_string(&serde_yaml_ng::from_str::<Value>(&namespace).unwrap()).unwrap()];
    release.extend(
        objects.iter().filter(|o| o["kind"] == "Secret").map(|o| serde_yaml_ng::to_string(o).unwrap()),
    );
    let release_file = dir.0.join("release.yaml");
    std::fs::write(&release_file, release.join("---\n")).unwrap();
    kubectl.apply(&release_file);
    // The examples, in the first namespace the operator watches if it is limited to some.
    let watched = strings(&operator.container()["args"])
        .iter()
        .find_map(|a| a.strip_prefix("--namespace=").map(|n| n.split(',').next().unwrap().to_owned()))
        .unwrap_or_else(|| "switchboard-demo".to_owned());
    let examples = dir.0.join("examples");
    std::fs::create_dir_all(&examples).unwrap();
    for entry in std::fs::read_dir(repo_root().join("examples/kubernetes")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap().replace("switchboard-demo", &watched);
            std::fs::write(examples.join(path.file_name().unwrap()), text).unwrap();
        }
    }
    kubectl.apply(&examples);

    // The Service the gateway's --operator names.
    let stream_service = format!("{RELEASE}-switchboard-stream.{NAMESPACE}.svc");
    let gateway_args = strings(&gateway.container()["args"]);
    assert!(
        gateway_args.iter().any(|a| {
            ["http", "https"]
                .iter()
                .any(|scheme| a.starts_with(&format!("--operator={scheme}://{stream_service}:")))
        }),
        "the gateway connects elsewhere: {gateway_args:?}"
    );

    let mut processes = Vec::new();
    for pod in [&operator, &gateway] {
        let container = pod.container()["name"].as_str().unwrap().to_owned();
        let root = dir.0.join(format!("{container}-root"));
        distroless_root_at(
            &root,
            &bin.join(format!("switchboard-{container}")),
            &hosts(pod, &stream_service),
        );
        make_devices(&root);
        pod.mount_volumes(&root, &kubectl);
        let mut env = pod.env(&kubectl, server.addr());
        let token_mounted = pod.mount_service_account(&root, &objects);
        if container == "operator" {
            assert!(token_mounted, "the operator pod has no service-account token");
            let kubeconfig = switchboard_test_apiserver::kubeconfig(&format!(
                "http://{APISERVER_NAME}:{}",
                server.addr().port()
            ));
            let path = root.join(KUBECONFIG_PATH.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            write_owned(&path, &kubeconfig, 0o440);
            env.push(("KUBECONFIG".to_owned(), KUBECONFIG_PATH.to_owned()));
        } else {
            assert!(!token_mounted, "the gateway needs no API access, yet gets a token");
        }
        let network = PodNetwork::new(&container, pod.ip);
        let process = pod.start(&root, &network, &env, dir.0.join(format!("{container}.log")));
        processes.push((container, network, process));
    }
    let logs = || processes.iter().map(|(n, _, p)| format!("--- {n}:\n{}", p.log())).collect::<String>();

    runtime.block_on(async {
        let patience = Duration::from_secs(30);
        for pod in [&operator, &gateway] {
            let address = SocketAddr::new(pod.ip.parse().unwrap(), u16::try_from(admin_port(pod)).unwrap());
            let url = format!("http://{address}/readyz");
            let ready = eventually(patience, async || answers_200(&url, address).await).await;
            assert!(ready, "{} never ready at {url}\n{}", pod.name, logs());
        }
        let key = eventually_secret(&kubectl, &watched, patience)
            .await
            .unwrap_or_else(|| panic!("no key generated\n{}", logs()));
        let http = gateway.container()["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "http")
            .unwrap()["containerPort"]
            .as_u64()
            .unwrap();
        let url = format!("http://{GATEWAY_IP}:{http}/v1/chat/completions");
        let body = r#"{"model":"mock","messages":[{"role":"user","content":"hello"}]}"#;
        let mut answer = (0, String::new());
        let served = eventually(patience, async || {
            answer = send("POST", &url, Some(&key), body).await;
            answer.0 == 200
        })
        .await;
        assert!(served, "{answer:?}\n{}", logs());
        let reply: Value = serde_json::from_str(&answer.1).unwrap();
        assert_eq!(reply["object"], "chat.completion", "{reply}");
    });
    assert!(!logs().contains("panicked"), "{}", logs());
    drop(processes);
}

/// The key the operator generates into the example VirtualKey's Secret.
async fn eventually_secret(kubectl: &Kubectl, namespace: &str, patience: Duration) -> Option<String> {
    let mut key = None;
    eventually(patience, async || {
        let template = "go-template={{.data.key | base64decode}}";
        let output = kubectl.try_run(&["get", "secret", "ci-smoke-key", "-n", namespace, "-o", template]);
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        key = (output.status.success() && !text.is_empty()).then_some(text);
        key.is_some()
    })
    .await;
    key
}
