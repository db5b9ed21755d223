//! The `switchboard-gateway` binary: flags in, exit code out. Everything else is in the library.

use std::io::{Read, Write};
use std::process::ExitCode;
use switchboard_gateway::cli::{self, Command};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os()) {
        Ok(command) => command,
        // --help and --version land here too: clap prints them on stdout and exits 0; mistakes
        // go to stderr with the usage line and exit 2.
        Err(err) => err.exit(),
    };
    match command {
        Command::HashKey => hash_key(),
        Command::Check(files) => check(&files),
        Command::Serve(options) => serve(*options),
    }
}

fn serve(options: cli::ServeOptions) -> ExitCode {
    // clap already restricted the value to the five level names.
    let Ok(level) = options.log_level.parse::<tracing::Level>() else {
        eprintln!("error: unknown log level {:?} (error, warn, info, debug, trace)", options.log_level);
        return ExitCode::from(2);
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
    // One thread needs no work stealing: the current-thread scheduler skips the cross-thread
    // wakeups (futex calls) the multi-thread one pays for on every idle-to-busy transition.
    let mut builder = match options.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(switchboard_gateway::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Validates files with exactly the code the server uses to load them.
fn check(files: &[std::path::PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        match switchboard_gateway::reload::check_file(file) {
            Ok(summary) => write_stdout(&format!("{}: ok ({summary})\n", file.display())),
            Err(problems) => {
                ok = false;
                eprintln!("{}: invalid", file.display());
                for problem in problems {
                    eprintln!("  {problem}");
                }
            }
        };
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn hash_key() -> ExitCode {
    let mut key = String::new();
    if std::io::stdin().read_to_string(&mut key).is_err() || key.trim().is_empty() {
        eprintln!("error: write the key on stdin, e.g. printf %s \"$KEY\" | switchboard-gateway hash-key");
        return ExitCode::from(2);
    }
    write_stdout(&format!("{}\n", switchboard_gateway::auth::hash_key(key.trim())));
    ExitCode::SUCCESS
}

fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
