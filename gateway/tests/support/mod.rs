//! Test harness: the real gateway binary on loopback ports, and a small HTTP client.
//!
//! Each test file uses part of it; it is declared `pub mod support` so unused helpers are not
//! dead code in any one test binary.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failed step must abort the test with its context"
)]

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use switchboard_gateway::auth::hash_key;

/// A throwaway directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Kubernetes ConfigMap or Secret volume as the kubelet writes it: each file `name` is a
/// symlink to `..data/name`, and `..data` a symlink to a timestamped directory holding the
/// contents. An update writes a new timestamped directory, renames a new `..data` symlink over the
/// old one (one atomic swap for every file), then deletes the old directory.
pub struct KubeVolume {
    pub dir: TempDir,
    version: AtomicU32,
}

impl KubeVolume {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let volume = KubeVolume { dir: TempDir::new(), version: AtomicU32::new(0) };
        volume.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), volume.path(name)).unwrap();
        }
        volume
    }

    /// The path a pod reads the file `name` at.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.0.join(name)
    }

    /// Replaces the contents of every file at once, as an update of the ConfigMap or Secret does.
    pub fn update(&self, files: &[(&str, &str)]) {
        let n = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        let version_dir = |n: u32| self.dir.0.join(format!("..2026_11_24_{n:04}"));
        std::fs::create_dir(version_dir(n)).unwrap();
        for (name, contents) in files {
            std::fs::write(version_dir(n).join(name), contents).unwrap();
        }
        let tmp_link = self.dir.0.join("..data_tmp");
        std::os::unix::fs::symlink(version_dir(n).file_name().unwrap(), &tmp_link).unwrap();
        std::fs::rename(&tmp_link, self.dir.0.join("..data")).unwrap();
        if n > 1 {
            std::fs::remove_dir_all(version_dir(n - 1)).unwrap();
        }
    }
}

/// A running `switchboard-gateway` process.
pub struct Gateway {
    child: Child,
    pub api: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// What the process wrote to stdout after its listening line.
    pub stdout_path: PathBuf,
    /// Holds the config file and nothing else: the gateway watches this directory, and its own
    /// log lines must not be events there.
    pub dir: TempDir,
    pub log_dir: TempDir,
}

impl Gateway {
    /// Starts the gateway on `config` (None: the embedded default) with extra flags.
    pub fn start(config: Option<&str>, extra_args: &[&str]) -> Gateway {
        Self::start_with_env(config, extra_args, &[])
    }

