"""`kubectl gitops audit` on the real control plane with the real webhook.

One cluster for the module (webhookworld): first it holds only what GitOps made (a synced app, a
Tenant from `create tenant`) and the audit must find nothing, twice with the same bytes; then every
violation the audit knows is seeded once, the way they get into real clusters past admission (the
platform's admin, who the tenancy webhook does not judge; a Sync in warn mode; another field
manager applying the same fields; RBAC made by hand; webhook configurations edited), and each must
be reported exactly once with its rule id, on the right object. The webhook's probe rules
(caBundle, certificate expiry, endpoint, client authentication) are covered by unit tests
(tests/unit/test_audit_rules.py): seeding them here would stop the webhook the others need.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from jsonschema import Draft4Validator

from tests.e2e.gitrepo import GitRepo
from tests.e2e.webhookworld import APP, Cluster, webhook_cluster
from tests.helpers import Run, gitops, kubectl

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
CLUSTER = "audit-e2e"
PEOPLE = (("bob", "devs"), ("tina", "team-a"))
SETTINGS = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n"
"""No break-glass member: webhookworld would give that group `edit` cluster-wide, which (rightly)
lets it impersonate every applier, and the clean cluster must be clean."""


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory, people=PEOPLE)


def audit(wh: Cluster, *args: str) -> Run:
    return gitops("audit", *args, kubeconfig=wh.kubeconfig, check=False, timeout=300)


def findings(run: Run) -> list[dict[str, Any]]:
    assert run.returncode in (0, 1), run.output
    doc = json.loads(run.stdout)
    assert doc["errors"] == [], doc["errors"]
    found: list[dict[str, Any]] = doc["findings"]
    return found


def admin(wh: Cluster, *args: str, input: str | None = None) -> Run:
    return kubectl(*args, kubeconfig=wh.kubeconfig, input=input)


def short(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


def synced_app(wh: Cluster, tmp_path: Path, ns: str, *sync_flags: str) -> GitRepo:
    admin(wh, "create", "namespace", ns)
    repo = GitRepo(tmp_path / ns)
    repo.write("apps/app.yaml", APP).commit("app")
    gitops("-n", ns, "create", "source", "s", "--url", repo.url, "--branch", "main", kubeconfig=wh.kubeconfig)
    gitops("-n", ns, "create", "sync", "s", "--source", "s", "--path", "apps", "--prune", *sync_flags,
           kubeconfig=wh.kubeconfig)
    out = gitops("-n", ns, "sync", "s", kubeconfig=wh.kubeconfig)
    assert "ReconciliationSucceeded" in out.output, out.output
    return repo


# ------------------------------------------------------------------ a clean cluster


@pytest.fixture(scope="module")
def clean(wh: Cluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """What GitOps itself makes: a synced app and a Tenant with its namespace, applier and RBAC."""
    ns = short("clean")
    synced_app(wh, tmp_path_factory.mktemp("clean"), ns)
    gitops("create", "tenant", "team-a", "--namespace", short("ta"), "--user", "tina", kubeconfig=wh.kubeconfig)
    return ns


def test_a_clean_cluster_reports_nothing_and_the_same_bytes_twice(wh: Cluster, clean: str) -> None:
    first = audit(wh, "-A", "-o", "json")
    assert first.returncode == 0, first.output
    assert findings(first) == []
    second = audit(wh, "-A", "-o", "json")
    assert second.stdout == first.stdout
    table = audit(wh, "-A")
    assert table.returncode == 0 and "no findings" in table.stdout, table.output


# ------------------------------------------------------------------ one of every violation


@pytest.fixture(scope="module")
def seeded(wh: Cluster, clean: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Seed one instance of each violation; returns rule id -> (kind, `namespace/name` or name)."""
    tmp = tmp_path_factory.mktemp("seeded")
    want: dict[str, tuple[str, str]] = {}
    tenant_ns = json.loads(admin(wh, "get", "tenants.kubectl-gitops.dev", "team-a", "-o", "json").stdout)[
        "spec"]["namespaces"][0]

    # The platform's admin is not judged by the tenancy webhook: a grant no Tenant allows gets in.
    admin(wh, "-n", tenant_ns, "create", "rolebinding", "tina-root", "--clusterrole=cluster-admin", "--user=tina")
    want["tenancy/boundary"] = ("RoleBinding", f"{tenant_ns}/tina-root")
    root = short("tina-root")
    admin(wh, "create", "clusterrolebinding", root, "--clusterrole=cluster-admin", "--user=tina")
    want["rbac/tenant-escalation"] = ("ClusterRoleBinding", root)

    # A Sync in warn mode lets the edit through; another manager applies the same value as Git.
    app = short("app")
    synced_app(wh, tmp, app, "--drift-guard", "warn")
    admin(wh, "-n", app, "patch", "deployment", "web", "-p", '{"spec":{"replicas":5}}')
    want["drift/changed"] = ("Deployment", f"{app}/web")
    same = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"a":"1"}}'
    admin(wh, "-n", app, "apply", "--server-side", "--field-manager=intruder", "-f", "-", input=same)
    want["drift/ownership"] = ("ConfigMap", f"{app}/cfg")
    admin(wh, "-n", app, "create", "configmap", "stray", "--from-literal=made=by-hand")
    want["orphan/unowned"] = ("ConfigMap", f"{app}/stray")

    # Syncs: a dependency cycle (Stalled), a missing source (not Ready) with its own applier that
    # `edit` in its namespace may impersonate, and one suspended.
    stalled = short("stall")
    admin(wh, "create", "namespace", stalled)
    gitops("-n", stalled, "create", "sync", "c", "--source", "none", "--path", ".", "--depends-on", "c",
           kubeconfig=wh.kubeconfig)
    gitops("-n", stalled, "sync", "c", kubeconfig=wh.kubeconfig, check=False)
    want["sync/stalled"] = ("Sync", f"{stalled}/c")
    imp = short("imp")
    admin(wh, "create", "namespace", imp)
    admin(wh, "-n", imp, "create", "serviceaccount", "imp-applier")
    admin(wh, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "s", "namespace": imp},
        "spec": {"sourceRef": {"name": "none"}, "path": ".", "prune": False, "serviceAccountName": "imp-applier"}}))
    gitops("-n", imp, "sync", "s", kubeconfig=wh.kubeconfig, check=False)
    want["sync/not-ready"] = ("Sync", f"{imp}/s")
    admin(wh, "-n", imp, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob")
    want["rbac/applier-impersonation"] = ("RoleBinding", f"{imp}/bob-edit")
    suspended = short("susp")
    admin(wh, "create", "namespace", suspended)
    gitops("-n", suspended, "create", "sync", "s", "--source", "none", "--path", ".", kubeconfig=wh.kubeconfig)
    gitops("-n", suspended, "suspend", "sync", "s", kubeconfig=wh.kubeconfig)
    want["sync/suspended"] = ("Sync", f"{suspended}/s")

    # Signatures: a namespace synced unsigned, then put in an enforcing TrustPolicy's scope: what was
    # applied before the policy existed has no signature.
    sig = short("sig")
    admin(wh, "create", "namespace", sig)
    repo = GitRepo(tmp / sig)
    repo.write("apps/cm.yaml", SETTINGS).commit("settings")
    gitops("-n", sig, "create", "source", "s", "--url", repo.url, "--branch", "main", kubeconfig=wh.kubeconfig)
    gitops("-n", sig, "create", "sync", "s", "--source", "s", "--path", "apps", kubeconfig=wh.kubeconfig)
    assert "ReconciliationSucceeded" in gitops("-n", sig, "sync", "s", kubeconfig=wh.kubeconfig).output
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(tmp / "alice")],
                   check=True)
    admin(wh, "apply", "-f", "-", input=json.dumps({
        "apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "TrustPolicy", "metadata": {"name": sig},
        "spec": {"keys": [{"name": "alice", "type": "ssh", "publicKey": (tmp / "alice.pub").read_text().strip()}],
                 "scope": {"namespaces": [sig]}}}))
    want["signature/missing"] = ("ConfigMap", f"{sig}/settings")

    # The webhook's configurations, edited by hand.
    admin(wh, "patch", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", "--type=json", "-p",
          '[{"op":"add","path":"/webhooks/0/namespaceSelector/matchExpressions/0/values/-","value":"team-x"}]')
    want["webhook/exclusions"] = ("ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard")
    admin(wh, "patch", "mutatingwebhookconfiguration", "kubectl-gitops-stamps", "--type=json", "-p",
          '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]')
    want["webhook/failure-policy"] = ("MutatingWebhookConfiguration", "kubectl-gitops-stamps")
    admin(wh, "delete", "validatingwebhookconfiguration", "kubectl-gitops-tenancy")
    want["webhook/configuration"] = ("Cluster", "")
    time.sleep(2)  # past --max-suspended 1s
    return want


