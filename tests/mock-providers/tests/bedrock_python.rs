//! The Bedrock Runtime mock is Python (`tests/mock-bedrock/`: SigV4 is checked by botocore, an
//! implementation independent of the Rust `aws-sigv4` the gateway uses). This runs its own tests,
//! which drive it with boto3, so CI runs them with the rest of the suite.
//!
//! `scripts/test` provisions a venv with `tests/py/requirements.txt` (boto3, botocore) and sets
//! SWITCHBOARD_PYTHON; run that, or point SWITCHBOARD_PYTHON at a Python that has them.

use std::path::Path;
use std::process::Command;

#[test]
fn the_bedrock_mock_passes_its_boto3_tests() {
    let python = std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mock-bedrock/test_server.py");
    let output = Command::new(&python).arg(&script).output().unwrap_or_else(|e| {
        panic!("cannot run {python}: {e}; run scripts/test, which provisions tests/py/requirements.txt")
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("mock-bedrock tests passed"),
        "{} failed (SWITCHBOARD_PYTHON={python}; it needs boto3 and botocore from tests/py/requirements.txt):\n{stdout}\n{stderr}",
        script.display()
    );
}
