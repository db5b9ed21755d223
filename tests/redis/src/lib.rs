//! Throwaway real Redis servers for Switchboard's integration tests.
//!
//! Code that talks to Redis is tested against the real thing rather than a fake: each
//! [`RedisServer`] is a `redis-server` child process on a free loopback port with its data in a
//! temporary directory, and each [`RedisCluster`] is a few of them joined into a Redis Cluster.
//! Both are killed and their directories removed on drop, so a test that panics leaves nothing
//! behind. The installed `redis-server` and `redis-cli` (Redis 7) are found on `PATH`.
//!
//! Nothing here sleeps to wait for a server: a start returns when the server itself logs that it
//! is ready, and fails with the server's log when it exits or is not ready within 10 s.
//!
//! ```no_run
//! let server = switchboard_test_redis::RedisServer::start();
//! assert_eq!(server.cli(&["PING"]), "PONG");
//! let url = server.url(); // redis://127.0.0.1:PORT, for the code under test
//! ```

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failed start must abort the test with its context"
)]

mod cluster;

pub use cluster::RedisCluster;

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// What redis-server logs once it listens and has loaded its (empty) dataset.
const READY_LINE: &str = "Ready to accept connections";
/// How long a start may take before it is reported as failed; a healthy start takes milliseconds.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How many fresh ports a start tries: a port found free can be taken by another process before
/// redis-server binds it, and that is only worth another try, not a failed test.
const PORT_ATTEMPTS: usize = 5;
/// A cluster node also listens on its port plus this, for the cluster bus between nodes.
const CLUSTER_BUS_OFFSET: u16 = 10_000;
/// The highest port a cluster node may use, so that its bus port is a valid port too.
const MAX_CLUSTER_PORT: u16 = 55_000;

/// One redis-server child process on a loopback port, its data in a temp dir; killed on drop.
pub struct RedisServer {
    /// `None` between [`RedisServer::kill`] and [`RedisServer::restart`].
    child: Option<Child>,
    port: u16,
    /// The caller's extra arguments, kept so a restart runs the same server.
    args: Vec<String>,
    /// Dropped after the child is killed (fields drop after [`Drop::drop`] runs).
    dir: DataDir,
}

impl RedisServer {
    /// Starts a standalone server on a free 127.0.0.1 port (retrying with another port if the
    /// chosen one was taken meanwhile).
    pub fn start() -> RedisServer {
        Self::start_with(&[])
    }

