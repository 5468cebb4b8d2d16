"""Tenants on the real control plane: what the engine refuses from a tenant's Git, and what RBAC refuses its people.

Two tenants are created with `kubectl gitops create tenant`, each with its own Git repository
and people (client certificates from `dev kubeconfig`). Tenant A's repository then tries, one
path per attack, to reach past its slice; each attack path also holds a harmless ConfigMap, so
"nothing of that sync applied" is checked on the cluster, not taken from the plugin's word.
Tenant B's apps are checked unchanged after all of it. No admission webhook is installed: these
are the engine's checks and RBAC alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import resources
from tests.e2e.conftest import DevCluster
from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import configmap, docs
from tests.helpers import Run, gitops, kubectl

RBAC = "rbac.authorization.k8s.io/v1"


@dataclass(frozen=True)
class Team:
    tenant: str
    ns: str
    person: str
    group: str
    repo: GitRepo
    person_kubeconfig: str

    @property
    def applier(self) -> str:
        return f"tenant-{self.tenant}-applier"


@dataclass(frozen=True)
class Land:
    admin: str
    a: Team
    b: Team


def _team(dev: DevCluster, tmp: Path, letter: str, suffix: str) -> Team:
    tenant, person, group = f"t{letter}-{suffix}", f"{letter}-person-{suffix}", f"team-{letter}-{suffix}"
    repo = GitRepo(tmp / f"repo-{letter}")
    path = tmp / f"{person}.kubeconfig"
    path.write_text(gitops("dev", "kubeconfig", "--name", dev.name, "--user", person, "--group", group).stdout)
    return Team(tenant, f"{tenant}-apps", person, group, repo, str(path))


@pytest.fixture(scope="module")
def land(dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Land]:
    admin = dev_cluster.kubeconfig
    gitops("install", "--no-webhook", kubeconfig=admin)
    suffix = uuid.uuid4().hex[:5]
    tmp = tmp_path_factory.mktemp("tenancy")
    a, b = _team(dev_cluster, tmp, "a", suffix), _team(dev_cluster, tmp, "b", suffix)
    for team in (a, b):
        team.repo.write("apps/app.yaml", docs(configmap("app", {"team": team.tenant}), _own_role(), _bind_own()))
        team.repo.commit("apps")
        gitops("create", "tenant", team.tenant, "--namespace", team.ns, "--user", team.person, "--group",
               team.group, "--source-url", team.repo.url, kubeconfig=admin)
    yield Land(admin, a, b)
    for team in (a, b):
        gitops("delete", "tenant", team.tenant, "--cascade", kubeconfig=admin, check=False)


def _own_role() -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}


def _bind_own() -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}]}


# ------------------------------------------------------------------ driving


def _apply(admin: str, *objs: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-", kubeconfig=admin,
            input=docs(*objs))


def _source_and_sync(team: Team, sync: str, path: str, url: str = "", **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("service_account", team.applier)
    return [resources.git_source(f"src-{sync}", team.ns, url or team.repo.url, branch="main"),
            resources.sync(sync, team.ns, f"src-{sync}", path, **kwargs)]


def _sync(admin: str, team: Team, name: str) -> tuple[Run, dict[str, Any]]:
    run = gitops("-n", team.ns, "sync", name, "-o", "json", kubeconfig=admin, check=False, timeout=120)
    try:
        data = json.loads(run.stdout)
    except json.JSONDecodeError:
        data = {}
    return run, data


def _exists(admin: str, kind: str, name: str, ns: str | None = None) -> bool:
    args = ["get", kind, name, "-o", "name", *(["-n", ns] if ns else [])]
    got = kubectl(*args, kubeconfig=admin, check=False)
    if got.returncode != 0:
        assert "NotFound" in got.stderr, got.stderr
    return got.returncode == 0


def _ready(admin: str, team: Team, sync: str) -> dict[str, Any]:
    obj = json.loads(kubectl("-n", team.ns, "get", "syncs.kubectl-gitops.dev", sync, "-o", "json",
                             kubeconfig=admin).stdout)
    found: dict[str, Any] = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return found


def _data(admin: str, ns: str, name: str) -> dict[str, str]:
    out: dict[str, str] = json.loads(kubectl("-n", ns, "get", "configmap", name, "-o", "json",
                                             kubeconfig=admin).stdout)["data"]
    return out


# ------------------------------------------------------------------ legitimate paths


def test_each_tenant_syncs_its_own_apps_as_its_applier(land: Land) -> None:
    for team in (land.a, land.b):
        _apply(land.admin, *_source_and_sync(team, "apps", "apps", prune=True))
        run, data = _sync(land.admin, team, "apps")
        assert run.returncode == 0 and data["ready"] is True, run.output
        assert _data(land.admin, team.ns, "app") == {"team": team.tenant}
        assert _exists(land.admin, "rolebinding", "reader", team.ns)
    # Applied as the tenant's applier: the applier may do it, the default applier is not who did it.
    can = kubectl("auth", "can-i", "create", "configmaps", "-n", land.a.ns,
                  f"--as=system:serviceaccount:kubectl-gitops-system:{land.a.applier}", kubeconfig=land.admin,
                  check=False)
    assert can.stdout.strip() == "yes", can.output
    cannot = kubectl("auth", "can-i", "create", "configmaps", "-n", land.b.ns,
                     f"--as=system:serviceaccount:kubectl-gitops-system:{land.a.applier}", kubeconfig=land.admin,
                     check=False)
    assert cannot.stdout.strip() == "no", cannot.output


def test_tenant_people_read_and_edit_their_namespace_only(land: Land) -> None:
    a = land.a
    kubectl("-n", a.ns, "get", "configmaps", kubeconfig=a.person_kubeconfig)
    kubectl("-n", a.ns, "create", "configmap", "by-hand", "--from-literal=x=1", kubeconfig=a.person_kubeconfig)
    kubectl("-n", a.ns, "get", "syncs.kubectl-gitops.dev", kubeconfig=a.person_kubeconfig)
    other = kubectl("-n", land.b.ns, "get", "configmaps", kubeconfig=a.person_kubeconfig, check=False)
    assert other.returncode != 0 and "forbidden" in other.stderr.lower(), other.output


def test_tenant_people_can_neither_impersonate_the_applier_nor_mint_its_token(land: Land) -> None:
    a = land.a
    applier = f"system:serviceaccount:kubectl-gitops-system:{a.applier}"
    impersonate = kubectl("-n", a.ns, "get", "configmaps", f"--as={applier}", kubeconfig=a.person_kubeconfig,
                          check=False)
    assert impersonate.returncode != 0 and "cannot impersonate" in impersonate.stderr, impersonate.output
    token = kubectl("-n", "kubectl-gitops-system", "create", "token", a.applier, kubeconfig=a.person_kubeconfig,
                    check=False)
    assert token.returncode != 0 and "forbidden" in token.stderr.lower(), token.output


def test_a_platform_operator_syncs_a_tenants_sync_through_the_install_roles(land: Land, dev_cluster: DevCluster,
                                                                            tmp_path: Path) -> None:
    """Not only cluster-admin: a person bound to kubectl-gitops-operator and kubectl-gitops-tenant-operator
    (which aggregates each tenant's impersonation role) can run the engine for a tenant's Sync."""
    admin, a = land.admin, land.a
    operator = f"operator-{uuid.uuid4().hex[:5]}"
    path = tmp_path / "operator.kubeconfig"
    path.write_text(gitops("dev", "kubeconfig", "--name", dev_cluster.name, "--user", operator).stdout)
    for role in ("kubectl-gitops-operator", "kubectl-gitops-tenant-operator"):
        kubectl("create", "clusterrolebinding", f"{operator}-{role}", f"--clusterrole={role}", f"--user={operator}",
                kubeconfig=admin)
    try:
        _apply(admin, *_source_and_sync(a, "by-operator", "apps"))
        run = gitops("-n", a.ns, "sync", "by-operator", kubeconfig=str(path), check=False)
        assert run.returncode == 0, run.output
        applier = f"system:serviceaccount:kubectl-gitops-system:{land.b.applier}"
        other = kubectl("auth", "can-i", "impersonate", "serviceaccounts/" + land.b.applier, "-n",
                        "kubectl-gitops-system", kubeconfig=str(path), check=False)
        assert other.stdout.strip() == "yes", (applier, other.output)  # each tenant's role is aggregated
        default = kubectl("auth", "can-i", "impersonate", "serviceaccounts/default", "-n", a.ns,
                          kubeconfig=str(path), check=False)
        assert default.stdout.strip() == "no", default.output
    finally:
        for role in ("kubectl-gitops-operator", "kubectl-gitops-tenant-operator"):
            kubectl("delete", "clusterrolebinding", f"{operator}-{role}", kubeconfig=admin, check=False)


# ------------------------------------------------------------------ attacks from a tenant's Git


def _cluster_role(name: str) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": name},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}


def _crb(name: str) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "x"}]}


def _binding(name: str, kind: str, role: str) -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}]}


def _escalating_role() -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "sneaky"},
            "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                       "verbs": ["escalate", "bind"]}]}


def _nested_sync(team: Team, other_ns: str) -> dict[str, Any]:
    """A Sync in the tenant's Git whose sourceRef points at a GitSource of another namespace."""
    obj = resources.sync("nested", team.ns, "src-apps", "./", service_account=team.applier)
    obj["spec"]["sourceRef"]["namespace"] = other_ns
    return obj


def _attack_objects(land: Land, tag: str) -> dict[str, list[Any]]:
    """Attack name -> (objects in the tenant's Git). Each is a separate path of tenant A's repository."""
    b_ns = land.b.ns
    return {
        "other-namespace": [configmap("intruder", {"x": "1"}, namespace=b_ns)],
        "cluster-role-binding": [_crb(f"evil-{tag}")],
        "cluster-role": [_cluster_role(f"evil-{tag}")],
        "bind-cluster-admin": [_binding("admin-me", "ClusterRole", "cluster-admin")],
        "bind-escalating-role": [_escalating_role(), _binding("sneaky", "Role", "sneaky")],
        "nested-sync-other-source": [_nested_sync(land.a, b_ns)],
        "namespace": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"evil-{tag}"}}],
        "tenant": [{"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": f"evil-{tag}"},
                    "spec": {"namespaces": [b_ns]}}],
        "crd": [{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                 "metadata": {"name": f"evils.e{tag}.example.com"},
                 "spec": {"group": f"e{tag}.example.com", "scope": "Namespaced",
                          "names": {"kind": "Evil", "plural": "evils"},
                          "versions": [{"name": "v1", "served": True, "storage": True,
                                        "schema": {"openAPIV3Schema": {"type": "object"}}}]}}],
        "webhook": [{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                     "metadata": {"name": f"evil-{tag}"}, "webhooks": []}],
    }