def _where(finding: dict[str, Any]) -> tuple[str, str]:
    obj = finding["object"]
    return obj["kind"], f"{obj['namespace']}/{obj['name']}" if obj["namespace"] else obj["name"]


def test_every_seeded_violation_is_reported_exactly_once_with_its_rule(
        wh: Cluster, seeded: dict[str, tuple[str, str]]) -> None:
    run = audit(wh, "-A", "-o", "json", "--max-suspended", "1s")
    assert run.returncode == 1, run.output
    found = findings(run)
    by_rule: dict[str, list[tuple[str, str]]] = {}
    for finding in found:
        by_rule.setdefault(finding["rule"], []).append(_where(finding))
        assert finding["message"] and finding["fix"], finding
    assert by_rule == {rule: [where] for rule, where in seeded.items()}, json.dumps(found, indent=1)
    doc = json.loads(run.stdout)
    assert doc["summary"]["findings"] == len(seeded)
    assert all(doc["summary"]["byRule"][rule] == 1 for rule in seeded)
    # The same again, byte for byte: sorted, and nothing in it changes between runs.
    assert audit(wh, "-A", "-o", "json", "--max-suspended", "1s").stdout == run.stdout


def test_fail_on_and_the_namespace_scope(wh: Cluster, seeded: dict[str, tuple[str, str]]) -> None:
    app = seeded["drift/changed"][1].split("/")[0]
    in_app = audit(wh, "-n", app, "-o", "json", "--fail-on", "error")
    rules = sorted(f["rule"] for f in findings(in_app))
    assert rules == ["drift/changed", "drift/ownership", "orphan/unowned"], rules
    assert in_app.returncode == 1  # drift/changed is an error
    only_sync = audit(wh, "-n", app, "--sync", "s", "-o", "json")
    assert sorted(f["rule"] for f in findings(only_sync)) == ["drift/changed", "drift/ownership"]
    suspended = seeded["sync/suspended"][1].split("/")[0]  # one warning there, nothing else
    assert audit(wh, "-n", suspended, "--fail-on", "error", "--max-suspended", "1s").returncode == 0
    assert audit(wh, "-n", suspended, "--fail-on", "warning", "--max-suspended", "1s").returncode == 1


