//! Harness for end-to-end tests: real `switchboard-gateway` processes on loopback ports, a small
//! HTTP client, and the cluster the operator tests run against ([`Cluster`]: the in-repo API
//! server, or the one `KUBECONFIG` names).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test harness: a failed step must abort the test with its context"
)]

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod cluster;
pub mod dockerfile;
mod operator;
pub mod tools;
pub use cluster::{Cluster, MANAGED_BY, kubectl_binary};
pub use operator::Operator;

/// A throwaway directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "switchboard-e2e-{}-{}",
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

/// A workspace binary: cargo puts them next to the `deps/` folder this test runs from.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(path.exists(), "{} not built: cargo build -p {name}", path.display());
    path
}

/// A running `switchboard-gateway` process.
pub struct Gateway {
    child: Child,
    pub api: SocketAddr,
    pub admin: SocketAddr,
    pub log_path: PathBuf,
    _dir: TempDir,
}

impl Gateway {
    pub fn start(args: &[&str]) -> Gateway {
        let dir = TempDir::new();
        let log_path = dir.0.join("gateway.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut child = Command::new(binary("switchboard-gateway"))
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("POD_NAME")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = |key: &str| -> SocketAddr {
            let Some(value) = line.split_whitespace().find_map(|w| w.strip_prefix(key)) else {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("gateway did not start; stdout {line:?}; log:\n{log}");
            };
            value.parse().unwrap()
        };
        let (api, admin) = (addr("api="), addr("admin="));
        Gateway { child, api, admin, log_path, _dir: dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends a request to the API port; returns the status and body.
    pub async fn call(&self, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
        send(method, &format!("http://{}{path}", self.api), key, body).await
    }

    /// Reads one sample from `/metrics` (exact series text before the value), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = send("GET", &format!("http://{}/metrics", self.admin), None, "").await;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    pub async fn ready(&self) -> bool {
        send("GET", &format!("http://{}/readyz", self.admin), None, "").await.0 == 200
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn send(method: &str, url: &str, key: Option<&str>, body: &str) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::builder().method(method).uri(url);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
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
