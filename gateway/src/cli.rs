//! Command-line flags, with an environment variable behind each serve flag (how a Kubernetes
//! Deployment sets them), parsed by clap so `--help` documents every one in the ecosystem's
//! usual form. The Helm chart uses the same names.

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Duration;

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(Box<ServeOptions>),
    Check(Vec<PathBuf>),
    HashKey,
}

/// The default budget of request-body bytes in memory: half the Helm chart's default memory
/// limit (512 MiB), leaving room for joining multi-chunk bodies, responses and the rest.
const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Settings of the `serve` command (the default).
#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Requests in flight on this replica, streams included.
    pub max_in_flight: usize,
    /// Request-body bytes this replica buffers at once.
    pub max_buffered_body_bytes: usize,
    /// The longest all attempts of one request may take together.
    pub request_deadline: Duration,
    pub drain_timeout: Duration,
    pub log_level: String,
    /// Worker threads; `None` means one per CPU.
    pub threads: Option<usize>,
    /// The access log, with the fraction of successful requests it keeps; `None`: off.
    pub access_log: Option<f64>,
    pub operator: Option<OperatorOptions>,
    /// Where redis-mode limits and budgets count and stored responses live (`--redis-url`);
    /// `None`: per replica.
    pub redis: Option<crate::limits::redis::RedisSettings>,
    /// Stored responses of the Responses API (`previous_response_id`).
    pub responses: crate::conversations::StoreLimits,
    /// Whether usage and cost metrics carry a `key` label (off for very many keys).
    pub key_metrics: bool,
    /// OpenTelemetry traces over OTLP; the standard `OTEL_*` variables are read at start
    /// (`telemetry::settings`).
    pub traces: crate::telemetry::TraceFlags,
}

/// Where the operator's snapshot stream is (`--operator`).
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorOptions {
    pub url: http::Uri,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub replica: Option<String>,
    pub snapshot_cache: Option<PathBuf>,
}

