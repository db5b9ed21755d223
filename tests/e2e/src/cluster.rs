//! Where the operator's end-to-end tests run, and kubectl to talk to it.
//!
//! `KUBECONFIG` unset (CI): a private in-repo API server per test
//! (`switchboard_test_apiserver::ApiServer`, CRDs installed); the test owns the whole cluster,
//! so namespaces keep the examples' names and the operator watches everything.
//!
//! `KUBECONFIG` set: that cluster, shared with whatever else runs there (other tests of this
//! run in parallel, other people's installs). At start, the CRDs from `crds/yaml/` that are
//! missing are installed (server-side apply) and all four waited for (`Established`); CRDs
//! already there are used as they are. Every test gets namespaces of its own with unique names
//! (`sb-e2e-<pid>-<n>-<random>`, labelled `app.kubernetes.io/managed-by=switchboard-e2e`), the
//! operator is scoped to them (`--namespace`, `--lease-namespace`), and dropping the `Cluster`
//! (also when the test panics) deletes them without waiting.
//!
//! The CRDs are never deleted: they are cluster-scoped, deleting one deletes every object of its
//! kind in every namespace, and nothing can tell this process that no one else needs them (the
//! other tests of the run are other processes, and Kubernetes has no "delete only if unused"
//! precondition, so a check before the delete would race a create). `tests/e2e/README.md` says
//! how to remove them by hand.

use crate::TempDir;
use std::collections::hash_map::RandomState;
use std::ffi::{OsStr, OsString};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use switchboard_test_apiserver::ApiServer;

/// The label on every namespace the tests create on a shared cluster.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=switchboard-e2e";

/// The CRDs this checkout generates, as kubectl applies them.
fn crd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crds/yaml")
}

/// The real kubectl: `$SWITCHBOARD_KUBECTL` (scripts/test provisions v1.36), else `kubectl` on
/// `PATH`.
pub fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_KUBECTL") {
        return PathBuf::from(path);
    }
    let on_path = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).find(|c| c.is_file()));
    on_path.unwrap_or_else(|| {
        panic!("no kubectl: set SWITCHBOARD_KUBECTL or put kubectl on PATH (scripts/test provisions v1.36)")
    })
}

/// A cluster for one test: see the module documentation.
pub struct Cluster {
    /// The in-repo server this test owns; `None` on the cluster `KUBECONFIG` names.
    server: Option<ApiServer>,
    kubeconfig: OsString,
    kubectl: PathBuf,
    /// Namespaces created on a shared cluster, deleted on drop.
    created: Vec<String>,
    /// kubectl's discovery cache and rewritten manifests.
    dir: TempDir,
}

