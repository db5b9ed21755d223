//! Command-line flags, parsed by hand: a handful of flags does not justify an argument-parsing
//! dependency and its build time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
switchboard-gateway: an OpenAI-compatible LLM gateway

USAGE:
  switchboard-gateway [serve] [OPTIONS]     serve the API (the default command)
  switchboard-gateway check FILE...         validate config files and exit
  switchboard-gateway hash-key              read a key on stdin, print its sha256: hash for a config

OPTIONS:
  --config FILE          config file (YAML or JSON), watched and hot-reloaded;
                         without it the embedded default config (a built-in mock model) is served
  --listen ADDR          API address [default: 127.0.0.1:8080]
  --admin-listen ADDR    /healthz, /readyz, /metrics address [default: 127.0.0.1:9090]
  --max-body-bytes N     largest request body accepted [default: 16777216]
  --drain-timeout SECS   on SIGTERM, how long in-flight requests may finish [default: 30]
  --threads N            runtime worker threads [default: number of CPUs]
  --log-level LEVEL      error, warn, info, debug or trace [default: info, or $SWITCHBOARD_LOG]
  --access-log           log one line per request (request id, route, key name, provider,
                         status, duration, tokens) at info level
  -h, --help             print this help
  -V, --version          print the version and the config schema versions it reads
";

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Serve(ServeOptions),
    Check(Vec<PathBuf>),
    HashKey,
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServeOptions {
    pub config: Option<PathBuf>,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub max_body_bytes: usize,
    pub drain_timeout: Duration,
    pub log_level: Option<String>,
    /// Worker threads; `None` means one per CPU.
    pub threads: Option<usize>,
    pub access_log: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            config: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            max_body_bytes: 16 * 1024 * 1024,
            drain_timeout: Duration::from_secs(30),
            log_level: None,
            threads: None,
            access_log: false,
        }
    }
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    match args.peek().map(String::as_str) {
        Some("check") => {
            args.next();
            let files: Vec<PathBuf> = args.map(PathBuf::from).collect();
            return if files.is_empty() {
                Err("check needs at least one FILE".into())
            } else {
                Ok(Command::Check(files))
            };
        }
        Some("hash-key") => return Ok(Command::HashKey),
        Some("serve") => {
            args.next();
        }
        _ => {}
    }
    let mut options = ServeOptions::default();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline.clone().or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--config" => options.config = Some(PathBuf::from(value("--config")?)),
            "--listen" => options.listen = parse_addr("--listen", &value("--listen")?)?,
            "--admin-listen" => {
                options.admin_listen = parse_addr("--admin-listen", &value("--admin-listen")?)?
            }
            "--max-body-bytes" => {
                options.max_body_bytes = value("--max-body-bytes")?
                    .parse()
                    .map_err(|_| "--max-body-bytes must be a number of bytes".to_owned())?;
            }
            "--drain-timeout" => {
                let secs: u64 = value("--drain-timeout")?
                    .parse()
                    .map_err(|_| "--drain-timeout must be whole seconds".to_owned())?;
                options.drain_timeout = Duration::from_secs(secs);
            }
            "--log-level" => options.log_level = Some(value("--log-level")?),
            "--access-log" => options.access_log = true,
            "--threads" => {
                let threads: usize = value("--threads")?
                    .parse()
                    .map_err(|_| "--threads must be a positive number".to_owned())?;
                if threads == 0 {
                    return Err("--threads must be at least 1".into());
                }
                options.threads = Some(threads);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Command::Serve(options))
}

fn parse_addr(flag: &str, text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| format!("{flag} must be an address like 127.0.0.1:8080, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_serve_flags_in_both_forms() {
        let Command::Serve(options) =
            parse(args(&["--config", "g.yaml", "--listen=0.0.0.0:1", "--drain-timeout", "5"])).unwrap()
        else {
            panic!("expected serve");
        };
        assert_eq!(options.config, Some(PathBuf::from("g.yaml")));
        assert_eq!(options.listen, "0.0.0.0:1".parse().unwrap());
        assert_eq!(options.drain_timeout, Duration::from_secs(5));
        assert_eq!(parse(args(&[])).unwrap(), Command::Serve(ServeOptions::default()));
    }

    #[test]
    fn subcommands_and_errors() {
        assert_eq!(parse(args(&["check", "a", "b"])).unwrap(), Command::Check(vec!["a".into(), "b".into()]));
        assert_eq!(parse(args(&["hash-key"])).unwrap(), Command::HashKey);
        assert!(parse(args(&["--listen", "nope"])).unwrap_err().contains("--listen"));
        assert!(parse(args(&["--wat"])).unwrap_err().contains("--wat"));
        assert!(parse(args(&["--config"])).is_err());
    }
}