RULES = {
    "other-namespace": "[namespaces]", "cluster-role-binding": "[kinds.never]", "cluster-role": "[kinds.never]",
    "bind-cluster-admin": "[roles]", "bind-escalating-role": "[roles.verbs]",
    "nested-sync-other-source": "[crossNamespaceRefs]", "namespace": "[kinds.never]", "tenant": "[kinds.never]",
    "crd": "[kinds.never]", "webhook": "[kinds.never]",
}


def _refused(land: Land, sync: str, rule: str) -> None:
    run, data = _sync(land.admin, land.a, sync)
    assert run.returncode == 1, run.output
    assert data["reason"] == "TenantViolation", run.output
    assert rule in data["message"] and f"Tenant {land.a.tenant}" in data["message"], data["message"]
    assert data["counts"] == {} or not any(data["counts"].values()), data
    ready = _ready(land.admin, land.a, sync)
    assert ready["status"] == "False" and ready["reason"] == "TenantViolation" and rule in ready["message"]


def test_a_tenant_repository_cannot_reach_past_its_slice(land: Land) -> None:
    a, tag = land.a, uuid.uuid4().hex[:5]
    attacks = _attack_objects(land, tag)
    for attack, objs in attacks.items():
        a.repo.write(f"attacks/{attack}/all.yaml", docs(configmap(f"marker-{attack}"), *objs))
    a.repo.commit("attacks")
    objs = [o for attack in attacks for o in _source_and_sync(a, f"atk-{attack}", f"attacks/{attack}")]
    _apply(land.admin, *objs)
    for attack in attacks:
        _refused(land, f"atk-{attack}", RULES[attack])
        assert not _exists(land.admin, "configmap", f"marker-{attack}", a.ns), f"{attack}: something was applied"
    assert not _exists(land.admin, "configmap", "intruder", land.b.ns)
    for kind in ("clusterrolebinding", "clusterrole", "namespace", "tenants.kubectl-gitops.dev",
                 "validatingwebhookconfiguration"):
        assert not _exists(land.admin, kind, f"evil-{tag}")
    assert not _exists(land.admin, "crd", f"evils.e{tag}.example.com")
    assert not _exists(land.admin, "rolebinding", "admin-me", a.ns)
    assert not _exists(land.admin, "role", "sneaky", a.ns)
    _other_tenant_unaffected(land)


