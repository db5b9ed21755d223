//! The Helm chart (`charts/switchboard`): `helm lint --strict`, then `helm template` for the
//! default values and each `charts/switchboard/ci/*.yaml`, every rendering checked by
//! `tests/py/chart_check.py` (Kubernetes schemas, offline, and the policy points: PDB, probes on
//! the admin port, termination grace vs drain deadline, securityContext, resources,
//! NetworkPolicy, least-privilege RBAC listed verb by verb); the rendered container args are
//! then handed to the real binaries, which refuse any flag they do not take; the generated stream
//! certificate is checked with rustls as the gateway checks it.
//!
//! helm is `$SWITCHBOARD_HELM` (scripts/test provisions v4 from the same npm package as kubectl),
//! else `helm` on `PATH`; Python is `$SWITCHBOARD_PYTHON` with tests/py/requirements.txt.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use switchboard_e2e::tools::{helm, python, repo_root, succeeded};
use switchboard_e2e::{TempDir, binary};

const NAMESPACE: &str = "switchboard";

fn chart() -> PathBuf {
    repo_root().join("charts/switchboard")
}

/// `helm template` with these values files and `--set`s, into `dir/rendered.yaml`.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn render(dir: &TempDir, values: &[&str], sets: &[&str]) -> PathBuf {
    let mut command = Command::new(helm());
    command.args(["template", "sb"]).arg(chart()).args(["--namespace", NAMESPACE, "--include-crds"]);
    for file in values {
        command.arg("--values").arg(chart().join(file));
    }
    for set in sets {
        command.args(["--set", set]);
    }
    let rendered = succeeded("helm template", &command.output().unwrap());
    let path = dir.0.join("rendered.yaml");
    std::fs::write(&path, rendered).unwrap();
    path
}

/// `tests/py/chart_check.py` on a rendering; it writes the containers' args to `dir/args.json`
/// and each Secret's data to `dir/secrets/NAME/KEY`.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn check(dir: &TempDir, rendered: &Path) -> Output {
    let python = python();
    Command::new(&python)
        .arg(repo_root().join("tests/py/chart_check.py"))
        .arg(rendered)
        .args(["--namespace", NAMESPACE, "--out"])
        .arg(&dir.0)
        .output()
        .unwrap()
}

/// Lint, render, check, and run each binary with its rendered args plus `--help`: clap reads
/// the args in order, so an unknown flag fails before `--help` prints.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn lint_render_check(values: &[&str]) {
    let mut lint = Command::new(helm());
    lint.args(["lint", "--strict"]).arg(chart());
    for file in values {
        lint.arg("--values").arg(chart().join(file));
    }
    succeeded(&format!("helm lint --strict {values:?}"), &lint.output().unwrap());
    let dir = TempDir::new();
    let rendered = render(&dir, values, &[]);
    let report = succeeded(&format!("chart_check.py on {values:?}"), &check(&dir, &rendered));
    assert!(report.starts_with("ok:"), "{report}");
    let args: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("args.json")).unwrap()).unwrap();
    for (component, program) in [("operator", "switchboard-operator"), ("gateway", "switchboard-gateway")] {
        let args: Vec<&str> =
            args[component].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let output = Command::new(binary(program)).args(&args).arg("--help").output().unwrap();
        succeeded(&format!("{program} {} --help", args.join(" ")), &output);
    }
}

#[test]
fn default_values() {
    lint_render_check(&[]);
}

#[test]
fn dev_single_replica() {
    lint_render_check(&["ci/dev-values.yaml"]);
}

#[test]
fn ha_with_watched_namespaces() {
    lint_render_check(&["ci/ha-values.yaml"]);
}

#[test]
fn with_service_monitor() {
    lint_render_check(&["ci/monitoring-values.yaml"]);
}

#[test]
fn with_pod_monitor() {
    lint_render_check(&["ci/podmonitor-values.yaml"]);
}

/// ServiceMonitors and PodMonitors together would scrape every pod twice (and double every
/// counter summed over pods): the chart refuses to render them, naming both values.
#[test]
fn pod_and_service_monitors_are_refused_together() {
    let output = Command::new(helm())
        .args(["template", "sb"])
        .arg(chart())
        .args(["--set", "podMonitor.enabled=true", "--set", "serviceMonitor.enabled=true"])
        .output()
        .unwrap();
    assert!(!output.status.success(), "helm template rendered both monitor kinds");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("podMonitor.enabled and serviceMonitor.enabled are both true"), "{stderr}");
}

/// The policy check is not vacuous: a rendering without the PodDisruptionBudget fails it.
#[test]
fn the_check_refuses_a_chart_without_a_pdb() {
    let dir = TempDir::new();
    let rendered = render(&dir, &[], &["gateway.podDisruptionBudget.enabled=false"]);
    let output = check(&dir, &rendered);
    assert!(!output.status.success(), "chart_check.py passed without a PDB");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no PodDisruptionBudget for the gateway"), "{stdout}");
}

/// The ci value sets are the ones tested here, so a new file there cannot go untested.
#[test]
fn every_ci_values_file_is_tested() {
    let source = std::fs::read_to_string(repo_root().join("tests/e2e/tests/chart.rs")).unwrap();
    for entry in std::fs::read_dir(chart().join("ci")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            source.contains(&format!("\"ci/{name}\"")),
            "charts/switchboard/ci/{name} is not tested in tests/e2e/tests/chart.rs"
        );
    }
}

/// The certificate the chart generates for the stream (sprig's genCA/genSignedCert) passes
/// rustls/webpki as the gateway checks it: a TLS handshake in memory, the server configured
/// with the operator's mounted files, the client trusting only the gateway's `ca.crt`, for the
/// host of the rendered `--operator` URL.
#[tokio::test]
async fn the_generated_stream_certificate_is_valid_for_the_stream_url() {
    use pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types};

    let dir = TempDir::new();
    let rendered = render(&dir, &[], &[]);
    succeeded("chart_check.py", &check(&dir, &rendered));
    let args: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("args.json")).unwrap()).unwrap();
    let flag = |component: &str, name: &str| -> String {
        let prefix = format!("--{name}=");
        args[component]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|a| a.as_str().unwrap().strip_prefix(&prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("no {prefix} in the {component} args: {args}"))
    };
    let url = flag("gateway", "operator");
    let host = url.strip_prefix("https://").unwrap().split(':').next().unwrap().to_owned();
    // The mounted paths name the Secret keys; the Secret is the one named `*-stream-tls`.
    let secrets = dir.0.join("secrets/sb-switchboard-stream-tls");
    let key_of = |path: String| secrets.join(Path::new(&path).file_name().unwrap());
    let chain: Vec<_> = pki_types::CertificateDer::pem_file_iter(key_of(flag("operator", "tls-cert-file")))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = pki_types::PrivateKeyDer::from_pem_file(key_of(flag("operator", "tls-key-file"))).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in pki_types::CertificateDer::pem_file_iter(key_of(flag("gateway", "operator-ca-file"))).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }

    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (near, far) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(server));
    let serving = tokio::spawn(async move {
        let mut stream = acceptor.accept(far).await.unwrap();
        stream.write_all(b"ok").await.unwrap();
        stream.shutdown().await.unwrap();
    });
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let name = pki_types::ServerName::try_from(host.clone()).unwrap();
    let mut stream = connector
        .connect(name, near)
        .await
        .unwrap_or_else(|e| panic!("the generated certificate is refused for {host}: {e}"));
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"ok");
    serving.await.unwrap();
}
