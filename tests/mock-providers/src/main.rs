//! The `switchboard-mock-providers` binary, for manual use: starts the Anthropic and the Gemini
//! mock, prints `listening anthropic=ADDR gemini=ADDR` on stdout and serves until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use switchboard_mock_providers::{AnthropicMock, AnthropicOptions, GeminiMock, GeminiOptions};

const USAGE: &str = "\
usage: switchboard-mock-providers [OPTIONS]

Strict mock servers for the Anthropic Messages API and the Gemini / Vertex AI API
(behaviours are chosen by the model id; see tests/mock-providers/README.md).

  --anthropic ADDR        Anthropic mock address (default 127.0.0.1:0)
  --gemini ADDR           Gemini / Vertex mock address (default 127.0.0.1:0)
  --anthropic-key KEY     x-api-key the Anthropic mock requires (default sk-ant-mock-key)
  --azure-auth            Anthropic: also accept `api-key` and `Authorization: Bearer` (Foundry)
  --path-prefix PREFIX    Anthropic: serve under PREFIX/v1/messages (Foundry: /anthropic)
  --lenient-turns         Anthropic: combine consecutive same-role turns instead of refusing them
  --gemini-key KEY        Gemini API key (default gemini-mock-key)
  --vertex-token TOKEN    Vertex bearer token (default ya29.mock-access-token)
  --vertex-project ID     the only Vertex project accepted (default: any)
  --pace-ms N             delay between stream events (default 0)
  --threads N             tokio worker threads (default 1)
  -h, --help              print this help

Prints `listening anthropic=IP:PORT gemini=IP:PORT` on stdout once bound.
";

struct Args {
    anthropic_addr: SocketAddr,
    gemini_addr: SocketAddr,
    anthropic: AnthropicOptions,
    gemini: GeminiOptions,
    threads: usize,
}

/// `Ok(None)` means `--help` was requested.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut args = Args {
        anthropic_addr: loopback,
        gemini_addr: loopback,
        anthropic: AnthropicOptions::default(),
        gemini: GeminiOptions::default(),
        threads: 1,
    };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or(format!("{flag} needs a value"));
        let addr = |v: String| v.parse::<SocketAddr>().map_err(|e| format!("bad address {v:?}: {e}"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--anthropic" => args.anthropic_addr = addr(value()?)?,
            "--gemini" => args.gemini_addr = addr(value()?)?,
            "--anthropic-key" => args.anthropic.api_key = value()?,
            "--azure-auth" => args.anthropic.azure_auth = true,
            "--path-prefix" => args.anthropic.path_prefix = value()?,
            "--lenient-turns" => args.anthropic.strict_turns = false,
            "--gemini-key" => args.gemini.api_key = value()?,
            "--vertex-token" => args.gemini.access_token = value()?,
            "--vertex-project" => args.gemini.project = Some(value()?),
            "--pace-ms" => {
                let v = value()?;
                let ms = v.parse::<u64>().map_err(|_| format!("bad --pace-ms {v:?}"))?;
                args.anthropic.pace = Duration::from_millis(ms);
                args.gemini.pace = Duration::from_millis(ms);
            }
            "--threads" => {
                let v = value()?;
                args.threads = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("bad --threads {v:?}: want a positive integer")),
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let anthropic = AnthropicMock::start(args.anthropic_addr, args.anthropic).await?;
    let gemini = GeminiMock::start(args.gemini_addr, args.gemini).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening anthropic={} gemini={}", anthropic.addr(), gemini.addr())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    drop((anthropic, gemini));
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            let mut out = std::io::stdout().lock();
            return if out.write_all(USAGE.as_bytes()).and_then(|()| out.flush()).is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
        }
        Err(e) => {
            eprintln!("switchboard-mock-providers: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("switchboard-mock-providers: cannot build runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-mock-providers: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_flags() {
        let a = parse(&[
            "--anthropic",
            "127.0.0.1:9001",
            "--gemini=0.0.0.0:9002",
            "--azure-auth",
            "--pace-ms",
            "5",
            "--vertex-project",
            "p",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(a.anthropic_addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(a.gemini_addr, "0.0.0.0:9002".parse().unwrap());
        assert!(a.anthropic.azure_auth && a.anthropic.strict_turns);
        assert_eq!((a.anthropic.pace, a.gemini.pace), (Duration::from_millis(5), Duration::from_millis(5)));
        assert_eq!(a.gemini.project.as_deref(), Some("p"));
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--nope"]).is_err());
        assert!(parse(&["--threads", "0"]).is_err());
        assert!(parse(&["--gemini"]).is_err());
    }
}
