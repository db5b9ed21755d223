//! The `switchboard-mock-upstream` binary: argument parsing, the tokio runtime, the
//! `listening ADDR` handshake line on stdout, and serving until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use switchboard_mock_upstream::{MockUpstream, Options};

const USAGE: &str = "\
usage: switchboard-mock-upstream [--listen ADDR] [--threads N] [--api-key KEY]

A fake OpenAI-compatible upstream for Switchboard's tests and benchmarks.

  --listen ADDR    address to bind (default 127.0.0.1:0)
  --threads N      tokio worker threads (default 1)
  --api-key KEY    require `Authorization: Bearer KEY` on /v1/*
  -h, --help       print this help

Prints `listening IP:PORT` on stdout once bound; serves until SIGTERM or SIGINT.
Stats: GET /_mock/stats. Faults (from loopback peers only), answered 204 (400 if refused):
POST /_mock/fault {\"fault\":\"status\",\"status\":503,\"retry_after\":2} | {\"fault\":\"delay\",\"ms\":N}
  | {\"fault\":\"reset\"} | {\"fault\":\"stream_cut\",\"after_chunks\":N}
  | {\"fault\":\"slow_first_token\",\"ms\":N} | {\"fault\":\"none\"}, each optionally with
  \"one_in\":N (the 1st, N+1-th, ... request gets it).
";

struct Args {
    listen: SocketAddr,
    threads: usize,
    api_key: Option<String>,
}

/// `Ok(None)` means `--help` was requested.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args { listen: SocketAddr::from(([127, 0, 0, 1], 0)), threads: 1, api_key: None };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let mut value = || inline.clone().or_else(|| it.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let v = value()?;
                args.listen = v.parse().map_err(|e| format!("bad --listen {v:?}: {e}"))?;
            }
            "--threads" => {
                let v = value()?;
                args.threads = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("bad --threads {v:?}: want a positive integer")),
                };
            }
            "--api-key" => args.api_key = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

async fn serve(args: Args) -> std::io::Result<()> {
    let mock = MockUpstream::start_with(args.listen, Options { api_key: args.api_key, ..Options::default() })
        .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", mock.addr())?;
        out.flush()?;
    }
    wait_for_signal().await?;
    drop(mock);
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
            eprintln!("switchboard-mock-upstream: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("switchboard-mock-upstream: cannot build runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-mock-upstream: {e}");
            ExitCode::FAILURE
        }
    }
}