/// `--version` also states the config schema versions this build reads: what an operator needs
/// to know to send it a snapshot (the skew policy in docs/config.md).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let versions = switchboard_config::SUPPORTED_SCHEMA_VERSIONS;
    format!(
        "{} (config schema versions {} to {})",
        env!("CARGO_PKG_VERSION"),
        versions.start(),
        versions.end()
    )
});

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-gateway",
    about = "An OpenAI-compatible LLM gateway: one endpoint in front of every model provider.",
    long_about = None,
    version = VERSION.as_str(),
    args_conflicts_with_subcommands = true,
    after_help = "Without --config the embedded default config is served: a built-in mock model and the development key sk-switchboard-dev."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Serve the API (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Validate config files exactly as the server would load them, and exit.
    Check {
        /// Config files (YAML, or JSON for *.json).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Read a key on stdin and print its `sha256:` hash, the form a config stores.
    HashKey,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Config file (YAML or JSON), watched and hot-reloaded. Without it the embedded default
    /// config is served.
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address of the API (use 0.0.0.0:8080 in a container).
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "SWITCHBOARD_ADMIN_LISTEN", default_value = "127.0.0.1:9090", value_name = "ADDR")]
    admin_listen: SocketAddr,
    /// Largest request body accepted, in bytes (larger: 413).
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,
    /// Largest request head (request line and headers), in bytes (larger: 431).
    #[arg(long, env = "SWITCHBOARD_MAX_HEADER_BYTES", default_value_t = 64 * 1024, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(1024..=256 * 1024))]
    max_header_bytes: u32,
    /// Requests in flight on this replica, streams included (more: 503 with Retry-After).
    #[arg(long, env = "SWITCHBOARD_MAX_IN_FLIGHT", default_value_t = 10_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
    /// Request-body bytes this replica holds in memory at once, all requests together (more:
    /// 503 with Retry-After). Keep it well under the memory limit of the pod. [default: 256 MiB,
    /// or --max-body-bytes if that is larger]
    #[arg(long, env = "SWITCHBOARD_MAX_BUFFERED_BODY_BYTES", value_name = "BYTES")]
    max_buffered_body_bytes: Option<usize>,
    /// The longest one request's attempts may take together, over every fallback backend, in
    /// milliseconds (later: 504).
    #[arg(long, env = "SWITCHBOARD_REQUEST_DEADLINE_MS", default_value_t = 600_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    request_deadline_ms: u64,
    /// On SIGTERM, how long in-flight requests and streams may finish, in seconds.
    #[arg(long, env = "SWITCHBOARD_DRAIN_TIMEOUT", default_value_t = 30, value_name = "SECS")]
    drain_timeout: u64,
    /// Runtime worker threads [default: one per CPU]; 1 selects a current-thread runtime (least
    /// CPU per request on small pods).
    #[arg(long, env = "SWITCHBOARD_THREADS", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
    /// Log level: error, warn, info, debug or trace.
    #[arg(long, env = "SWITCHBOARD_LOG", default_value = "info", value_name = "LEVEL",
          value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: String,
    /// Write one JSON line per request on stdout (request id, key id, team, route, provider,
    /// attempts, status, error type, tokens, cost, latency, time to first token).
    #[arg(long, env = "SWITCHBOARD_ACCESS_LOG")]
    access_log: bool,
    /// The fraction (0 to 1) of successful requests the access log keeps; errors (status 400
    /// and up) are always written.
    #[arg(long, env = "SWITCHBOARD_ACCESS_LOG_SAMPLE", default_value_t = 1.0, value_name = "FRACTION",
          value_parser = parse_fraction, requires = "access_log")]
    access_log_sample: f64,
    /// Follow the operator's snapshot stream at this URL (https://...) instead of a config file.
    #[arg(long, env = "SWITCHBOARD_OPERATOR", value_name = "URL", conflicts_with = "config")]
    operator: Option<http::Uri>,
    /// File holding the stream token (a mounted Secret), sent to the operator.
    #[arg(long, env = "SWITCHBOARD_OPERATOR_TOKEN_FILE", value_name = "FILE", requires = "operator")]
    operator_token_file: Option<PathBuf>,
    /// PEM file with the CA that signed the operator's certificate [default: the system roots].
    #[arg(long, env = "SWITCHBOARD_OPERATOR_CA_FILE", value_name = "FILE", requires = "operator")]
    operator_ca_file: Option<PathBuf>,
    /// Allow a plain-text http:// operator URL (tests and development only).
    #[arg(long, env = "SWITCHBOARD_OPERATOR_INSECURE", requires = "operator")]
    operator_insecure: bool,
    /// This replica's name in the operator's status [default: $POD_NAME, else the host name].
    #[arg(long, env = "POD_NAME", value_name = "NAME")]
    replica_name: Option<String>,
    /// Keep the last applied snapshot in this file (mode 0600; an emptyDir in Kubernetes) and
    /// start from it when the operator cannot be reached.
    #[arg(long, env = "SWITCHBOARD_SNAPSHOT_CACHE", value_name = "FILE", requires = "operator")]
    snapshot_cache: Option<PathBuf>,
    /// Redis for fleet-wide limits, budgets and stored responses: redis://host:6379 (rediss:// for TLS), or with
    /// --redis-cluster a comma-separated list of seed nodes. The password comes from the
    /// SWITCHBOARD_REDIS_PASSWORD environment variable (never a flag: process lists show flags).
    #[arg(long, env = "SWITCHBOARD_REDIS_URL", value_name = "URL", value_delimiter = ',')]
    redis_url: Vec<String>,
    /// The Redis URLs are seeds of a Redis Cluster.
    #[arg(long, env = "SWITCHBOARD_REDIS_CLUSTER", requires = "redis_url")]
    redis_cluster: bool,
    /// How long a Redis call may take before the policy's failureMode decides (milliseconds).
    #[arg(long, env = "SWITCHBOARD_REDIS_TIMEOUT_MS", default_value_t = 100, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    redis_timeout_ms: u64,
    /// Prefix of every Redis key the gateway writes (to share one Redis between fleets).
    #[arg(long, env = "SWITCHBOARD_REDIS_PREFIX", default_value = switchboard_config::counters::DEFAULT_PREFIX, value_name = "PREFIX")]
    redis_prefix: String,
    /// Leave the `key` label out of usage and cost metrics (one series per key and route adds
    /// up with tens of thousands of keys); team, route and provider remain.
    #[arg(long, env = "SWITCHBOARD_NO_KEY_METRICS")]
    no_key_metrics: bool,
    /// How long a stored response of the Responses API is kept, for `previous_response_id` and
    /// retrieval (seconds; OpenAI keeps them 30 days).
    #[arg(long, env = "SWITCHBOARD_RESPONSES_TTL_SECONDS", default_value_t = 30 * 24 * 3600, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    responses_ttl_seconds: u64,
    /// Without Redis: the most bytes stored responses may take in this replica's memory (the
    /// oldest go first).
    #[arg(long, env = "SWITCHBOARD_RESPONSES_MEMORY_BYTES", default_value_t = 64 << 20, value_name = "BYTES")]
    responses_memory_bytes: usize,
    /// The longest conversation (stored items, in bytes) that `previous_response_id` continues;
    /// beyond it the client is told to start a new one.
    #[arg(long, env = "SWITCHBOARD_RESPONSES_MAX_CONVERSATION_BYTES", default_value_t = 4 << 20, value_name = "BYTES")]
    responses_max_conversation_bytes: usize,
    /// Export OpenTelemetry traces over OTLP to this collector base URL (http://host:4317 for
    /// gRPC, http://host:4318 for HTTP) [default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_ENDPOINT; with none of them tracing is off].
    #[arg(long, env = "SWITCHBOARD_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// OTLP transport: grpc or http/protobuf [default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    /// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf].
    #[arg(long, env = "SWITCHBOARD_OTLP_PROTOCOL", value_name = "PROTOCOL", value_parser = ["grpc", "http/protobuf"])]
    otlp_protocol: Option<String>,
    /// Record prompts and completions in trace spans (gen_ai.input.messages,
    /// gen_ai.output.messages); also OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true.
    #[arg(long, env = "SWITCHBOARD_OTLP_CAPTURE_CONTENT")]
    otlp_capture_content: bool,
}

