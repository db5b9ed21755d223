//! Writes every CRD to `crds/yaml/<plural>.switchboard.dev.yaml`.
//!
//! `crdgen --check` writes nothing and exits 1 when a committed file differs from what the Rust
//! types generate (or is missing), for CI and pre-commit hooks. The crate's tests check the same.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/yaml"));
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                eprintln!("usage: crdgen [--check] [DIR]   (DIR defaults to {})", dir.display());
                return ExitCode::SUCCESS;
            }
            _ => dir = PathBuf::from(arg),
        }
    }
    match run(&dir, check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("crdgen: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Returns whether the directory is (or now is) up to date.
fn run(dir: &Path, check: bool) -> Result<bool, Box<dyn std::error::Error>> {
    let mut fresh = true;
    for (name, contents) in switchboard_crds::rendered_crds()? {
        let path = dir.join(&name);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(contents.as_str()) {
            continue;
        }
        if check {
            eprintln!("{} is stale: run `cargo run -p switchboard-crds --bin crdgen`", path.display());
            fresh = false;
        } else {
            std::fs::create_dir_all(dir)?;
            std::fs::write(&path, contents)?;
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(fresh)
}
