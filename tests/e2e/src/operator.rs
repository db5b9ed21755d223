//! The real `switchboard-operator run` binary for one test's namespace, killed on drop.

use crate::{Cluster, TempDir, binary};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

pub struct Operator {
    child: Child,
    lines: Receiver<String>,
    /// `/healthz`, `/readyz`, `/metrics`.
    admin: String,
    log: PathBuf,
    /// The log's directory, when the operator made its own.
    _dir: Option<TempDir>,
}

impl Operator {
    /// Starts `switchboard-operator run` for the objects in `namespace` (every namespace on the
    /// in-repo server), its log in `dir`; it prints `listening stream=ADDR` once it leads.
    pub fn start(cluster: &Cluster, namespace: &str, dir: &Path, identity: &str, listen: &str) -> Operator {
        Operator::start_with(cluster, namespace, dir, identity, listen, &[])
    }

    /// As [`Operator::start`], with more flags.
    pub fn start_with(
        cluster: &Cluster,
        namespace: &str,
        dir: &Path,
        identity: &str,
        listen: &str,
        extra: &[&str],
    ) -> Operator {
        let log = dir.join(format!("{identity}.log"));
        // A 4 s Lease: short, as the failover test waits for it to expire, but long enough that a
        // leader starved of CPU (tests in parallel on a small machine) or slowed by a real
        // cluster keeps it. At 2 s, 1 run in 20 with four copies of this file in parallel saw
        // the standby take over from a leader that was still listening.
        let mut child = Command::new(binary("switchboard-operator"))
            .args(["run", "--stream-listen", listen, "--stream-insecure", "--identity", identity])
            .args(["--lease-duration", "4", "--admin-listen", "127.0.0.1:0"])
            .args(cluster.operator_scope(namespace))
            // A short grace period, so the test that stops a replica sees it leave the counts.
            .args(["--replica-grace", "2"])
            .args(extra)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("SWITCHBOARD_NAMESPACES")
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
        Operator { child, lines, admin, log, _dir: None }
    }

    /// Starts one operator with `extra` flags, its log in a directory of its own, and returns it
    /// with its stream URL once it leads (a test fails if it does not within `timeout`).
    pub fn leading_with(
        cluster: &Cluster,
        namespace: &str,
        extra: &[&str],
        timeout: Duration,
    ) -> (Operator, String) {
        let dir = TempDir::new();
        let mut operator = Operator::start_with(cluster, namespace, &dir.0, "op-0", "127.0.0.1:0", extra);
        operator._dir = Some(dir);
        match operator.leading(timeout) {
            Some(stream) => (operator, stream),
            None => panic!("the operator did not lead:\n{}", operator.log()),
        }
    }

    /// The stream URL once this operator leads (within `timeout`).
    pub fn leading(&self, timeout: Duration) -> Option<String> {
        let line = self.lines.recv_timeout(timeout).ok()?;
        line.trim().strip_prefix("listening stream=").map(|address| format!("http://{address}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn admin(&self, path: &str) -> (u16, String) {
        crate::send("GET", &format!("{}{path}", self.admin), None, "").await
    }

    /// One sample of an operator metric, 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = self.admin("/metrics").await.1;
        let value = text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned));
        value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
