//! `switchboard-operator compile` on manifests: what CI runs before `kubectl apply`.

#![expect(clippy::unwrap_used, reason = "tests: a failed step fails the test")]

use std::path::Path;
use std::process::Command;

fn operator() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard-operator"))
}

fn examples() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_examples_compile_and_secrets_stay_redacted() {
    let output = operator().arg("compile").args(examples()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    let secrets = report["snapshot"]["secrets"].as_mapping().unwrap();
    assert!(!secrets.is_empty() && secrets.values().all(|v| v.as_str() == Some("<redacted>")), "{secrets:?}");
    let shown = operator().args(["compile", "--show-secrets"]).args(examples()).output().unwrap();
    let shown: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&shown.stdout).unwrap();
    assert!(
        shown["snapshot"]["secrets"].as_mapping().unwrap().values().all(|v| v.as_str() != Some("<redacted>"))
    );
}

#[test]
fn an_object_that_does_not_serve_fails_the_command() {
    let dir = std::env::temp_dir().join(format!("switchboard-operator-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: switchboard.dev/v1alpha1\nkind: LLMProvider\nmetadata: { name: imds, namespace: a }\nspec: { type: openai, baseURL: \"http://169.254.169.254/v1\" }\n",
    )
    .unwrap();
    let output = operator().arg("compile").arg(&file).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&output.stdout).unwrap();
    let accepted = &report["statuses"][0]["conditions"][0];
    assert_eq!(accepted["status"].as_str(), Some("False"));
    let message = accepted["message"].as_str().unwrap();
    assert!(message.starts_with(r#"spec.baseURL: host "169.254.169.254" is refused"#), "{message}");
    let usage = operator().arg("compile").output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "no files is a usage error");
}
