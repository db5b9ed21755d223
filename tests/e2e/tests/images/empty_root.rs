//! The static binaries in a root directory that holds only what gcr.io/distroless/static-debian12
//! does (no libc, no loader, no shell), entered with `unshare --root` with no environment and, when
//! the test runs as root, as distroless's `nonroot` user (65532), like the image.
//!
//! Names are resolved through the root's own `/etc/hosts` (as the container runtime writes it),
//! under made-up names rather than `localhost`, so a passing test shows glibc's built-in files
//! module read that file.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helper: a failed step must abort the test with its context"
)]

use sha2::Digest;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use switchboard_e2e::{TempDir, send};
use switchboard_mock_upstream::{MockUpstream, Options};

/// distroless/static's user database and name-service configuration
/// (https://github.com/GoogleContainerTools/distroless: base/base.bzl, static/nsswitch.conf);
/// the `hosts: files dns` line is what decides resolution.
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";
const NSSWITCH: &str = "passwd: compat\ngroup: compat\nshadow: compat\nhosts: files dns\nnetworks: files\nprotocols: db files\nservices: db files\n";
/// Where distroless keeps the CA bundle (its SSL_CERT_FILE), which rustls-native-certs finds.
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// The names the binaries reach their peers by, in the root's /etc/hosts.
const UPSTREAM_HOST: &str = "upstream.switchboard.test";
const APISERVER_HOST: &str = "apiserver.switchboard.test";
/// distroless's nonroot user and group: the image's USER and the chart's runAsUser.
const NONROOT: &str = "65532";

/// `dir/root`, laid out like distroless/static, with `binary` in /usr/local/bin.
fn distroless_root(dir: &TempDir, binary: &Path) -> PathBuf {
    let root = dir.0.join("root");
    let peers = format!("127.0.0.1\t{UPSTREAM_HOST} {APISERVER_HOST}\n");
    distroless_root_at(&root, binary, &peers);
    root
}

/// `root`, laid out like distroless/static, with `binary` in /usr/local/bin and `peers` (lines
/// of `/etc/hosts`) after the runtime's own entries.
pub fn distroless_root_at(root: &Path, binary: &Path, peers: &str) {
    for sub in ["etc/ssl/certs", "etc/switchboard", "tmp", "home/nonroot", "usr/local/bin"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(root.join("etc/group"), GROUP).unwrap();
    std::fs::write(root.join("etc/nsswitch.conf"), NSSWITCH).unwrap();
    // The container runtime writes /etc/hosts into every container; ours also names the peers.
    let hosts = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{peers}");
    std::fs::write(root.join("etc/hosts"), hosts).unwrap();
    // One self-signed CA stands in for Debian's bundle: what matters is that it is found.
    let ca = rcgen::generate_simple_self_signed(vec!["ca.switchboard.test".to_owned()]).unwrap();
    std::fs::write(root.join(CA_BUNDLE), ca.cert.pem()).unwrap();
    let name = binary.file_name().unwrap();
    std::fs::copy(binary, root.join("usr/local/bin").join(name)).unwrap();
}

pub fn on_path(program: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(program)).find(|c| c.is_file()))
        .unwrap_or_else(|| panic!("{program} not on PATH (util-linux)"))
}

/// Whether this process is root: the owner of `/proc/self` is the effective user.
pub fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// `program` (a path inside `root`) with `args`, chrooted into `root`, no environment but `env`.
fn in_root(root: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    in_root_in(None, root, program, args, env)
}

/// [`in_root`] in the network namespace `netns` (a `/proc/PID/ns/net` path) if given.
pub fn in_root_in(
    netns: Option<&Path>,
    root: &Path,
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Command {
    let mut command = match netns {
        Some(netns) => {
            let mut enter = Command::new(on_path("nsenter"));
            enter.arg(format!("--net={}", netns.display())).arg(on_path("unshare"));
            enter
        }
        None => Command::new(on_path("unshare")),
    };
    command.arg("--root").arg(root);
    if running_as_root() {
        command.args(["--setgid", NONROOT, "--setuid", NONROOT]);
    } else {
        // Without root, a user namespace grants the chroot (as its root, not as 65532).
        command.arg("--map-root-user");
    }
    command.arg(program).args(args).env_clear().envs(env.iter().copied());
    command
}

/// A child process killed on drop, its stdout read line by line on a thread.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
}

