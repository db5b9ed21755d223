//! `switchboard-loadgen` binary: see `--help`.

use std::io::Write as _;
use std::process::ExitCode;

use bytes::Bytes;
use switchboard_loadgen::args::{Args, BodySpec, Command, USAGE, parse_args};
use switchboard_loadgen::{Error, run};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            return match writeln!(std::io::stdout().lock(), "{USAGE}") {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::FAILURE,
            };
        }
        Err(e) => {
            eprintln!("switchboard-loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match real_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchboard-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: &Args) -> Result<(), Error> {
    let body = match &args.body {
        BodySpec::None => Bytes::new(),
        BodySpec::Inline(s) => Bytes::from(s.clone()),
        BodySpec::File(path) => {
            Bytes::from(std::fs::read(path).map_err(|e| format!("--body-file {}: {e}", path.display()))?)
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?;
    let summary = runtime.block_on(run::run(args, body))?;
    if summary.transport_errors > 0 || summary.unsent > 0 {
        eprintln!(
            "switchboard-loadgen: warning: {} transport errors, {} unsent requests",
            summary.transport_errors, summary.unsent
        );
    }
    let out = if args.json {
        let mut s = serde_json::to_string(&summary)?;
        s.push('\n');
        s
    } else {
        summary.to_table(&args.url.to_string())
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
