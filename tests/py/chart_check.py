"""Checks a rendering of charts/switchboard: every manifest against the Kubernetes schemas, and
the policy points of issue 15.

Started by tests/e2e/tests/chart.rs with the output of `helm template --include-crds` (one file,
many documents). Offline: kubernetes-validate bundles the Kubernetes JSON schemas.

Schemas: every object is validated strictly (unknown fields refused) against each version in
KUBERNETES_VERSIONS. Objects of custom resources it cannot know (SKIP_KINDS) are skipped, and
any other unknown kind fails.

Policy (each derived from the rendering itself, so it holds for every value set):
- the gateway has a PodDisruptionBudget; the gateway and the operator each have a NetworkPolicy
  (only a plain-text development rendering may turn them off);
- readiness (/readyz) and liveness (/healthz) probes on the `admin` port, which is the port the
  binary's --admin-listen names;
- the gateway's terminationGracePeriodSeconds >= preStop sleep + --drain-timeout;
- pod and container securityContext: runAsNonRoot, seccomp RuntimeDefault,
  readOnlyRootFilesystem, no privilege escalation, every capability dropped;
- requests (cpu, memory) and a memory limit on every container;
- ServiceMonitors or PodMonitors (never both: every pod would be scraped twice) select the
  operator's and the gateway's pods by their selector labels and scrape /metrics on `admin`;
- a Grafana dashboard ConfigMap holds JSON with panels, each with a query; every PrometheusRule
  alert has an expression scoped to the release's namespace, a `for` and a summary;
- RBAC: the (scope, apiGroup, resource, verb) grants equal LEAST_PRIVILEGE exactly, the scope
  being the cluster when the operator watches every namespace, else each namespace it names;
  the gateway's ServiceAccount is bound to nothing.
"""

import argparse
import base64
import json
import os
import sys

import kubernetes_validate
import yaml

KUBERNETES_VERSIONS = ["1.33.0", "1.36.0"]
# The Prometheus Operator's kinds: their CRDs are not in the bundled schemas; check_monitors
# checks what matters in them instead.
SKIP_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}
MONITOR_ENDPOINTS = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}

