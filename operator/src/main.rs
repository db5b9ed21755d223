//! `switchboard-operator`: `run` (the controller and the snapshot stream) and `compile` (the same
//! compile on manifests, usable in CI before `kubectl apply`).

use clap::{Parser, Subcommand};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_operator::{Inputs, compile};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-operator",
    version,
    about = "Compiles Switchboard custom resources into the gateway config and pushes it to every gateway replica."
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Watch the cluster, compile on every change and push snapshots to the gateways.
    ///
    /// Connects to the API server as kubectl does (in-cluster service account, else
    /// $KUBECONFIG or ~/.kube/config). Run two replicas: they elect a leader with a Lease; the
    /// standby takes over when the leader dies (after --lease-duration) or shuts down (at once).
    Run(Box<RunArgs>),
    /// Print the snapshot and every object's status that manifests compile to.
    ///
    /// Reads LLMProvider, ModelRoute, VirtualKey, RateLimitPolicy and Secret manifests (multi-
    /// document YAML, as given to kubectl apply; other kinds are skipped). Exits 1 when an object
    /// is not accepted, or not served for a reason other than a key Secret still to be generated
    /// or a rate-limit policy that nothing references yet (NotEnforced: harmless, and usual while
    /// the routes or keys that will bind it are still being written).
    Compile {
        /// Print Secret values instead of <redacted>.
        #[arg(long)]
        show_secrets: bool,
        /// Manifest files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

/// Settings of `run`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Namespace to watch; repeat, or comma-separate, for several [default: every namespace].
    #[arg(
        long = "namespace",
        env = "SWITCHBOARD_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE"
    )]
    namespaces: Vec<String>,
    /// Address of the snapshot stream gateways connect to.
    #[arg(long, env = "SWITCHBOARD_STREAM_LISTEN", default_value = "0.0.0.0:8443", value_name = "ADDR")]
    stream_listen: SocketAddr,
    /// Address of /healthz, /readyz (ready only while leading) and /metrics.
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN", default_value = "0.0.0.0:9090", value_name = "ADDR")]
    admin_listen: SocketAddr,
    /// File holding the token gateways must present (a mounted Secret).
    #[arg(long, env = "SWITCHBOARD_STREAM_TOKEN_FILE", value_name = "FILE")]
    stream_token_file: Option<PathBuf>,
    /// PEM certificate chain of the stream's TLS listener.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT_FILE", value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// PEM private key of the stream's TLS listener.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY_FILE", value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,
    /// Serve the stream in plain text, without a token (tests and development only).
    #[arg(long, env = "SWITCHBOARD_STREAM_INSECURE")]
    stream_insecure: bool,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
    /// This operator's name [default: $POD_NAME, else the host name].
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    identity: Option<String>,
    /// Namespace of the leader-election Lease [default: $POD_NAMESPACE, else default].
    #[arg(long, env = "POD_NAMESPACE", default_value = "default", value_name = "NAMESPACE")]
    lease_namespace: String,
    /// Name of the leader-election Lease: operator replicas sharing it elect one leader.
    #[arg(long, env = "SWITCHBOARD_LEASE_NAME", default_value = "switchboard-operator", value_name = "NAME")]
    lease_name: String,
    /// Seconds a Lease stays valid without renewal (a standby takes over after this).
    #[arg(long, env = "SWITCHBOARD_LEASE_DURATION", default_value_t = 15, value_name = "SECS", value_parser = clap::value_parser!(u64).range(2..))]
    lease_duration: u64,
    /// Seconds a gateway replica whose stream ended still counts in Programmed (a restart or a
    /// reconnect to the next leader is not a change of the fleet).
    #[arg(long, env = "SWITCHBOARD_REPLICA_GRACE", default_value_t = 10, value_name = "SECS")]
    replica_grace: u64,
    /// Redis where the gateways count budgets: redis://host:6379 (rediss:// for TLS), or with
    /// --redis-cluster a comma-separated list of seed nodes. Each VirtualKey with a Redis budget
    /// then shows its spend in status.spend. The password comes from the
    /// SWITCHBOARD_REDIS_PASSWORD environment variable (never a flag: process lists show flags).
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", value_name = "URL", value_delimiter = ',')]
    redis_url: Vec<String>,
    /// The Redis URLs are seeds of a Redis Cluster.
    #[arg(long, env = "SWITCHBOARD_REDIS_CLUSTER", requires = "redis_url")]
    redis_cluster: bool,
    /// Prefix of the gateways' Redis keys (their --redis-prefix).
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", default_value = switchboard_config::counters::DEFAULT_PREFIX, value_name = "PREFIX")]
    redis_prefix: String,
    /// How long one Redis call may take before the round is given up (milliseconds).
    #[arg(long, env = "SWITCHBOARD_REDIS_TIMEOUT_MS", default_value_t = 500, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    redis_timeout_ms: u64,
    /// Seconds between two readings of every VirtualKey's spend from Redis.
    #[arg(long, env = "SWITCHBOARD_SPEND_INTERVAL", default_value_t = 10, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..))]
    spend_interval_seconds: u64,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Sub::Compile { show_secrets, files } => run_compile(&files, show_secrets),
        Sub::Run(args) => {
            let RunArgs {
                namespaces,
                stream_listen,
                admin_listen,
                stream_token_file,
                tls_cert_file,
                tls_key_file,
                stream_insecure,
                log_level,
                identity,
                lease_namespace,
                lease_name,
                lease_duration,
                replica_grace,
                redis_url,
                redis_cluster,
                redis_prefix,
                redis_timeout_ms,
                spend_interval_seconds,
            } = *args;
            let level = log_level.parse::<tracing::Level>().unwrap_or(tracing::Level::INFO);
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .init();
            let options = switchboard_operator::run::RunOptions {
                namespaces,
                stream_listen,
                admin_listen,
                stream_token_file,
                tls_cert_file,
                tls_key_file,
                stream_insecure,
                identity: identity.unwrap_or_else(host_name),
                lease_namespace,
                lease_name,
                // client-go's proportions: renew deadline 2/3 of the duration, retries at 2/15.
                lease_timing: switchboard_operator::lease::Timing {
                    lease_duration: std::time::Duration::from_secs(lease_duration),
                    renew_deadline: std::time::Duration::from_millis(lease_duration * 2000 / 3),
                    retry_period: std::time::Duration::from_millis((lease_duration * 2000 / 15).max(200)),
                },
                replica_grace: std::time::Duration::from_secs(replica_grace),
                spend: (!redis_url.is_empty()).then(|| switchboard_operator::spend::SpendSettings {
                    redis: switchboard_redis::RedisSettings {
                        urls: redis_url,
                        cluster: redis_cluster,
                        password: std::env::var("SWITCHBOARD_REDIS_PASSWORD").ok().filter(|p| !p.is_empty()),
                        timeout: std::time::Duration::from_millis(redis_timeout_ms),
                        prefix: redis_prefix,
                    },
                    interval: std::time::Duration::from_secs(spend_interval_seconds),
                }),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(err) => {
                    eprintln!("error: cannot start the runtime: {err}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(switchboard_operator::run::run(options)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("error: {message}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "switchboard-operator".into(), |h| h.trim().to_owned())
}

fn run_compile(files: &[PathBuf], show_secrets: bool) -> ExitCode {
    let mut inputs = Inputs { generation: 1, ..Inputs::default() };
    for file in files {
        let loaded =
            std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|t| inputs.add_yaml(&t));
        if let Err(err) = loaded {
            eprintln!("error: {}: {err}", file.display());
            return ExitCode::FAILURE;
        }
    }
    let compiled = compile(&inputs);
    let mut snapshot = serde_json::to_value(&compiled.snapshot).unwrap_or_default();
    if !show_secrets && let Some(secrets) = snapshot.get_mut("secrets").and_then(|s| s.as_object_mut()) {
        for value in secrets.values_mut() {
            *value = serde_json::Value::from("<redacted>");
        }
    }
    let report = serde_json::json!({
        "snapshot": snapshot,
        "statuses": compiled.statuses,
        "generate": compiled.generate,
    });
    match serde_yaml_ng::to_string(&report) {
        Ok(text) => print(&text),
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    }
    let healthy = compiled.statuses.iter().all(|s| {
        s.conditions.iter().all(|c| match c.type_.as_str() {
            "Accepted" => c.status == "True",
            "Programmed" => c.status != "False" || matches!(c.reason.as_str(), "NotEnforced" | "Pending"),
            _ => true,
        })
    });
    if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
