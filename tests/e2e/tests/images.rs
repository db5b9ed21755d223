//! The container images (`Dockerfile`, docs/images.md), checked without a Docker engine:
//!
//! - hadolint (the real binary, from tests/py/requirements.txt) lints the Dockerfile with
//!   `.hadolint.yaml`: every finding fails;
//! - the Dockerfile's stages match the chart: one final stage per Deployment, named after its
//!   container, on distroless/static, with the chart's user, the ports the pods declare and the
//!   binary as the entrypoint (the chart passes only args), built by `scripts/build-static`;
//! - `scripts/build-static`, the Dockerfile's build step, makes binaries with no program
//!   interpreter (no dynamic loader, no shared libraries), which then run in a root directory
//!   holding only what distroless/static has (`unshare --root`, no environment, as the image's
//!   user): the gateway serves a request to an upstream it finds by the name `localhost`
//!   (glibc's getaddrinfo, linked in), and the operator wins its Lease from an API server it
//!   also reaches by name.
//!
//! The build here uses the dev profile (`scripts/build-static --profile dev`), not the image's
//! release profile: linking is the same, and it costs a fraction of the CI time (docs/images.md).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard_e2e::dockerfile::{Stage, stages};
use switchboard_e2e::tools::{hadolint, helm, repo_root, succeeded};
use switchboard_e2e::{TempDir, binary};

#[path = "images/deployments.rs"]
mod deployments;
#[path = "images/empty_root.rs"]
mod empty_root;

/// The image each final stage builds, by stage name: the chart's container of that name.
const FINAL_STAGES: [&str; 2] = ["operator", "gateway"];
/// The final stages' base: static binaries need no libc, only CA certificates, tzdata and users.
const RUNTIME_BASE: &str = "gcr.io/distroless/static-debian12:nonroot";

#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn dockerfile() -> Vec<Stage> {
    stages(&std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap())
}

#[test]
fn hadolint_finds_nothing_in_the_dockerfile() {
    let output = Command::new(hadolint())
        .current_dir(repo_root())
        .args(["--config", ".hadolint.yaml", "--no-color", "Dockerfile"])
        .output()
        .unwrap();
    succeeded("hadolint Dockerfile", &output);
}

/// What the chart's Deployment for one container runs it with.
#[derive(Debug)]
struct ChartContainer {
    image: String,
    ports: BTreeSet<u16>,
    user: String,
    has_command: bool,
}

/// The containers of the default rendering's Deployments, by container name.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn chart_containers() -> Vec<(String, ChartContainer)> {
    let output = Command::new(helm())
        .args(["template", "sb"])
        .arg(repo_root().join("charts/switchboard"))
        .args(["--namespace", "switchboard"])
        .output()
        .unwrap();
    let rendered = succeeded("helm template", &output);
    let mut found = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(&rendered) {
        let object: serde_json::Value = serde::Deserialize::deserialize(document).unwrap();
        if object["kind"] != "Deployment" {
            continue;
        }
        let pod = &object["spec"]["template"]["spec"];
        let security = &pod["securityContext"];
        let user = format!("{}:{}", security["runAsUser"], security["runAsGroup"]);
        for container in pod["containers"].as_array().unwrap() {
            let ports = container["ports"].as_array().unwrap();
            found.push((
                container["name"].as_str().unwrap().to_owned(),
                ChartContainer {
                    image: container["image"].as_str().unwrap().to_owned(),
                    ports: ports
                        .iter()
                        .map(|p| u16::try_from(p["containerPort"].as_u64().unwrap()).unwrap())
                        .collect(),
                    user: user.clone(),
                    has_command: container.get("command").is_some(),
                },
            ));
        }
    }
    found
}

/// `rust-version` from the workspace's Cargo.toml.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn rust_version() -> String {
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let line = manifest.lines().find(|l| l.starts_with("rust-version")).unwrap();
    line.split('"').nth(1).unwrap().to_owned()
}

#[test]
fn the_build_stage_runs_build_static_on_the_pinned_toolchain() {
    let stages = dockerfile();
    let build = &stages[0];
    assert_eq!(build.name.as_deref(), Some("build"), "the first stage builds the binaries");
    // rust:<rust-version>.<patch>-bookworm: the toolchain the workspace pins, and a glibc (2.36)
    // new enough to resolve names without loading NSS modules (docs/images.md).
    let tag = build.image.strip_prefix("rust:").unwrap();
    assert!(
        tag.starts_with(&format!("{}.", rust_version())) && tag.ends_with("-bookworm"),
        "build stage on {}, not rust:{}.N-bookworm",
        build.image,
        rust_version()
    );
    let runs: Vec<&str> = build.all("RUN").map(|r| r.args.as_str()).collect();
    assert!(
        runs.iter().any(|r| r.ends_with(" scripts/build-static /out")),
        "the build stage must run scripts/build-static /out (what CI tests), ran {runs:?}"
    );
    for stage in &stages {
        assert_eq!(stage.all("ADD").count(), 0, "ADD in stage {:?}: COPY only, nothing fetched", stage.name);
    }
}

