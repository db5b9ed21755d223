//! The `switchboard-test-apiserver` binary: argument parsing, the `listening URL` handshake line
//! on stdout, an optional kubeconfig file for kubectl, and serving until SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use switchboard_test_apiserver::{ApiServer, Options};

const USAGE: &str = "\
usage: switchboard-test-apiserver [--listen ADDR] [--kubeconfig-out PATH] [--history N] [--no-crds] [--log-requests]

An in-memory subset of the Kubernetes API server with Switchboard's CRDs installed, for tests.

  --listen ADDR          address to bind (default 127.0.0.1:0)
  --kubeconfig-out PATH  write a kubeconfig for this server to PATH (for kubectl, kube clients)
  --history N            watch history length (default 10000); older resourceVersions get 410
  --no-crds              start without the CRDs; a client installs them
                         (kubectl apply --server-side -f crds/yaml/)
  --log-requests         log every request to stderr
  -h, --help             print this help

Prints `listening http://IP:PORT` on stdout once bound; serves until SIGTERM or SIGINT.
";

struct Args {
    options: Options,
    kubeconfig: Option<PathBuf>,
}

/// `Ok(None)` means `--help` was requested.
fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut args = Args { options: Options::default(), kubeconfig: None };
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value()?;
                args.options.listen =
                    v.parse::<SocketAddr>().map_err(|e| format!("bad --listen {v:?}: {e}"))?;
            }
            "--kubeconfig-out" => args.kubeconfig = Some(PathBuf::from(value()?)),
            "--history" => {
                let v = value()?;
                args.options.history = v.parse().map_err(|e| format!("bad --history {v:?}: {e}"))?;
            }
            "--log-requests" => args.options.log_requests = true,
            "--no-crds" => args.options.install_crds = false,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(args))
}

fn serve(args: Args) -> Result<(), switchboard_test_apiserver::Error> {
    let server = ApiServer::start(args.options)?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, server.kubeconfig())?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", server.url())?;
        out.flush()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(wait_for_signal())?;
    drop(server);
    Ok(())
}

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

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(None) => {
            let _ = std::io::stdout().lock().write_all(USAGE.as_bytes());
            ExitCode::SUCCESS
        }
        Ok(Some(args)) => match serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switchboard-test-apiserver: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("switchboard-test-apiserver: {e}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
