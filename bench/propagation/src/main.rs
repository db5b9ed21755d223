//! `switchboard-propagation`: how long a VirtualKey change takes from the API write to every
//! gateway replica serving it, and what it costs (bytes on each replica's stream, CPU, memory).
//! See bench/README.md, "Propagation", and `--help`.

mod args;
mod change;
mod cluster;
mod http;
mod metrics;
mod process;
mod report;
mod run;
mod stack;

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let args = args::Args::parse();
    match real_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("switchboard-propagation: {err}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: &args::Args) -> Result<(), String> {
    let clock = Instant::now();
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => own_dir()?,
    };
    let log_dir = args.log_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("switchboard-propagation-{}", std::process::id()))
    });
    std::fs::create_dir_all(&log_dir).map_err(|e| format!("{}: {e}", log_dir.display()))?;
    eprintln!("switchboard-propagation: process logs in {}", log_dir.display());
    // One thread: the bench mostly waits, and every core it leaves free goes to the system
    // under test. Log lines are timestamped on their reader threads, not here.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let report = runtime.block_on(async {
        // On Ctrl-C or SIGTERM the run future is dropped, and with it every child process.
        tokio::select! {
            report = run::run(args, &bin_dir, &log_dir, clock) => report,
            signal = interrupted() => Err(signal),
        }
    })?;
    if let Some(path) = &args.json {
        let mut text = serde_json::to_string_pretty(&report).map_err(|e| format!("results: {e}"))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report.summary().as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// The directory of this executable: cargo puts the workspace's binaries side by side.
fn own_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this executable: {e}"))?;
    exe.parent().map(PathBuf::from).ok_or_else(|| format!("{} has no directory", exe.display()))
}

/// Resolves on SIGINT or SIGTERM with a message saying which.
async fn interrupted() -> String {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted (SIGINT); every child process was stopped".to_owned(),
        _ = term.recv() => "terminated (SIGTERM); every child process was stopped".to_owned(),
    }
}
