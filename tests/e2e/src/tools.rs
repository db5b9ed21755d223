//! The command-line tools the packaging tests drive (helm, the venv's Python) and how they are
//! found and checked: one place for the chart and Kustomize tests.

use std::path::{Path, PathBuf};
use std::process::Output;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `SWITCHBOARD_PYTHON` (the venv scripts/test provisions), else `python3`.
pub fn python() -> String {
    std::env::var("SWITCHBOARD_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// `SWITCHBOARD_HELM`, else `helm` on PATH.
pub fn helm() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_HELM") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("helm")).find(|c| c.is_file()));
    on_path.unwrap_or_else(|| {
        panic!("no helm: set SWITCHBOARD_HELM or put helm on PATH (scripts/test provisions v4)")
    })
}

/// A command's stdout, after checking it succeeded (its output in the failure message).
#[track_caller]
pub fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// `SWITCHBOARD_HADOLINT`, else the `hadolint` beside `SWITCHBOARD_PYTHON` (the venv scripts/test
/// provisions installs it from tests/py/requirements.txt), else `hadolint` on PATH.
pub fn hadolint() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_HADOLINT") {
        return PathBuf::from(path);
    }
    let beside_python = std::env::var_os("SWITCHBOARD_PYTHON")
        .and_then(|python| Path::new(&python).parent().map(|bin| bin.join("hadolint")))
        .filter(|candidate| candidate.is_file());
    let on_path = || {
        std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("hadolint")).find(|c| c.is_file()))
    };
    beside_python.or_else(on_path).unwrap_or_else(|| {
        panic!("no hadolint: pip install -r tests/py/requirements.txt into SWITCHBOARD_PYTHON's venv, or set SWITCHBOARD_HADOLINT")
    })
}