impl TryFrom<ServeArgs> for ServeOptions {
    type Error = String;

    fn try_from(args: ServeArgs) -> Result<Self, String> {
        let operator = match args.operator {
            None => None,
            Some(url) => {
                match url.scheme_str() {
                    Some("https") => {}
                    Some("http") if args.operator_insecure => {}
                    Some("http") => {
                        return Err("--operator http:// is plain text: use https://, or --operator-insecure for tests and development".into());
                    }
                    _ => return Err("--operator must be an https:// URL".into()),
                }
                if url.host().is_none() {
                    return Err("--operator URL has no host".into());
                }
                Some(OperatorOptions {
                    url,
                    token_file: args.operator_token_file,
                    ca_file: args.operator_ca_file,
                    replica: args.replica_name,
                    snapshot_cache: args.snapshot_cache,
                })
            }
        };
        let redis = (!args.redis_url.is_empty()).then(|| crate::limits::redis::RedisSettings {
            urls: args.redis_url,
            cluster: args.redis_cluster,
            password: std::env::var("SWITCHBOARD_REDIS_PASSWORD").ok().filter(|p| !p.is_empty()),
            timeout: Duration::from_millis(args.redis_timeout_ms),
            prefix: args.redis_prefix,
        });
        if redis.as_ref().is_some_and(|r| r.prefix.is_empty() || r.prefix.contains(['{', '}', ' '])) {
            return Err("--redis-prefix must be non-empty without braces or spaces".into());
        }
        let max_buffered_body_bytes =
            args.max_buffered_body_bytes.unwrap_or(DEFAULT_MAX_BUFFERED_BODY_BYTES.max(args.max_body_bytes));
        if max_buffered_body_bytes < args.max_body_bytes {
            // A body the size limit allows could then never be read: every such request a 503.
            return Err("--max-buffered-body-bytes must be at least --max-body-bytes".into());
        }
        Ok(ServeOptions {
            config: args.config,
            listen: args.listen,
            admin_listen: args.admin_listen,
            max_body_bytes: args.max_body_bytes,
            max_header_bytes: args.max_header_bytes as usize,
            max_in_flight: args.max_in_flight as usize,
            max_buffered_body_bytes,
            request_deadline: Duration::from_millis(args.request_deadline_ms),
            drain_timeout: Duration::from_secs(args.drain_timeout),
            log_level: args.log_level,
            threads: args.threads.map(usize::from),
            access_log: args.access_log.then_some(args.access_log_sample),
            operator,
            redis,
            key_metrics: !args.no_key_metrics,
            traces: crate::telemetry::TraceFlags {
                endpoint: args.otlp_endpoint,
                protocol: args.otlp_protocol,
                capture_content: args.otlp_capture_content,
            },
            responses: crate::conversations::StoreLimits {
                ttl: Duration::from_secs(args.responses_ttl_seconds),
                memory_bytes: args.responses_memory_bytes,
                max_conversation_bytes: args.responses_max_conversation_bytes,
            },
        })
    }
}

