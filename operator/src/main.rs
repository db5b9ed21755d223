//! `switchboard-operator`: today the `compile` command, which runs the operator's compile on
//! manifests and prints what the gateways would serve and what each object's status would say:
//! the same code the controller runs, usable in CI before `kubectl apply`.

use std::io::Write;
use std::process::ExitCode;
use switchboard_operator::{Inputs, compile};

const USAGE: &str = "\
switchboard-operator: compiles Switchboard custom resources into the gateway config

USAGE:
  switchboard-operator compile [--show-secrets] FILE...
      Reads LLMProvider, ModelRoute, VirtualKey, RateLimitPolicy and Secret manifests (multi-
      document YAML, as given to kubectl apply) and prints the snapshot the gateways would serve
      and every object's status conditions. Exits 1 when an object is not accepted, or not
      served for a reason other than a key Secret still to be generated or a rate limit the
      gateway does not enforce yet. Secret values are shown as <redacted> unless --show-secrets is given.
  switchboard-operator --help | --version

The controller (watching a cluster and pushing snapshots to gateways) is not part of this
release yet.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("compile") => run_compile(&args[1..]),
        Some("-h" | "--help") => {
            print(USAGE);
            ExitCode::SUCCESS
        }
        Some("-V" | "--version") => {
            print(&format!("switchboard-operator {}\n", env!("CARGO_PKG_VERSION")));
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("error: expected a command\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run_compile(args: &[String]) -> ExitCode {
    let show_secrets = args.iter().any(|a| a == "--show-secrets");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--show-secrets").collect();
    if files.is_empty() || files.iter().any(|f| f.starts_with('-')) {
        eprintln!("error: compile needs manifest files\n\n{USAGE}");
        return ExitCode::from(2);
    }
    let mut inputs = Inputs { generation: 1, ..Inputs::default() };
    for file in files {
        let loaded =
            std::fs::read_to_string(file).map_err(|e| e.to_string()).and_then(|t| inputs.add_yaml(&t));
        if let Err(err) = loaded {
            eprintln!("error: {file}: {err}");
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
