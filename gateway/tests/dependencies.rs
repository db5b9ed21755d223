//! The data plane must not link Kubernetes client crates: it runs standalone, and the operator
//! is the only component that talks to the API server.

use std::process::Command;

#[test]
fn the_gateway_does_not_depend_on_kube() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "switchboard-gateway",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.lines().any(|l| l.starts_with("hyper ")), "cargo tree output looks wrong:\n{tree}");
    let forbidden: Vec<&str> = tree
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().next().unwrap_or_default();
            name == "kube" || name.starts_with("kube-") || name == "k8s-openapi"
        })
        .collect();
    assert!(forbidden.is_empty(), "the gateway links Kubernetes crates: {forbidden:?}");
}
