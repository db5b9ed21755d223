//! A Redis Cluster made of [`RedisServer`]s.

use crate::{RedisServer, forward, redis_cli};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long `redis-cli --cluster create` may take. It checks whether the nodes have joined once a
/// second, so it usually takes 1 to 5 s; without a bound a join that never completes would hang
/// the test.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the nodes may take to agree that every slot is served, once the cluster is created.
const CLUSTER_OK_TIMEOUT: Duration = Duration::from_secs(10);
/// The wait between two looks at a node's cluster state.
const CLUSTER_OK_POLL: Duration = Duration::from_millis(20);

/// A Redis Cluster of N masters (no replicas) on loopback, each a [`RedisServer`] started with
/// cluster-enabled; killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3), creates the cluster with `redis-cli --cluster create
    /// ... --cluster-replicas 0 --cluster-yes`, and returns once every node reports
    /// `cluster_state:ok`.
    pub fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters, asked for {masters}");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                RedisServer::launch(
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        "5000",
                    ],
                    true,
                )
            })
            .collect();
        let addresses: Vec<String> = nodes.iter().map(|node| format!("127.0.0.1:{}", node.port())).collect();
        let report = create(&addresses);
        let cluster = RedisCluster { nodes };
        for node in &cluster.nodes {
            cluster.wait_ok(node, &report);
        }
        cluster
    }

    /// Waits until `node` reports `cluster_state:ok`, or panics with `create_report` (the output
    /// of `redis-cli --cluster create`) and the node's last `CLUSTER INFO`.
    fn wait_ok(&self, node: &RedisServer, create_report: &str) {
        // Polled: Redis announces no change of cluster state to clients (keyspace notifications
        // and pub/sub carry none), so the only way to know is to ask, briefly and boundedly.
        let deadline = Instant::now() + CLUSTER_OK_TIMEOUT;
        loop {
            let info = node.cli(&["CLUSTER", "INFO"]);
            if info.lines().any(|line| line.trim() == "cluster_state:ok") {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "node 127.0.0.1:{} did not report cluster_state:ok within {CLUSTER_OK_TIMEOUT:?}; \
                     CLUSTER INFO:\n{info}\n`redis-cli --cluster create` said:\n{create_report}",
                    node.port()
                );
            }
            std::thread::sleep(CLUSTER_OK_POLL);
        }
    }

    /// Every node's `redis://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// Runs a command with `redis-cli -c -p <first node>` (follows redirects), returns trimmed
    /// stdout as [`RedisServer::cli`] does.
    pub fn cli(&self, args: &[&str]) -> String {
        let first = self.nodes.first().map_or(0, RedisServer::port);
        redis_cli(&["-c", "-p", &first.to_string()], args)
    }
}

/// Runs `redis-cli --cluster create` on `addresses` and returns its output. It assigns the slots,
/// introduces the nodes to each other and waits until their configurations agree; a node may
/// still report `cluster_state:fail` right after (a master turns ok only 2 s after it started).
fn create(addresses: &[String]) -> String {
    let mut child = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run redis-cli (is Redis installed? it must be on PATH)");
    // The lines are read as they come, so that the deadline holds and a failure shows the
    // output; the channel disconnects when redis-cli has exited.
    let (lines, receiver) = mpsc::channel();
    forward(child.stdout.take().expect("redis-cli stdout is piped"), lines.clone());
    forward(child.stderr.take().expect("redis-cli stderr is piped"), lines);
    let deadline = Instant::now() + CREATE_TIMEOUT;
    let mut output = Vec::new();
    loop {
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => output.push(line),
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`redis-cli --cluster create {}` did not finish within {CREATE_TIMEOUT:?}; its output:\n{}",
                    addresses.join(" "),
                    output.join("\n")
                );
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().expect("wait for redis-cli");
    let output = output.join("\n");
    // Its closing check must pass too: uncovered slots are reported here, with the output that
    // explains them, rather than later as a cluster that never turns ok.
    if !status.success() || !output.contains("[OK] All 16384 slots covered") {
        panic!(
            "`redis-cli --cluster create {}` failed ({status}); its output:\n{output}",
            addresses.join(" ")
        );
    }
    output
}