/// Parses arguments (the program name first). `--help`, `--version` and mistakes come back as
/// a clap error whose `exit()` prints them the usual way (help on stdout, errors on stderr, 2).
pub fn parse<I, T>(args: I) -> Result<Command, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    let serve = |args: ServeArgs| {
        ServeOptions::try_from(args)
            .map(|options| Command::Serve(Box::new(options)))
            .map_err(|message| Cli::command().error(clap::error::ErrorKind::ValueValidation, message))
    };
    Ok(match cli.command {
        None => serve(cli.serve)?,
        Some(Sub::Serve(args)) => serve(*args)?,
        Some(Sub::Check { files }) => Command::Check(files),
        Some(Sub::HashKey) => Command::HashKey,
    })
}

/// A number from 0 to 1.
fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(list: &[&str]) -> Result<Command, clap::Error> {
        parse(std::iter::once("switchboard-gateway").chain(list.iter().copied()))
    }

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_plain_text_operator_needs_the_insecure_flag() {
        let err = parse_args(&["--operator", "http://op:8443"]).unwrap_err().to_string();
        assert!(err.contains("--operator-insecure"), "{err}");
        let Command::Serve(options) =
            parse_args(&["--operator", "http://op:8443", "--operator-insecure"]).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(options.operator.unwrap().url, "http://op:8443".parse::<http::Uri>().unwrap());
        assert!(parse_args(&["--operator", "https://op", "--config", "x.yaml"]).is_err(), "one source only");
        assert!(parse_args(&["--operator-insecure"]).is_err(), "needs --operator");
    }

    #[test]
    fn parses_serve_flags_in_both_forms() {
        let Command::Serve(options) =
            parse_args(&["--config", "g.yaml", "--listen=0.0.0.0:1", "--drain-timeout", "5"]).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(options.config, Some(PathBuf::from("g.yaml")));
        assert_eq!(options.listen, "0.0.0.0:1".parse().unwrap());
        assert_eq!(options.drain_timeout, Duration::from_secs(5));
        let Command::Serve(explicit) = parse_args(&["serve", "--threads", "1"]).unwrap() else {
            panic!("expected serve");
        };
        assert_eq!(explicit.threads, Some(1));
        assert_eq!(
            (explicit.max_header_bytes, explicit.max_in_flight, explicit.request_deadline),
            (64 * 1024, 10_000, Duration::from_secs(600)),
            "the edge's defaults"
        );
        assert_eq!(explicit.max_buffered_body_bytes, 256 * 1024 * 1024);
        let Command::Serve(big) = parse_args(&["--max-body-bytes", "536870912"]).unwrap() else {
            panic!("expected serve");
        };
        assert_eq!(big.max_buffered_body_bytes, 536_870_912, "the budget takes at least one largest body");
    }

    #[test]
    fn subcommands_and_errors() {
        assert_eq!(parse_args(&["check", "a", "b"]).unwrap(), Command::Check(vec!["a".into(), "b".into()]));
        assert_eq!(parse_args(&["hash-key"]).unwrap(), Command::HashKey);
        assert!(parse_args(&["--listen", "nope"]).unwrap_err().to_string().contains("--listen"));
        assert!(parse_args(&["--wat"]).unwrap_err().to_string().contains("--wat"));
        assert!(parse_args(&["--config"]).is_err());
        assert!(parse_args(&["--threads", "0"]).is_err());
        assert!(parse_args(&["check"]).is_err(), "check needs a file");
        assert!(parse_args(&["--log-level", "loud"]).is_err());
        assert!(parse_args(&["--max-header-bytes", "100"]).is_err(), "below hyper's useful minimum");
        assert!(parse_args(&["--max-in-flight", "0"]).is_err());
        assert!(parse_args(&["--request-deadline-ms", "0"]).is_err());
        let err = parse_args(&["--max-body-bytes", "2000", "--max-buffered-body-bytes", "1999"]).unwrap_err();
        assert!(err.to_string().contains("--max-buffered-body-bytes"), "{err}");
    }
}