#[test]
fn each_deployment_of_the_chart_has_a_final_stage_that_fits_it() {
    let stages = dockerfile();
    let containers = chart_containers();
    let names: BTreeSet<&str> = containers.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, BTreeSet::from(FINAL_STAGES), "the chart's containers and the images differ");
    for (name, container) in &containers {
        let stage = stages.iter().find(|s| s.name.as_deref() == Some(name)).unwrap();
        let binary = format!("switchboard-{name}");
        let installed = format!("/usr/local/bin/{binary}");
        // The chart's image repository is named after the binary.
        let repository = container.image.rsplit_once(':').unwrap().0;
        assert!(repository.ends_with(&format!("/{binary}")), "{name}: the chart runs {}", container.image);
        assert_eq!(stage.image, RUNTIME_BASE, "{name}: final stage base");
        let copies: Vec<&str> = stage.all("COPY").map(|c| c.args.as_str()).collect();
        assert_eq!(
            copies,
            [format!("--from=build /out/{binary} {installed}")],
            "{name}: only the binary goes in"
        );
        assert_eq!(
            stage.last("USER").unwrap().args,
            container.user,
            "{name}: the chart's runAsUser:runAsGroup"
        );
        assert_eq!(
            stage.last("ENTRYPOINT").unwrap().exec_form(),
            Some(vec![installed.clone()]),
            "{name}: the entrypoint is the binary, in exec form (no shell in the image)"
        );
        assert!(!container.has_command, "{name}: the chart must pass args only, keeping the entrypoint");
        let exposed: BTreeSet<u16> = stage
            .all("EXPOSE")
            .flat_map(|e| e.args.split_whitespace().map(|p| p.parse::<u16>().unwrap()))
            .collect();
        assert_eq!(exposed, container.ports, "{name}: EXPOSE and the chart's containerPorts");
    }
}

/// `scripts/build-static --profile dev` into a fresh directory: the gateway and the operator.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn static_binaries(dir: &TempDir) -> PathBuf {
    let out = dir.0.join("bin");
    let mut command = Command::new(repo_root().join("scripts/build-static"));
    // Without what cargo set for this test process (its package's name, manifest directory):
    // build scripts that watch those variables (ring's) would otherwise run again, and rebuild
    // everything above them, whenever the script alternates between a shell and this test.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
            "CARGO_PRIMARY_",
            "CARGO_TARGET_TMPDIR",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || name == "OUT_DIR"
        {
            command.env_remove(name.as_ref());
        }
    }
    let output = command
        .args(["--profile", "dev"])
        .arg(&out)
        // The suite runs offline (scripts/test: a loopback-only namespace); every crate these two
        // binaries use was fetched for the workspace's build before the tests started.
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    succeeded("scripts/build-static --profile dev", &output);
    out
}

/// ELF program header type of the program interpreter (the dynamic loader's path), from the
/// System V gABI (https://refspecs.linuxfoundation.org/elf/gabi4+/ch5.pheader.html).
const PT_INTERP: u32 = 3;

/// The program header types of a 64-bit little-endian ELF file.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn program_header_types(path: &Path) -> Vec<u32> {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "{}: not a 64-bit little-endian ELF file", path.display());
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap());
    // ELF64 header: e_phoff at 0x20, e_phentsize at 0x36, e_phnum at 0x38.
    let offset = usize::try_from(u64_at(0x20)).unwrap();
    let (size, count) = (usize::from(u16_at(0x36)), usize::from(u16_at(0x38)));
    (0..count).map(|i| u32_at(offset + i * size)).collect()
}

#[test]
fn build_static_makes_binaries_without_a_loader() {
    let dir = TempDir::new();
    let out = static_binaries(&dir);
    for name in ["switchboard-gateway", "switchboard-operator"] {
        let types = program_header_types(&out.join(name));
        assert!(!types.is_empty(), "{name}: no program headers read");
        assert!(!types.contains(&PT_INTERP), "{name} names a program interpreter: it is dynamically linked");
    }
    // The check has teeth: the suite's own build of the same binary is dynamic.
    assert!(program_header_types(&binary("switchboard-gateway")).contains(&PT_INTERP));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_gateway_serves_from_an_empty_root() {
    let dir = TempDir::new();
    let out = static_binaries(&dir);
    empty_root::gateway_serves_through_a_named_upstream(&dir, &out.join("switchboard-gateway")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_static_operator_leads_from_an_empty_root() {
    let dir = TempDir::new();
    let out = static_binaries(&dir);
    empty_root::operator_leads_through_a_named_api_server(&dir, &out.join("switchboard-operator")).await;
}

#[test]
fn the_static_binaries_run_the_rendered_deployments() {
    let dir = TempDir::new();
    let out = static_binaries(&dir);
    // The default values (what `helm install` gives) and the single-replica dev set.
    for values in [&[][..], &["ci/dev-values.yaml"]] {
        let run = TempDir::new();
        deployments::rendered_deployments_serve(&run, &out, values);
    }
}