# What operator/src calls in each watched namespace (see the comment in templates/rbac.yaml).
WATCHED = {
    ("switchboard.dev", kind, verb)
    for kind in ["llmproviders", "modelroutes", "virtualkeys", "ratelimitpolicies"]
    for verb in ["list", "watch"]
} | {
    ("switchboard.dev", f"{kind}/status", "patch")
    for kind in ["llmproviders", "modelroutes", "virtualkeys", "ratelimitpolicies"]
} | {
    ("switchboard.dev", "virtualkeys/finalizers", "update"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
    ("", "secrets", "create"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
}


def lease_grants(lease):
    """The Lease in the release namespace: create (cannot be named), get/update by name."""
    return {
        ("coordination.k8s.io", "leases", "create", None),
        ("coordination.k8s.io", "leases", "get", lease),
        ("coordination.k8s.io", "leases", "update", lease),
    }


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def validate_schemas(docs, failures):
    checked = 0
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if (doc["apiVersion"], doc["kind"]) in SKIP_KINDS:
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                failures.append(f"{name} is invalid for Kubernetes {version}: {e.message} at {list(e.path)}")
            except kubernetes_validate.SchemaNotFoundError:
                failures.append(f"{name}: no schema for {doc['apiVersion']} {doc['kind']} in Kubernetes {version}")
        checked += 1
    return checked


def arg(container, flag):
    for a in container.get("args", []):
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def check_workload(dep, failures):
    name = dep["metadata"]["name"]
    pod = dep["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        failures.append(f"{name}: pod securityContext.runAsNonRoot is not true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        failures.append(f"{name}: pod seccompProfile is not RuntimeDefault")
    for c in pod["containers"]:
        where = f"{name}/{c['name']}"
        sc = c.get("securityContext", {})
        for field, want in [("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False), ("runAsNonRoot", True)]:
            if sc.get(field) is not want:
                failures.append(f"{where}: securityContext.{field} is not {want}")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            failures.append(f"{where}: capabilities do not drop ALL")
        if sc.get("capabilities", {}).get("add"):
            failures.append(f"{where}: capabilities are added")
        res = c.get("resources", {})
        if not {"cpu", "memory"} <= set(res.get("requests", {})):
            failures.append(f"{where}: no cpu and memory requests")
        if "memory" not in res.get("limits", {}):
            failures.append(f"{where}: no memory limit")
        admin = arg(c, "--admin-listen")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if admin is None or str(ports.get("admin")) != admin.rsplit(":", 1)[1]:
            failures.append(f"{where}: the admin port {ports.get('admin')} is not --admin-listen {admin}")
        for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != path or get.get("port") not in ("admin", ports.get("admin")):
                failures.append(f"{where}: {probe} is not {path} on the admin port: {get}")
    return pod


def check_gateway(dep, failures):
    pod = check_workload(dep, failures)
    (c,) = pod["containers"]
    drain = int(arg(c, "--drain-timeout") or 30)
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < sleep + drain + 1:
        failures.append(f"gateway: terminationGracePeriodSeconds {grace} < preStop {sleep} s + drain {drain} s + margin")
    if not arg(c, "--snapshot-cache") or not any("emptyDir" in v for v in pod.get("volumes", [])):
        failures.append("gateway: no --snapshot-cache on an emptyDir")
    if pod.get("automountServiceAccountToken") is not False:
        failures.append("gateway: a service account token is mounted")


def check_monitors(docs, deployments, failures):
    """Each monitor kind rendered covers both components, on the admin port, at /metrics."""
    kinds = {d["kind"] for d in docs if d["kind"] in MONITOR_ENDPOINTS}
    if len(kinds) > 1:
        failures.append(f"both {' and '.join(sorted(kinds))} rendered: every pod would be scraped twice")
    for kind in sorted(kinds):
        for comp, dep in deployments.items():
            selector = dep["spec"]["selector"]["matchLabels"]
            found = [m for m in docs if m["kind"] == kind
                     and m["spec"].get("selector", {}).get("matchLabels") == selector]
            if len(found) != 1:
                failures.append(f"{len(found)} {kind}s select the {comp} pods, not 1")
                continue
            endpoints = found[0]["spec"].get(MONITOR_ENDPOINTS[kind], [])
            if [(e.get("port"), e.get("path")) for e in endpoints] != [("admin", "/metrics")]:
                failures.append(f"{kind} of the {comp}: endpoints are not /metrics on admin: {endpoints}")
    return len(kinds)


def check_dashboards_and_rules(docs, namespace, failures):
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "ConfigMap" and doc["metadata"].get("labels", {}).get("grafana_dashboard"):
            for key, text in doc.get("data", {}).items():
                try:
                    dashboard = json.loads(text)
                except json.JSONDecodeError as err:
                    failures.append(f"dashboard {name}/{key} is not JSON: {err}")
                    continue
                panels = dashboard.get("panels", [])
                if not panels or not all(t.get("expr") for p in panels for t in p.get("targets", [None]) if t):
                    failures.append(f"dashboard {name}/{key}: no panels, or a panel without a query")
        if doc["kind"] == "PrometheusRule":
            rules = [r for g in doc["spec"]["groups"] for r in g["rules"]]
            if not rules:
                failures.append(f"PrometheusRule {name} has no rules")
            for rule in rules:
                scoped = f'namespace="{namespace}"' in rule.get("expr", "")
                if not (rule.get("alert") and scoped and rule.get("for") and rule.get("annotations", {}).get("summary")):
                    failures.append(f"PrometheusRule {name}: {rule.get('alert')} needs an expr scoped to "
                                    f"namespace {namespace}, a for and a summary")


def rbac_grants(docs, failures):
    """(scope, apiGroup, resource, verb, resourceName) of every rule bound to a ServiceAccount."""
    roles = {}
    for d in docs:
        if d["kind"] in ("Role", "ClusterRole"):
            roles[(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])] = d.get("rules", [])
    grants = {}
    for b in docs:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        ns = b["metadata"].get("namespace")
        ref = b["roleRef"]
        rules = roles.get((ref["kind"], ns if ref["kind"] == "Role" else None, ref["name"]))
        if rules is None:
            failures.append(f"{b['kind']}/{b['metadata']['name']} binds a role the chart does not render")
            continue
        scope = ns if b["kind"] == "RoleBinding" else "*cluster*"
        for s in b["subjects"]:
            account = s["name"]
            for r in rules:
                if r.get("nonResourceURLs"):
                    failures.append(f"{account}: nonResourceURLs granted")
                for group in r["apiGroups"]:
                    for resource in r["resources"]:
                        for verb in r["verbs"]:
                            for rn in r.get("resourceNames") or [None]:
                                grants.setdefault(account, set()).add((scope, group, resource, verb, rn))
    return grants


def check_rbac(docs, operator, gateway, release_ns, failures):
    c = operator["spec"]["template"]["spec"]["containers"][0]
    account = operator["spec"]["template"]["spec"]["serviceAccountName"]
    namespaces = arg(c, "--namespace")
    scopes = namespaces.split(",") if namespaces else ["*cluster*"]
    lease = arg(c, "--lease-name") or "switchboard-operator"
    want = {(scope, *g, None) for scope in scopes for g in WATCHED}
    want |= {(release_ns, *g) for g in lease_grants(lease)}
    grants = rbac_grants(docs, failures)
    got = grants.pop(account, set())
    for extra in sorted(got - want, key=str):
        failures.append(f"RBAC: {account} is granted more than it needs: {extra}")
    for missing in sorted(want - got, key=str):
        failures.append(f"RBAC: {account} lacks {missing}")
    gateway_account = gateway["spec"]["template"]["spec"]["serviceAccountName"]
    for other, g in grants.items():
        failures.append(f"RBAC: {other} is granted {sorted(g, key=str)}" + (" (the gateway needs no API access)" if other == gateway_account else ""))
    return len(got)


def write_out(out, docs, operator, gateway):
    with open(os.path.join(out, "args.json"), "w") as f:
        json.dump({comp: dep["spec"]["template"]["spec"]["containers"][0]["args"]
                   for comp, dep in [("operator", operator), ("gateway", gateway)]}, f)
    for secret in (d for d in docs if d["kind"] == "Secret"):
        folder = os.path.join(out, "secrets", secret["metadata"]["name"])
        os.makedirs(folder, exist_ok=True)
        for key, value in secret.get("data", {}).items():
            with open(os.path.join(folder, key), "wb") as f:
                f.write(base64.b64decode(value))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", help="output of helm template --include-crds")
    parser.add_argument("--namespace", required=True, help="the release namespace it was rendered for")
    parser.add_argument("--out", help="a directory to write the operator's and the gateway's container args to "
                        "(args.json) and each rendered Secret's data (secrets/NAME/KEY)")
    args = parser.parse_args()
    docs = load(args.rendered)
    failures = []
    checked = validate_schemas(docs, failures)

    def only(kind, component):
        found = [d for d in docs if d["kind"] == kind
                 and d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]
        return found

    deployments = {comp: only("Deployment", comp) for comp in ("operator", "gateway")}
    for comp, found in deployments.items():
        if len(found) != 1:
            failures.append(f"{len(found)} {comp} Deployments rendered, not 1")
    if failures and not all(len(f) == 1 for f in deployments.values()):
        print("\n".join(failures))
        sys.exit(1)
    operator, gateway = deployments["operator"][0], deployments["gateway"][0]
    check_workload(operator, failures)
    check_gateway(gateway, failures)
    if len(only("PodDisruptionBudget", "gateway")) != 1:
        failures.append("no PodDisruptionBudget for the gateway")
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    if policies and {p["metadata"]["labels"]["app.kubernetes.io/component"] for p in policies} != {"operator", "gateway"}:
        failures.append("NetworkPolicies do not cover both the operator and the gateway")
    if not policies and "--operator-insecure" not in gateway["spec"]["template"]["spec"]["containers"][0]["args"]:
        failures.append("no NetworkPolicy (only the development value set may go without)")
    check_monitors(docs, {"operator": operator, "gateway": gateway}, failures)
    check_dashboards_and_rules(docs, args.namespace, failures)
    grants = check_rbac(docs, operator, gateway, args.namespace, failures)
    if args.out:
        write_out(args.out, docs, operator, gateway)

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: {checked} objects valid for Kubernetes {', '.join(KUBERNETES_VERSIONS)}; "
          f"policy holds; the operator holds {grants} grants")


if __name__ == "__main__":
    main()
