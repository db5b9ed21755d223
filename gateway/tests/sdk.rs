//! The official OpenAI Python SDK against the gateway (tests/py/openai_sdk.py).
//!
//! `scripts/test` provisions the SDK in a venv and sets SWITCHBOARD_PYTHON; run that, or point
//! SWITCHBOARD_PYTHON at a Python with `openai` installed.

pub mod support;

use support::*;
use switchboard_mock_upstream::MockUpstream;

const KEY: &str = "sk-sdk-full";
const LIMITED: &str = "sk-sdk-limited";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_sdk_works_against_the_gateway() {
    let mock = MockUpstream::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let config = format!(
        r#"
version: 1
providers:
  - name: builtin
    type: mock
  - name: upstream
    type: openai
    base_url: {base_url}
routes:
  - model: mock
    backends: [{{ provider: builtin }}]
  - model: upstream
    backends: [{{ provider: upstream, model: upstream-model }}]
  - model: other
    backends: [{{ provider: builtin }}]
  - model: broken
    backends: [{{ provider: upstream, model: error-500 }}]
keys:
  - name: full
    hash: {full}
  - name: limited
    hash: {limited}
    models: [mock]
"#,
        base_url = mock.base_url(),
        full = hash_key(KEY),
        limited = hash_key(LIMITED),
    );
    let gateway = Gateway::start(Some(&config), &[]);
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = repo_root().join("tests/py/openai_sdk.py");
    let base_url = gateway.url("/v1");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--base-url", &base_url, "--key", KEY, "--limited-key", LIMITED])
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/test, which provisions the SDK"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}\ngateway log:\n{}",
        gateway.log()
    );
    assert!(stdout.contains("all checks passed"));
}
