//! `switchboard-operator`: today the `compile` command, which runs the operator's compile on
//! manifests and prints what the gateways would serve and what each object's status would say:
//! the same code the controller runs, usable in CI before `kubectl apply`.

use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use switchboard_operator::{Inputs, compile};

#[derive(Parser, Debug)]
#[command(
    name = "switchboard-operator",
    version,
    about = "Compiles Switchboard custom resources into the gateway config.",
    after_help = "The controller (watching a cluster and pushing snapshots to gateways) is not part of this release yet."
)]
struct Cli {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Print the snapshot and every object's status that manifests compile to.
    ///
    /// Reads LLMProvider, ModelRoute, VirtualKey, RateLimitPolicy and Secret manifests (multi-
    /// document YAML, as given to kubectl apply; other kinds are skipped). Exits 1 when an object
    /// is not accepted, or not served for a reason other than a key Secret still to be generated
    /// or a rate limit the gateway does not enforce yet.
    Compile {
        /// Print Secret values instead of <redacted>.
        #[arg(long)]
        show_secrets: bool,
        /// Manifest files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        Sub::Compile { show_secrets, files } => run_compile(&files, show_secrets),
    }
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