@pytest.mark.parametrize(("attack", "rule"), [
    ("no-service-account", "[applier]"),
    ("other-service-account", "[applier]"),
    ("other-tenants-applier", "[applier]"),
    ("depends-on-other-namespace", "[crossNamespaceRefs]"),
    ("target-namespace-outside", "[targetNamespace]"),
    ("url-not-allowed", "[sourceURLs]"),
])
def test_a_tenant_sync_is_refused_before_anything_is_fetched(land: Land, attack: str, rule: str) -> None:
    a, b = land.a, land.b
    kwargs: dict[str, Any] = {
        "no-service-account": {"service_account": ""},
        "other-service-account": {"service_account": "default"},
        "other-tenants-applier": {"service_account": b.applier},
        "depends-on-other-namespace": {"depends_on": [f"{b.ns}/apps"]},
        "target-namespace-outside": {"target_namespace": b.ns},
        "url-not-allowed": {"url": b.repo.url},
    }[attack]
    url = kwargs.pop("url", "")
    _apply(land.admin, *_source_and_sync(a, f"pre-{attack}", "apps", url=url, **kwargs))
    _refused(land, f"pre-{attack}", rule)
    source = json.loads(kubectl("-n", a.ns, "get", "gitsources.kubectl-gitops.dev", f"src-pre-{attack}", "-o",
                                "json", kubeconfig=land.admin).stdout)
    assert "artifact" not in (source.get("status") or {}), f"{attack}: the source was fetched: {source}"
    _other_tenant_unaffected(land)