    /// Same, with extra `redis-server` arguments (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(args: &[&str]) -> RedisServer {
        let cluster = args.contains(&"--cluster-enabled");
        Self::launch(args, cluster)
    }

    /// Starts a server with `args`; with `cluster`, on a port whose bus port is free too.
    fn launch(args: &[&str], cluster: bool) -> RedisServer {
        let args: Vec<String> = args.iter().map(|&arg| arg.to_owned()).collect();
        let dir = DataDir::new();
        let mut taken = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port(cluster);
            match spawn(port, &dir.0, &args) {
                Ok(child) => return RedisServer { child: Some(child), port, args, dir },
                Err(log) => {
                    taken.push(format!("port {port}:\n{log}"));
                    // A cluster node may have written its nodes.conf before it failed.
                    dir.empty();
                }
            }
        }
        panic!(
            "redis-server found its port taken {PORT_ATTEMPTS} times in a row; its logs:\n{}",
            taken.join("\n")
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, as a crash would) and waits for the process to be gone; the
    /// port is then refused. Does nothing when it is already killed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // An error here means it already exited; the wait below reaps it either way.
            let _ = child.kill();
            // Once reaped, the kernel has closed its sockets, so a connect is refused.
            child.wait().expect("wait for the killed redis-server");
        }
    }

    /// Starts it again on the same port with the same arguments (after [`RedisServer::kill`];
    /// a running server is killed first); empty dataset. Returns once ready.
    ///
    /// The data directory is kept, as on a machine that restarts after a crash: nothing is saved
    /// there, so the dataset is empty, but a cluster node finds its `nodes.conf` and rejoins its
    /// cluster with the same id and slots.
    pub fn restart(&mut self) {
        self.kill();
        match spawn(self.port, &self.dir.0, &self.args) {
            Ok(child) => self.child = Some(child),
            Err(log) => panic!(
                "redis-server could not restart: port {} (or a cluster node's bus port) was taken \
                 meanwhile; its log:\n{log}",
                self.port
            ),
        }
    }

    /// Runs a command through `redis-cli -p PORT` (each of `args` one argument, raw output:
    /// an error reply is its text, such as `NOAUTH Authentication required.`), returns trimmed
    /// stdout; panics with stderr on failure, such as a refused connection.
    pub fn cli(&self, args: &[&str]) -> String {
        redis_cli(&["-p", &self.port.to_string()], args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // No panics in a drop: it may run while a failed test unwinds.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One server's directory (`--dir`), removed on drop: also when a start fails and panics before
/// there is a [`RedisServer`] to drop.
struct DataDir(PathBuf);

impl DataDir {
    /// A new, empty directory under the system's temp dir, unique within this machine: the test
    /// process id and a counter.
    fn new() -> DataDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "switchboard-redis-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let dir = DataDir(dir);
        // A directory left by an earlier process with the same id must not leak its nodes.conf.
        dir.empty();
        dir
    }

    /// Removes everything in the directory.
    fn empty(&self) {
        let _ = std::fs::remove_dir_all(&self.0);
        std::fs::create_dir_all(&self.0).expect("create the redis-server data directory");
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that is free now (the kernel's pick); for a cluster node, one whose bus port
/// is free too. Another process may still take it before redis-server binds it: the caller
/// retries then.
fn free_port(cluster: bool) -> u16 {
    for _ in 0..100 {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port to find a free one");
        let port = listener.local_addr().expect("read the bound port").port();
        if !cluster {
            return port;
        }
        // The listener stays bound while the bus port is checked, so both are free at once.
        if port <= MAX_CLUSTER_PORT
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port + CLUSTER_BUS_OFFSET)).is_ok()
        {
            return port;
        }
    }
    panic!("found no loopback port P <= {MAX_CLUSTER_PORT} with P + {CLUSTER_BUS_OFFSET} free in 100 tries");
}

/// Starts redis-server on `port` and returns once it logs that it is ready. `Err` carries the log
/// of a server that exited because its port (or bus port) was already in use; any other failure
/// panics with the log.
fn spawn(port: u16, dir: &std::path::Path, args: &[String]) -> Result<Child, String> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        // No snapshots and no append-only file: a test's data lives only in memory.
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        // Log to stdout in the foreground, where the ready line is read from.
        .args(["--logfile", "", "--daemonize", "no"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-server (is Redis installed? it must be on PATH)");
    // Both streams go to one channel: the log is on stdout, but a bad argument is reported on
    // stderr. The channel disconnects when both are closed, that is when the server has exited.
    let (lines, receiver) = mpsc::channel();
    forward(child.stdout.take().expect("redis-server stdout is piped"), lines.clone());
    forward(child.stderr.take().expect("redis-server stderr is piped"), lines);

    let deadline = Instant::now() + START_TIMEOUT;
    let mut log = Vec::new();
    loop {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                let ready = line.contains(READY_LINE);
                log.push(line);
                if ready {
                    return Ok(child);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server on port {port} was not ready after {START_TIMEOUT:?}; its output:\n{}",
                    log.join("\n")
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().expect("wait for the exited redis-server");
                let log = log.join("\n");
                if log.contains("Address already in use") {
                    return Err(log);
                }
                panic!(
                    "redis-server on port {port} exited before it was ready ({status}); its output:\n{log}"
                );
            }
        }
    }
}

/// Sends each line of `stream` to `lines` from a thread of its own, until the stream closes.
fn forward(stream: impl Read + Send + 'static, lines: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        // Bytes, not `lines()`: a line that is not UTF-8 must not end the loop.
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            // Once the server is ready nobody receives and the send fails; the loop goes on
            // reading regardless, so the pipe never fills up and blocks the server's logging.
            let _ = lines.send(text);
            line.clear();
        }
    });
}

/// Runs `redis-cli` with `options` then `args`, and returns its trimmed stdout.
fn redis_cli(options: &[&str], args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-h", "127.0.0.1"])
        .args(options)
        // Raw output whatever stdout is: replies as their bare text, without `(integer)` and quotes.
        .arg("--raw")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli (is Redis installed? it must be on PATH)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "redis-cli {options:?} {args:?} failed ({}); stderr:\n{}stdout:\n{stdout}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retry in [`RedisServer::start`] depends on telling a taken port from other failures.
    #[test]
    fn a_taken_port_is_reported_for_a_retry() {
        let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = holder.local_addr().unwrap().port();
        let dir = DataDir::new();
        let log = spawn(port, &dir.0, &[]).unwrap_err();
        assert!(log.contains(&format!("{port}")), "{log}");
    }

    #[test]
    fn a_taken_cluster_bus_port_is_reported_for_a_retry() {
        let port = free_port(true);
        let _holder = TcpListener::bind((Ipv4Addr::LOCALHOST, port + CLUSTER_BUS_OFFSET)).unwrap();
        let dir = DataDir::new();
        let args = ["--cluster-enabled", "yes"].map(String::from);
        let log = spawn(port, &dir.0, &args).unwrap_err();
        assert!(log.contains(&format!("{}", port + CLUSTER_BUS_OFFSET)), "{log}");
    }
}
