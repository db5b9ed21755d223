//! The system under test, all on loopback ephemeral ports: the test API server, one operator
//! (leading at once: it is alone) and N gateway replicas following its stream.

use crate::process::{Line, Process, parse_event};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long a process may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A `config applied` (gateway) or `snapshot published` (operator) log line.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// When the bench read the line.
    pub at: Instant,
    pub generation: u64,
    pub keys: u64,
}

/// One gateway replica's address and its stream of `config applied` lines. Kept apart from the
/// process so a task can own it while it waits for that replica.
pub struct Replica {
    pub name: String,
    pub api: SocketAddr,
    pub applied: UnboundedReceiver<Event>,
}

impl Replica {
    /// Drops lines already read: what happened before a change does not count for it.
    pub fn forget_pending(&mut self) {
        while self.applied.try_recv().is_ok() {}
    }
}

/// The running processes. Fields drop in order: gateways first, the API server last.
pub struct Stack {
    pub gateways: Vec<Process>,
    pub operator: Process,
    /// `http://ADDR` of the operator's `/metrics`.
    pub operator_admin: String,
    pub operator_published: UnboundedReceiver<Event>,
    stream: String,
    pub apiserver: Process,
    /// `http://127.0.0.1:PORT`
    pub apiserver_url: String,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    clock: Instant,
}

impl Stack {
    /// Starts the API server and the operator, and waits until the operator leads.
    pub async fn start(bin_dir: &Path, log_dir: &Path, clock: Instant) -> Result<Stack, String> {
        let binary = |name: &str| -> Result<PathBuf, String> {
            let path = bin_dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} not found (cargo build --release -p {name}, or --bin-dir)", path.display()))
            }
        };
        let kubeconfig = log_dir.join("kubeconfig");
        let mut command = Command::new(binary("switchboard-test-apiserver")?);
        command.args(["--listen", "127.0.0.1:0", "--kubeconfig-out"]).arg(&kubeconfig);
        let mut apiserver = Process::spawn("apiserver", command, log_dir, clock, drain())?;
        let apiserver_url = apiserver.wait_line("listening ", START_TIMEOUT).await?;

        let mut command = Command::new(binary("switchboard-operator")?);
        command
            .args(["run", "--stream-listen", "127.0.0.1:0", "--stream-insecure"])
            .args(["--admin-listen", "127.0.0.1:0", "--identity", "bench-operator", "--log-level", "info"])
            .env("KUBECONFIG", &kubeconfig)
            .env_remove("POD_NAME");
        let (lines, operator_published) = events("snapshot published");
        let mut operator = Process::spawn("operator", command, log_dir, clock, lines)?;
        let admin = operator.wait_line("admin listening admin=", START_TIMEOUT).await?;
        let stream = operator.wait_line("listening stream=", START_TIMEOUT).await?;
        // Make sure the gateway binary is there before any object is written.
        binary("switchboard-gateway")?;
        Ok(Stack {
            gateways: Vec::new(),
            operator,
            operator_admin: format!("http://{admin}"),
            operator_published,
            stream: format!("http://{stream}"),
            apiserver,
            apiserver_url,
            bin_dir: bin_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            clock,
        })
    }

    /// Starts gateway replica `index` following the operator.
    pub async fn start_gateway(&mut self, index: usize) -> Result<Replica, String> {
        let name = replica_name(index);
        let mut command = Command::new(self.bin_dir.join("switchboard-gateway"));
        command
            .args(["--operator", &self.stream, "--operator-insecure", "--replica-name", &name])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "info"])
            .env_remove("POD_NAME");
        let (lines, applied) = events("config applied");
        let mut process = Process::spawn(&name, command, &self.log_dir, self.clock, lines)?;
        let listening = process.wait_line("listening ", START_TIMEOUT).await?;
        let api = listening
            .split_whitespace()
            .find_map(|word| word.strip_prefix("api="))
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| format!("{name}: no api=ADDR in {listening:?}"))?;
        self.gateways.push(process);
        Ok(Replica { name, api, applied })
    }
}

/// The name replica `index` reports to the operator (`--replica-name`).
pub fn replica_name(index: usize) -> String {
    format!("gw-{index}")
}

/// A line sink whose lines nobody reads (the reader thread still drains the pipe).
fn drain() -> UnboundedSender<Line> {
    unbounded_channel().0
}

/// A line sink that keeps only log lines containing `marker`, parsed into [`Event`]s. The
/// filter runs on a small task of its own so the reader thread only timestamps and forwards.
fn events(marker: &'static str) -> (UnboundedSender<Line>, UnboundedReceiver<Event>) {
    let (lines, mut incoming) = unbounded_channel::<Line>();
    let (send, events) = unbounded_channel();
    tokio::spawn(async move {
        while let Some(line) = incoming.recv().await {
            if let Some((generation, keys)) = parse_event(&line.text, marker)
                && send.send(Event { at: line.at, generation, keys }).is_err()
            {
                return;
            }
        }
    });
    (lines, events)
}