impl Cluster {
    /// The in-repo API server, or the cluster `$KUBECONFIG` names with the CRDs installed.
    pub fn start() -> Cluster {
        let dir = TempDir::new();
        let kubectl = kubectl_binary();
        match std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
            None => {
                let server = ApiServer::start(Default::default()).unwrap();
                let kubeconfig = dir.0.join("kubeconfig");
                std::fs::write(&kubeconfig, server.kubeconfig()).unwrap();
                let kubeconfig = kubeconfig.into_os_string();
                Cluster { server: Some(server), kubeconfig, kubectl, created: Vec::new(), dir }
            }
            Some(kubeconfig) => {
                let cluster = Cluster { server: None, kubeconfig, kubectl, created: Vec::new(), dir };
                cluster.install_crds();
                cluster
            }
        }
    }

    /// Whether this is a cluster shared with others (`KUBECONFIG` set).
    pub fn shared(&self) -> bool {
        self.server.is_none()
    }

    /// What `KUBECONFIG` is for processes that use this cluster (the operator).
    pub fn kubeconfig(&self) -> &OsStr {
        &self.kubeconfig
    }

    /// A deadline for something that involves the API server: as given on the in-repo server,
    /// three times as long on a real cluster (its latency, other load).
    pub fn patience(&self, in_repo: Duration) -> Duration {
        if self.shared() { in_repo * 3 } else { in_repo }
    }

    /// A namespace for this test to use in place of `name`: `name` itself on the in-repo
    /// server (the test's manifests create it), else a new one with a unique name, created now
    /// and deleted when the cluster is dropped.
    pub fn namespace(&mut self, name: &str) -> String {
        if !self.shared() {
            return name.to_owned();
        }
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let random = RandomState::new().build_hasher().finish() & 0xffff;
        let unique =
            format!("sb-e2e-{}-{}-{random:04x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let (label, value) = MANAGED_BY.split_once('=').unwrap();
        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {unique}\n  labels: {{ {label}: {value} }}\n"
        );
        // `create`, not `apply`: a name taken by someone else fails here instead of being
        // adopted (and deleted at the end).
        let file = self.write(&format!("{unique}.yaml"), &manifest);
        self.kubectl(&["create", "-f", file.to_str().unwrap()]);
        self.created.push(unique.clone());
        unique
    }

    /// The flags that keep an operator to `namespace` (watch, Lease) on a shared cluster;
    /// nothing on the in-repo server, where it watches every namespace.
    pub fn operator_scope(&self, namespace: &str) -> Vec<String> {
        if !self.shared() {
            return Vec::new();
        }
        ["--namespace", namespace, "--lease-namespace", namespace].map(str::to_owned).to_vec()
    }

    /// Where an operator scoped with [`Cluster::operator_scope`] keeps its Lease.
    pub fn lease_namespace(&self, namespace: &str) -> String {
        if self.shared() { namespace.to_owned() } else { "default".to_owned() }
    }

    /// Runs kubectl; returns its output whatever its status.
    pub fn try_kubectl(&self, args: &[&str]) -> Output {
        Command::new(&self.kubectl)
            .arg("--cache-dir")
            .arg(self.dir.0.join("kubectl-cache"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    /// Runs kubectl; returns stdout, failing the test with stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.try_kubectl(args);
        assert!(output.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kubectl apply` of manifest text.
    pub fn apply(&self, manifest: &str) {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let file =
            self.write(&format!("manifest-{}.yaml", COUNTER.fetch_add(1, Ordering::Relaxed)), manifest);
        self.kubectl(&["apply", "-f", file.to_str().unwrap()]);
    }

    /// `kubectl apply -f examples/kubernetes/`, in `namespace` instead of `switchboard-demo`.
    pub fn apply_examples(&self, namespace: &str) {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubernetes");
        let target = self.dir.0.join(format!("examples-{namespace}"));
        std::fs::create_dir_all(&target).unwrap();
        for entry in std::fs::read_dir(&examples).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap().replace("switchboard-demo", namespace);
                std::fs::write(target.join(path.file_name().unwrap()), text).unwrap();
            }
        }
        self.kubectl(&["apply", "-f", target.to_str().unwrap()]);
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Installs the CRDs that are missing and waits until all four are served. Several tests
    /// may do this at once: applying the same CRD twice changes nothing.
    fn install_crds(&self) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(crd_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let names: Vec<String> =
            files.iter().map(|f| f.file_stem().unwrap().to_string_lossy().into_owned()).collect();
        let mut get = vec!["get", "crd", "--ignore-not-found", "-o", "name"];
        get.extend(names.iter().map(String::as_str));
        let present = self.kubectl(&get);
        for (file, name) in files.iter().zip(&names) {
            if !present.lines().any(|l| l.rsplit('/').next() == Some(name.as_str())) {
                let file = file.to_str().unwrap();
                self.kubectl(&["apply", "--server-side", "--field-manager", "switchboard-e2e", "-f", file]);
            }
        }
        let crds: Vec<String> = names.iter().map(|n| format!("crd/{n}")).collect();
        let mut wait = vec!["wait", "--for", "condition=Established", "--timeout", "60s"];
        wait.extend(crds.iter().map(String::as_str));
        self.kubectl(&wait);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.created.is_empty() {
            return;
        }
        let mut args = vec!["delete", "namespace", "--wait=false", "--ignore-not-found"];
        args.extend(self.created.iter().map(String::as_str));
        let output = self.try_kubectl(&args);
        if !output.status.success() {
            // Not a panic: this may run while a failed test unwinds. The label finds them later.
            eprintln!(
                "could not delete the test namespaces {:?} (kubectl delete namespace -l {MANAGED_BY}): {}",
                self.created,
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}