def test_sarif_and_junit_from_a_real_cluster_pass_their_schemas(wh: Cluster,
                                                                seeded: dict[str, tuple[str, str]]) -> None:
    sarif = json.loads(audit(wh, "-A", "-o", "sarif", "--max-suspended", "1s").stdout)
    Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())).validate(sarif)
    assert sorted(r["ruleId"] for r in sarif["runs"][0]["results"]) == sorted(seeded)
    junit = audit(wh, "-A", "-o", "junit", "--max-suspended", "1s").stdout
    xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd")).validate(junit)


def test_reports_are_objects_kubectl_gets_and_are_replaced(wh: Cluster, seeded: dict[str, tuple[str, str]]) -> None:
    run = audit(wh, "-A", "--report", "--max-suspended", "1s")
    assert run.returncode == 1, run.output
    cluster = json.loads(admin(wh, "get", "clusterauditreports", "kubectl-gitops-audit", "-o", "json").stdout)
    assert cluster["total"] == {"error": 9, "warning": 4}, cluster["total"]  # signature/missing included
    assert {r["rule"] for r in cluster["results"]} == {"rbac/tenant-escalation", "webhook/exclusions",
                                                       "webhook/failure-policy", "webhook/configuration"}
    listed = json.loads(admin(wh, "get", "auditreports", "-A", "-o", "json").stdout)["items"]
    per_ns = {r["metadata"]["namespace"]: sorted(x["rule"] for x in r["results"]) for r in listed}
    app = seeded["drift/changed"][1].split("/")[0]
    assert per_ns[app] == ["drift/changed", "drift/ownership", "orphan/unowned"]
    table = admin(wh, "get", "auditreports", "-n", app).stdout
    assert "ERRORS" in table and "WARNINGS" in table, table
    # Fix the orphan and run again: the namespace's report is replaced, not appended to.
    admin(wh, "-n", app, "delete", "configmap", "stray")
    audit(wh, "-A", "--report", "--max-suspended", "1s")
    again = json.loads(admin(wh, "get", "auditreports", "-n", app, "kubectl-gitops-audit", "-o", "json").stdout)
    assert sorted(x["rule"] for x in again["results"]) == ["drift/changed", "drift/ownership"]
