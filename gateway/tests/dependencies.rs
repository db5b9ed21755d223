//! Crate boundaries, checked on the real dependency graph: the data plane must not link
//! Kubernetes client crates (it runs standalone; only the operator talks to the API server), and
//! the contract and wire-format crates must stay pure (no async runtime, no HTTP stack), so the
//! operator can use the contract without a runtime and both can be tested without sockets.

use std::process::Command;

/// The names of the crates `package` links (normal and build dependencies, not dev).
#[expect(clippy::unwrap_used, reason = "test helper: a failed cargo call fails the test")]
fn dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["tree", "--offline", "--locked", "-p", package, "-e", "normal,build", "--prefix", "none"])
        .args(["--format", "{p}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    let tree = String::from_utf8_lossy(&output.stdout);
    let names: Vec<String> =
        tree.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    assert!(names.iter().any(|n| n == package), "cargo tree output looks wrong:\n{tree}");
    names
}

#[test]
fn the_gateway_does_not_depend_on_kube() {
    let names = dependencies("switchboard-gateway");
    assert!(names.iter().any(|n| n == "hyper"), "the gateway links hyper; the tree looks wrong");
    let forbidden: Vec<&String> =
        names.iter().filter(|n| *n == "kube" || n.starts_with("kube-") || *n == "k8s-openapi").collect();
    assert!(forbidden.is_empty(), "the gateway links Kubernetes crates: {forbidden:?}");
}

#[test]
fn the_contract_and_wire_formats_link_no_runtime_or_http_stack() {
    for package in ["switchboard-config", "switchboard-llm"] {
        let names = dependencies(package);
        let forbidden: Vec<&String> = names
            .iter()
            .filter(|n| matches!(n.as_str(), "tokio" | "hyper" | "hyper-util" | "kube" | "k8s-openapi"))
            .collect();
        assert!(forbidden.is_empty(), "{package} links {forbidden:?}");
    }
}
