//! Every example config loads through the same code path as the server (`switchboard-gateway
//! check`), and the CLI's helper commands work.

pub mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use support::*;

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchboard-gateway"))
}

#[test]
fn every_example_config_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).unwrap() {
        let path = entry.unwrap().path().join("gateway.yaml");
        if !path.exists() {
            continue;
        }
        // The examples read provider keys from the environment, as real deployments do.
        let output = gateway()
            .arg("check")
            .arg(&path)
            .env("OPENAI_API_KEY", "sk-example")
            .env("ANTHROPIC_API_KEY", "sk-ant-example")
            .env("GEMINI_API_KEY", "gemini-example")
            // A service account key is parsed when the config loads: the test-only one.
            .env("GOOGLE_SERVICE_ACCOUNT_KEY", switchboard_mock_providers::oauth::TEST_SERVICE_ACCOUNT)
            .env("AZURE_OPENAI_API_KEY", "azure-example")
            .env("AZURE_CLIENT_SECRET", "entra-example")
            .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", "aws-secret-example")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
        checked += 1;
    }
    assert!(checked >= 2, "examples were not found");
}

#[test]
fn check_reports_every_problem_and_a_missing_credential() {
    let dir = TempDir::new();
    let path = dir.0.join("bad.yaml");
    std::fs::write(
        &path,
        r#"
version: 1
providers:
  - { name: openai, type: openai, api_key: { env: SWITCHBOARD_TEST_SURELY_UNSET } }
routes:
  - model: a
    backends: [{ provider: openai }]
"#,
    )
    .unwrap();
    let output =
        gateway().arg("check").arg(&path).env_remove("SWITCHBOARD_TEST_SURELY_UNSET").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            r#"providers[0].api_key: environment variable "SWITCHBOARD_TEST_SURELY_UNSET" is not set"#
        ),
        "{stderr}"
    );
}

#[test]
fn hash_key_prints_the_config_form() {
    let mut child = gateway().arg("hash-key").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"sk-switchboard-dev").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let embedded = switchboard_config::EMBEDDED_DEFAULT_YAML;
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(embedded.contains(printed.trim()), "the embedded dev key hash is {printed}");
}

#[test]
fn unknown_flags_fail_with_usage() {
    let output = gateway().arg("--bogus").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--bogus") && stderr.contains("Usage:"), "{stderr}");
}

#[test]
fn json_configs_are_read_as_json() {
    let dir = TempDir::new();
    let path = dir.0.join("gateway.json");
    // Tab-indented JSON, which a YAML parser refuses.
    let json = "{\n\t\"version\": 1,\n\t\"providers\": [{\"name\": \"m\", \"type\": \"mock\"}],\n\t\"routes\": [{\"model\": \"x\", \"backends\": [{\"provider\": \"m\"}]}]\n}\n";
    std::fs::write(&path, json).unwrap();
    let output = gateway().arg("check").arg(&path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    std::fs::write(&path, json.replace("\"mock\"", "\"mokc\"")).unwrap();
    let output = gateway().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("providers[0]") && stderr.contains("mokc"), "{stderr}");
}

#[test]
fn every_serve_flag_has_an_environment_variable_and_help_shows_it() {
    let output = gateway().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{help}");
    for (flag, env) in [
        ("--config", "SWITCHBOARD_CONFIG"),
        ("--listen", "SWITCHBOARD_LISTEN"),
        ("--admin-listen", "SWITCHBOARD_ADMIN_LISTEN"),
        ("--max-body-bytes", "SWITCHBOARD_MAX_BODY_BYTES"),
        ("--drain-timeout", "SWITCHBOARD_DRAIN_TIMEOUT"),
        ("--max-header-bytes", "SWITCHBOARD_MAX_HEADER_BYTES"),
        ("--max-in-flight", "SWITCHBOARD_MAX_IN_FLIGHT"),
        ("--max-buffered-body-bytes", "SWITCHBOARD_MAX_BUFFERED_BODY_BYTES"),
        ("--request-deadline-ms", "SWITCHBOARD_REQUEST_DEADLINE_MS"),
        ("--threads", "SWITCHBOARD_THREADS"),
        ("--log-level", "SWITCHBOARD_LOG"),
        ("--access-log", "SWITCHBOARD_ACCESS_LOG"),
        ("--access-log-sample", "SWITCHBOARD_ACCESS_LOG_SAMPLE"),
    ] {
        assert!(help.contains(flag) && help.contains(&format!("[env: {env}")), "{flag} / {env} in:\n{help}");
    }
    // An environment variable is used when the flag is absent, as a Deployment sets them.
    let output = gateway().env("SWITCHBOARD_LISTEN", "not-an-address").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.code() == Some(2) && stderr.contains("not-an-address"), "{stderr}");
}

#[test]
fn version_states_the_config_schema_versions_read() {
    let output = gateway().arg("--version").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let versions = switchboard_config::SUPPORTED_SCHEMA_VERSIONS;
    let expected = format!("(config schema versions {} to {})", versions.start(), versions.end());
    assert!(output.status.success() && stdout.contains(&expected), "{stdout}");
}
