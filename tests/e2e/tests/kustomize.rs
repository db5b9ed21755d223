//! The Kustomize base in `examples/kustomize` (for clusters installed without Helm): the
//! committed `base/` is exactly what `examples/kustomize/generate.py` renders from the chart
//! now, so it cannot drift from `charts/switchboard`; and the base and the `overlays/ha`
//! example render with the real `kubectl kustomize` (offline) into manifests that pass the same
//! check as every chart rendering (`tests/py/chart_check.py`: Kubernetes schemas and the policy
//! points), whose container args the real binaries accept.
//!
//! helm is `$SWITCHBOARD_HELM`, else `helm` on `PATH`; kubectl is `$SWITCHBOARD_KUBECTL`, else
//! `kubectl` on `PATH`; Python is `$SWITCHBOARD_PYTHON` with tests/py/requirements.txt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use switchboard_e2e::tools::{helm, python, repo_root, succeeded};
use switchboard_e2e::{TempDir, binary, kubectl_binary};

/// The namespace the generator renders the base for (generate.py's NAMESPACE).
const NAMESPACE: &str = "switchboard";

fn kustomize_dir() -> PathBuf {
    repo_root().join("examples/kustomize")
}

/// Every file under `dir`, by its path relative to `dir`.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                found.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    found
}

/// Like the CRD freshness test: regenerate into a temporary directory and compare file by file.
#[test]
fn the_committed_base_is_generated_from_the_chart() {
    let dir = TempDir::new();
    let out = dir.0.join("base");
    let output = Command::new(python())
        .arg(kustomize_dir().join("generate.py"))
        .arg("--helm")
        .arg(helm())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    succeeded("examples/kustomize/generate.py", &output);
    let (generated, committed) = (files(&out), files(&kustomize_dir().join("base")));
    let refresh =
        "refresh it with `python examples/kustomize/generate.py` (helm on PATH or SWITCHBOARD_HELM)";
    assert_eq!(
        generated.keys().collect::<Vec<_>>(),
        committed.keys().collect::<Vec<_>>(),
        "examples/kustomize/base lists other files than the chart generates; {refresh}"
    );
    for (name, text) in &generated {
        assert!(committed[name] == *text, "examples/kustomize/base/{name} differs from the chart; {refresh}");
    }
}

/// `kubectl kustomize` of one kustomization under examples/kustomize, checked like a chart
/// rendering; returns the rendered manifests.
#[expect(clippy::unwrap_used, reason = "test helper: a failed step must abort the test with its context")]
fn render_and_check(kustomization: &str) -> String {
    let output = Command::new(kubectl_binary())
        .arg("kustomize")
        .arg(kustomize_dir().join(kustomization))
        .output()
        .unwrap();
    let rendered = succeeded(&format!("kubectl kustomize {kustomization}"), &output);
    let dir = TempDir::new();
    let path = dir.0.join("rendered.yaml");
    std::fs::write(&path, &rendered).unwrap();
    let output = Command::new(python())
        .arg(repo_root().join("tests/py/chart_check.py"))
        .arg(&path)
        .args(["--namespace", NAMESPACE, "--out"])
        .arg(&dir.0)
        .output()
        .unwrap();
    let report = succeeded(&format!("chart_check.py on {kustomization}"), &output);
    assert!(report.starts_with("ok:"), "{report}");
    // clap reads the args in order, so an unknown flag fails before `--help` prints.
    let args: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("args.json")).unwrap()).unwrap();
    for (component, program) in [("operator", "switchboard-operator"), ("gateway", "switchboard-gateway")] {
        let args: Vec<&str> =
            args[component].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let output = Command::new(binary(program)).args(&args).arg("--help").output().unwrap();
        succeeded(&format!("{program} {} --help", args.join(" ")), &output);
    }
    assert!(!rendered.contains("helm.sh/"), "{kustomization} still carries Helm's labels or annotations");
    rendered
}

#[test]
fn the_base_renders_and_validates() {
    render_and_check("base");
}

/// The overlay validates, and its patches took: a Kustomize patch whose target no longer
/// matches (a renamed object in the chart) would otherwise pass silently or fail late.
#[test]
fn the_ha_overlay_renders_and_validates() {
    let rendered = render_and_check("overlays/ha");
    for applied in [
        "minReplicas: 3",
        "maxReplicas: 20",
        "minAvailable: 2",
        "whenUnsatisfiable: DoNotSchedule",
        "cpu: \"1\"",
    ] {
        assert!(rendered.contains(applied), "overlays/ha rendered without `{applied}`:\n{rendered}");
    }
    // The generated token Secret gets a content hash suffix, and kustomize must have renamed
    // every reference to it, or the pods would mount a Secret that does not exist.
    assert!(
        !rendered.contains("secretName: switchboard-stream-token\n"),
        "a reference to the unhashed token Secret"
    );
}