impl Process {
    pub fn spawn(mut command: Command, log: PathBuf) -> Process {
        let mut child =
            command.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The next stdout line starting with `prefix`, within `timeout`.
    pub fn line_starting(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => {
                    panic!("no stdout line starting {prefix:?} within {timeout:?}; log:\n{}", self.log())
                }
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn address_after(line: &str, key: &str) -> SocketAddr {
    let value = line.split_whitespace().find_map(|w| w.strip_prefix(key));
    value.unwrap_or_else(|| panic!("no {key} in {line:?}")).parse().unwrap()
}

/// `--version` with nothing around it: no environment, no libraries, as the image's user.
fn version_runs(root: &Path, program: &str) {
    let output = in_root(root, program, &["--version"], &[]).output().unwrap();
    let stdout =
        switchboard_e2e::tools::succeeded(&format!("{program} --version in the empty root"), &output);
    assert!(stdout.starts_with(program.rsplit('/').next().unwrap()), "{stdout}");
}

/// The gateway, configured with an OpenAI-compatible provider at `http://UPSTREAM_HOST:PORT`,
/// answers a chat completion through the mock upstream.
pub async fn gateway_serves_through_a_named_upstream(dir: &TempDir, binary: &Path) {
    const KEY: &str = "sk-static-image";
    const UPSTREAM_KEY: &str = "sk-upstream";
    let root = distroless_root(dir, binary);
    let program = "/usr/local/bin/switchboard-gateway";
    version_runs(&root, program);

    let options = Options { api_key: Some(UPSTREAM_KEY.to_owned()), ..Options::default() };
    let upstream = MockUpstream::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), options).await.unwrap();
    let hash = switchboard_config::hash_key(&sha2::Sha256::digest(KEY).into()).0;
    let config = format!(
        "version: 1
providers:
  - name: upstream
    type: openai
    base_url: http://{UPSTREAM_HOST}:{port}/v1
    api_key: {{ value: {UPSTREAM_KEY} }}
routes:
  - model: gpt
    backends: [{{ provider: upstream, model: gpt-upstream }}]
keys:
  - name: client
    hash: {hash}
",
        port = upstream.addr().port()
    );
    std::fs::write(root.join("etc/switchboard/config.yaml"), config).unwrap();
    let args = ["serve", "--config", "/etc/switchboard/config.yaml"];
    let listen = ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"];
    let command = in_root(&root, program, &[&args[..], &listen[..]].concat(), &[]);
    let gateway = Process::spawn(command, dir.0.join("gateway.log"));
    let line = gateway.line_starting("", Duration::from_secs(30));
    let api = address_after(&line, "api=");

    let body = r#"{"model":"gpt","messages":[{"role":"user","content":"hello"}]}"#;
    let (status, answer) = send("POST", &format!("http://{api}/v1/chat/completions"), Some(KEY), body).await;
    assert_eq!(status, 200, "{answer}\ngateway log:\n{}", gateway.log());
    let request = upstream.last_request().unwrap();
    assert_eq!(request.body["model"], "gpt-upstream", "the upstream got {}", request.body);
    // The CA bundle at distroless's path was found: no fallback to the compiled-in roots.
    assert!(!gateway.log().contains("no system root certificates"), "{}", gateway.log());
}

/// The operator, given a kubeconfig naming `http://APISERVER_HOST:PORT` (the in-repo API server),
/// takes the Lease and opens its stream: the kube client, TLS setup and leader election all run.
pub async fn operator_leads_through_a_named_api_server(dir: &TempDir, binary: &Path) {
    let root = distroless_root(dir, binary);
    let program = "/usr/local/bin/switchboard-operator";
    version_runs(&root, program);

    let server = switchboard_test_apiserver::ApiServer::start(Default::default()).unwrap();
    let url = format!("http://{APISERVER_HOST}:{}", server.addr().port());
    std::fs::write(root.join("etc/switchboard/kubeconfig"), switchboard_test_apiserver::kubeconfig(&url))
        .unwrap();
    let args =
        ["run", "--stream-listen", "127.0.0.1:0", "--stream-insecure", "--admin-listen", "127.0.0.1:0"];
    let lease = ["--identity", "static-image", "--lease-duration", "4"];
    let env = [("KUBECONFIG", "/etc/switchboard/kubeconfig")];
    let command = in_root(&root, program, &[&args[..], &lease[..]].concat(), &env);
    let operator = Process::spawn(command, dir.0.join("operator.log"));
    let admin = address_after(&operator.line_starting("admin listening", Duration::from_secs(30)), "admin=");
    operator.line_starting("listening stream=", Duration::from_secs(30));
    let (status, body) = send("GET", &format!("http://{admin}/readyz"), None, "").await;
    assert_eq!(status, 200, "{body}\noperator log:\n{}", operator.log());
}