def test_a_file_url_needs_a_file_glob_in_the_tenant_not_just_star(land: Land, dev_cluster: DevCluster,
                                                                  tmp_path: Path) -> None:
    """`--source-url '*'` lets a tenant pull any remote URL, never the syncing machine's disk: tenant B's
    checkout is a file:// URL away."""
    admin = land.admin
    team = _team(dev_cluster, tmp_path, "d", uuid.uuid4().hex[:5])
    gitops("create", "tenant", team.tenant, "--namespace", team.ns, "--source-url", "*", kubeconfig=admin)
    try:
        _apply(admin, *_source_and_sync(team, "steal", "apps", url=land.b.repo.url))
        run, data = _sync(admin, team, "steal")
        assert run.returncode == 1 and data["reason"] == "TenantViolation", run.output
        assert "[sourceURLs]" in data["message"] and "local path" in data["message"], data["message"]
        assert not _exists(admin, "configmap", "app", team.ns)
    finally:
        gitops("delete", "tenant", team.tenant, "--cascade", kubeconfig=admin, check=False)


def _other_tenant_unaffected(land: Land) -> None:
    b = land.b
    assert _data(land.admin, b.ns, "app") == {"team": b.tenant}
    run, data = _sync(land.admin, b, "apps")
    assert run.returncode == 0 and data["ready"] is True, run.output