    /// [`Gateway::start`] with variables added to the gateway process's environment.
    pub fn start_with_env(config: Option<&str>, extra_args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let (dir, log_dir) = (TempDir::new(), TempDir::new());
        let config_path = dir.0.join("gateway.yaml");
        let log_path = log_dir.0.join("gateway.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"));
        command.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        if let Some(config) = config {
            std::fs::write(&config_path, config).unwrap();
            command.arg("--config").arg(&config_path);
        }
        command.args(extra_args);
        command.envs(env.iter().copied());
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = command.stdout(Stdio::piped()).stderr(log).spawn().expect("spawn the gateway binary");
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        // The rest of stdout (the access log) goes to a file, and the pipe stays open.
        let stdout_path = log_dir.0.join("stdout.log");
        let mut copy = std::fs::File::create(&stdout_path).unwrap();
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut copy));
        let addr = |key: &str| -> SocketAddr {
            let Some(value) = line.split_whitespace().find_map(|w| w.strip_prefix(key)) else {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("gateway did not start; stdout {line:?}; log:\n{log}");
            };
            value.parse().unwrap()
        };
        let (api, admin) = (addr("api="), addr("admin="));
        Gateway { child, api, admin, config_path, log_path, stdout_path, dir, log_dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Replaces the config file atomically (write a sibling, rename over), as editors and
    /// Kubernetes ConfigMap updates do.
    pub fn replace_config(&self, text: &str) {
        let tmp = self.dir.0.join(".gateway.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.config_path).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The access log so far: the JSON lines on stdout.
    pub fn access_log(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Reads one sample from `/metrics` (exact series text before the value), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let response = send("GET", &self.admin_url("/metrics"), &[], "").await;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// The sum of every series of metric `name` whose labels include each of `labels` (the
    /// usage metrics carry more labels than a test cares about).
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let response = send("GET", &self.admin_url("/metrics"), &[], "").await;
        let text = String::from_utf8_lossy(&response.body).into_owned();
        let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        text.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix('{'))
            .filter_map(|rest| rest.split_once("} "))
            .filter(|(set, _)| wanted.iter().all(|w| set.split(',').any(|pair| pair == w)))
            .map(|(_, value)| value.trim().parse::<f64>().unwrap())
            .sum()
    }

    /// Waits until `series` reads at least `value` and returns that reading, or `None` when
    /// `timeout` passes first. A counter that must not overshoot is checked on the returned
    /// reading: `assert_eq!(gateway.metric_reaches(s, 3.0, t).await, Some(3.0))`.
    pub async fn metric_reaches(&self, series: &str, value: f64, timeout: Duration) -> Option<f64> {
        let mut last = 0.0;
        let reached = eventually(timeout, async || {
            last = self.metric(series).await;
            last >= value
        })
        .await;
        reached.then_some(last)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A complete HTTP response.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the OpenAI error envelope and returns its `error` object.
    pub fn error(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert!(self.headers.contains_key("x-request-id"), "no x-request-id");
        assert_eq!(self.headers["content-type"], "application/json");
        let body = self.json();
        let error = body["error"].clone();
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
        assert!(error["type"].is_string(), "{body}");
        assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
        error
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::new(body.into())).unwrap()
}

/// Sends one request on a fresh client and reads the whole response.
pub async fn send(method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> TestResponse {
    send_with(&client(), method, url, headers, body).await
}

pub async fn send_with(
    client: &TestClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> TestResponse {
    let response = client.request(request(method, url, headers, body)).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    TestResponse { status: parts.status, headers: parts.headers, body }
}

/// Sends a request and returns the response with its body unread, for streams.
pub async fn open_stream(
    client: &TestClient,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> http::Response<Incoming> {
    client.request(request("POST", url, headers, body)).await.unwrap()
}

/// Reads the next data frame of a streaming body (None at the end).
pub async fn next_chunk(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = body.frame().await?.unwrap();
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

/// The `data:` payloads of an SSE body.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_owned))
        .collect()
}

pub fn bearer(key: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {key}"))
}

/// The `providers:` entry `anthropic` for an Anthropic mock started with the default options
/// (their key), on loopback.
pub fn anthropic_provider_yaml(mock: &switchboard_mock_providers::AnthropicMock) -> String {
    let key = switchboard_mock_providers::AnthropicOptions::default().api_key;
    mock_provider_yaml("anthropic", &format!("{}/v1", mock.base_url()), &key)
}

/// The `providers:` entry `gemini` for a Gemini mock started with the default options.
pub fn gemini_provider_yaml(mock: &switchboard_mock_providers::GeminiMock) -> String {
    let key = switchboard_mock_providers::GeminiOptions::default().api_key;
    mock_provider_yaml("gemini", &format!("{}/v1beta", mock.base_url()), &key)
}

/// A provider named after its type, at a mock on loopback.
fn mock_provider_yaml(kind: &str, base_url: &str, api_key: &str) -> String {
    format!(
        "  - name: {kind}\n    type: {kind}\n    base_url: {base_url}\n    api_key: {{ value: {api_key} }}\n    allow_private_network: true\n"
    )
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// Polls `check` every 10 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `tests/py/<script>` with `args` under SWITCHBOARD_PYTHON (what `scripts/test`
/// provisions); fails the test with the script's output and every gateway's log unless it exits
/// 0 having printed `marker`.
pub async fn run_python_check(script: &str, args: &[String], marker: &str, gateways: &[&Gateway]) {
    run_python(script, args, marker, gateways).await;
}

/// [`run_python_check`] without gateway logs, returning the script's stdout.
pub async fn python_output(script: &str, args: &[String], marker: &str) -> String {
    run_python(script, args, marker, &[]).await
}

async fn run_python(script: &str, args: &[String], marker: &str, gateways: &[&Gateway]) -> String {
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = tokio::process::Command::new(&python)
        .arg(repo_root().join("tests/py").join(script))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; run scripts/test, which provisions the Python clients")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || !stdout.contains(marker) {
        // The end of stdout says what went wrong; a scrape dump before it would bury it.
        let tail: Vec<&str> = stdout.lines().rev().take(40).collect();
        let logs: Vec<String> =
            gateways.iter().enumerate().map(|(i, g)| format!("gateway {i} log:\n{}", g.log())).collect();
        panic!(
            "{script} failed (SWITCHBOARD_PYTHON={python}; scripts/test provisions tests/py/requirements.txt):\n{}\n{}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&output.stderr),
            logs.join("\n")
        );
    }
    stdout
}