# ------------------------------------------------------------------ the CLI around tenants


def test_get_tenants_shows_namespaces_syncs_and_violations(land: Land) -> None:
    table = gitops("get", "tenants", kubeconfig=land.admin).stdout
    line = next(row for row in table.splitlines() if row.startswith(land.a.tenant + " "))
    assert land.a.ns in line, table
    listed = json.loads(gitops("get", "tenants", "-o", "json", kubeconfig=land.admin).stdout)
    mine = next(t for t in listed["items"] if t["metadata"]["name"] == land.a.tenant)
    assert mine["summary"]["syncs"] >= 1 and mine["summary"]["violations"] >= 1, mine["summary"]
    wide = gitops("get", "tenant", land.a.tenant, "-o", "wide", kubeconfig=land.admin).stdout
    assert land.a.applier in wide and f"Tenant {land.a.tenant} refuses" in wide, wide
    one = yaml.safe_load(gitops("get", "tenant", land.b.tenant, "-o", "yaml", kubeconfig=land.admin).stdout)
    assert one["summary"]["violations"] == 0, one["summary"]
    # The runs recorded on the Tenants themselves (printer columns, `kubectl get tenants`).
    status = json.loads(kubectl("get", "tenants.kubectl-gitops.dev", land.a.tenant, "-o", "json",
                                kubeconfig=land.admin).stdout).get("status") or {}
    assert land.a.ns in status.get("namespaces", ""), status
    assert status.get("syncs", 0) >= 1, status
    assert f"Tenant {land.a.tenant} refuses" in status["lastViolation"]["message"], status
    assert status["lastViolation"]["rule"], status
    other = json.loads(kubectl("get", "tenants.kubectl-gitops.dev", land.b.tenant, "-o", "json",
                               kubeconfig=land.admin).stdout).get("status") or {}
    assert "lastViolation" not in other and other.get("syncs", 0) >= 1, other


def test_delete_tenant_refuses_while_it_has_syncs_unless_cascade(dev_cluster: DevCluster,
                                                                  tmp_path: Path) -> None:
    admin = dev_cluster.kubeconfig
    gitops("install", "--no-webhook", kubeconfig=admin)
    team = _team(dev_cluster, tmp_path, "c", uuid.uuid4().hex[:5])
    team.repo.write("apps/app.yaml", docs(configmap("app"))).commit()
    gitops("create", "tenant", team.tenant, "--namespace", team.ns, "--user", team.person, "--source-url",
           team.repo.url, kubeconfig=admin)
    try:
        again = gitops("create", "tenant", team.tenant, "--namespace", team.ns, "--user", team.person,
                       "--source-url", team.repo.url, kubeconfig=admin)
        assert "applied" in again.stdout  # idempotent
        _apply(admin, *_source_and_sync(team, "apps", "apps"))
        run, _ = _sync(admin, team, "apps")
        assert run.returncode == 0, run.output
        refused = gitops("delete", "tenant", team.tenant, kubeconfig=admin, check=False)
        assert refused.returncode != 0 and "still has 1 Sync" in refused.stderr, refused.output
        assert _exists(admin, "tenants.kubectl-gitops.dev", team.tenant)
        gitops("delete", "tenant", team.tenant, "--cascade", kubeconfig=admin)
        assert not _exists(admin, "tenants.kubectl-gitops.dev", team.tenant)
        assert not _exists(admin, "serviceaccount", team.applier, "kubectl-gitops-system")
        assert not _exists(admin, "clusterrole", f"kubectl-gitops:tenant:{team.tenant}:applier")
        phase = kubectl("get", "namespace", team.ns, "-o", "jsonpath={.status.phase}", kubeconfig=admin, check=False)
        assert phase.returncode != 0 or phase.stdout == "Terminating", phase.output
    finally:
        gitops("delete", "tenant", team.tenant, "--cascade", kubeconfig=admin, check=False)
