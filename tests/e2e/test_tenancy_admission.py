"""Tenancy at admission, end to end: a tenant's people and applier, refused with the rule that refused them.

Real API server, real webhook over TLS (`dev up --webhook`, cluster "tenancy-adm", its own), real
users with client certificates. The test builds two Tenants itself with kubectl (Tenant objects,
namespaces, RoleBindings giving each tenant's people `edit` in their namespace), independent of
`kubectl gitops create tenant`.

Some users hold more RBAC than a tenant's person should, on purpose, so that the webhook, not RBAC,
is what refuses: amir (a person of tenant A) is bound to cluster-admin, alice (a person of A) also has
`edit` in B's namespace, and A's applier ServiceAccount is bound to cluster-admin. The last test
switches the tenancy entries to failurePolicy Fail (as `install --fail-closed` does), stops the webhook
and checks nobody but the tenants is locked out.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import LABEL_TENANT, SYSTEM_NAMESPACE
from tests.e2e.webhookworld import Cluster, webhook_cluster
from tests.helpers import Run, gitops, kubectl, run

CLUSTER = "tenancy-adm"
TENANCY_ENTRIES = ("tenancy.kubectl-gitops.dev", "tenancy-cluster.kubectl-gitops.dev", "tenants.kubectl-gitops.dev")
WATCH_WAIT = 30.0


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory)


@dataclass(frozen=True)
class World:
    cluster: Cluster
    a: str  # tenant A (its namespace has the same name)
    b: str
    users: dict[str, str]  # short name (alice, amir, carl, bob) -> kubeconfig
    names: dict[str, str]  # short name -> username

    @property
    def applier_a(self) -> str:
        return f"system:serviceaccount:{SYSTEM_NAMESPACE}:tenant-{self.a}-applier"

    def as_user(self, user: str, *args: str, stdin: str | None = None) -> Run:
        return run(["kubectl", *args], kubeconfig=self.users[user], input=stdin, check=False, timeout=120)

    def admin(self, *args: str, stdin: str | None = None, check: bool = True) -> Run:
        return kubectl(*args, kubeconfig=self.cluster.kubeconfig, input=stdin, check=check)

    def apply_as(self, user: str, doc: dict[str, Any]) -> Run:
        return self.as_user(user, "create", "-f", "-", stdin=yaml.safe_dump(doc))


def _tenant(name: str, users: list[str], urls: list[str]) -> dict[str, Any]:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"namespaces": [name], "people": {"users": users}, "sourceURLs": urls}}


GITOPS_EDITOR = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "e2e-tenancy-gitops-editor"},
                 "rules": [{"apiGroups": ["kubectl-gitops.dev"], "resources": ["gitsources", "syncs"], "verbs": ["*"]},
                           {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"],
                            "verbs": ["create", "get", "list", "delete"]}]}


@pytest.fixture(scope="module")
def world(wh: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tag = uuid.uuid4().hex[:5]
    a, b = f"ta-{tag}", f"tb-{tag}"
    names = {short: f"{short}-{tag}" for short in ("alice", "amir", "carl", "bob")}
    home = tmp_path_factory.mktemp("tenancy-users")
    users = {}
    for short, username in names.items():
        path = home / f"{short}.kubeconfig"
        path.write_text(gitops("dev", "kubeconfig", "--name", wh.name, "--user", username).stdout)
        users[short] = str(path)
    w = World(wh, a, b, users, names)
    w.admin("apply", "-f", "-", stdin=yaml.safe_dump_all([
        _tenant(a, [names["alice"], names["amir"], names["carl"]], ["https://git.example.com/team-a/*"]),
        _tenant(b, [names["bob"]], ["https://git.example.com/team-b/*"]), GITOPS_EDITOR]))
    for ns in (a, b):
        w.admin("create", "namespace", ns)
    for ns, short in ((a, "alice"), (a, "carl"), (b, "bob"), (b, "alice")):  # alice: rights in both
        w.admin("-n", ns, "create", "rolebinding", f"{short}-edit", "--clusterrole=edit", f"--user={names[short]}")
    for ns, short in ((a, "alice"), (b, "bob"), (b, "alice")):
        w.admin("-n", ns, "create", "rolebinding", f"{short}-gitops", "--clusterrole=e2e-tenancy-gitops-editor",
                f"--user={names[short]}")
    # Too much RBAC, so that the webhook is what refuses: amir and A's applier are cluster-admins.
    w.admin("-n", SYSTEM_NAMESPACE, "create", "serviceaccount", f"tenant-{a}-applier")
    w.admin("create", "clusterrolebinding", f"e2e-{tag}-amir", "--clusterrole=cluster-admin", f"--user={names['amir']}")
    w.admin("create", "clusterrolebinding", f"e2e-{tag}-applier", "--clusterrole=cluster-admin",
            f"--serviceaccount={SYSTEM_NAMESPACE}:tenant-{a}-applier")
    _wait_for_watch(w)
    try:
        yield w
    finally:
        for kind, name in (("tenant", a), ("tenant", b), ("clusterrolebinding", f"e2e-{tag}-amir"),
                           ("clusterrolebinding", f"e2e-{tag}-applier")):
            w.admin("delete", kind, name, "--ignore-not-found", "--wait=false", check=False)
        for ns in (a, b):
            w.admin("delete", "namespace", ns, "--ignore-not-found", "--wait=false", check=False)


def _wait_for_watch(w: World) -> None:
    """The webhook learns of new Tenants through its watch: wait until a probe says it has."""
    deadline = time.monotonic() + WATCH_WAIT
    while True:
        probe = w.as_user("amir", "create", "clusterrole", "probe", "--verb=get", "--resource=pods",
                          "--dry-run=server")
        if f"Tenant {w.a} refuses" in probe.stderr or time.monotonic() > deadline:
            assert f"Tenant {w.a} refuses" in probe.stderr, probe.output
            return
        time.sleep(0.5)


def denied(result: Run) -> str:
    """The webhook's message (kubectl adds its own prefix)."""
    assert result.returncode != 0, f"expected a refusal, got success:\n{result.output}"
    marker = "denied the request: "
    assert marker in result.stderr, result.stderr
    return result.stderr.split(marker, 1)[1].strip()


def forbidden_by_rbac(result: Run) -> None:
    assert result.returncode != 0, result.output
    assert "is forbidden: User" in result.stderr and "denied the request" not in result.stderr, result.stderr


def configmap(ns: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns,
                                                                  "labels": labels or {}}, "data": {"a": "1"}}


def labels_of(w: World, *args: str) -> dict[str, str]:
    obj = json.loads(w.admin("get", *args, "-o", "json").stdout)
    return dict(obj["metadata"].get("labels") or {})


# ------------------------------------------------------------------ the tenant label


def test_tenant_namespaces_and_objects_carry_the_tenant_label(world: World) -> None:
    assert labels_of(world, "namespace", world.a)[LABEL_TENANT] == world.a
    assert world.apply_as("alice", configmap(world.a, "plain")).returncode == 0
    assert labels_of(world, "-n", world.a, "configmap", "plain")[LABEL_TENANT] == world.a
    forged = world.apply_as("alice", configmap(world.a, "forged", {LABEL_TENANT: world.b}))
    assert forged.returncode == 0, forged.output
    assert labels_of(world, "-n", world.a, "configmap", "forged")[LABEL_TENANT] == world.a


# ------------------------------------------------------------------ namespaces


def test_a_person_cant_write_in_the_other_tenants_namespace(world: World) -> None:
    w = world
    # carl has no RBAC in B's namespace: RBAC refuses.
    forbidden_by_rbac(w.apply_as("carl", configmap(w.b, "x")))
    # alice does (a RoleBinding there): the webhook refuses, naming the rule.
    assert denied(w.apply_as("alice", configmap(w.b, "x"))) == (
        f"Tenant {w.a} refuses ConfigMap {w.b}/x: namespaces: {w.b} is not one of {w.a}'s namespaces "
        f"(it belongs to Tenant {w.b})")
    # the other tenant is unaffected (and amir, a cluster-admin by RBAC, can't delete its objects)
    assert w.apply_as("bob", configmap(w.b, "mine")).returncode == 0
    assert "namespaces" in denied(w.as_user("amir", "-n", w.b, "delete", "configmap", "mine"))
    assert w.admin("-n", w.b, "get", "configmap", "mine").returncode == 0
    assert w.apply_as("alice", configmap(w.a, "mine")).returncode == 0


# ------------------------------------------------------------------ cluster-scoped and protected kinds


def test_cluster_scoped_kinds_refused(world: World) -> None:
    w = world
    forbidden_by_rbac(w.as_user("alice", "create", "clusterrolebinding", "x", "--clusterrole=view",
                                f"--user={w.names['alice']}"))
    crb = denied(w.as_user("amir", "create", "clusterrolebinding", "x", "--clusterrole=cluster-admin",
                           f"--user={w.names['amir']}"))
    assert crb == (f"Tenant {w.a} refuses ClusterRoleBinding x: kinds.cluster: cluster-scoped "
                   f"rbac.authorization.k8s.io/ClusterRoleBinding is not allowed")
    role = denied(w.as_user("amir", "create", "clusterrole", "x", "--verb=*", "--resource=*"))
    assert "kinds.cluster: cluster-scoped rbac.authorization.k8s.io/ClusterRole is not allowed" in role
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets{w.a.replace('-', '')}.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": f"widgets{w.a.replace('-', '')}", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    assert "kinds.cluster: cluster-scoped apiextensions.k8s.io/CustomResourceDefinition" in denied(
        w.apply_as("amir", crd))


def test_the_tenant_applier_cant_create_cluster_role_bindings(world: World) -> None:
    w = world
    out = w.admin("create", "clusterrolebinding", "x", "--clusterrole=cluster-admin", "--user=somebody",
                  f"--as={w.applier_a}", check=False)
    assert denied(out) == (f"Tenant {w.a} refuses ClusterRoleBinding x: kinds.cluster: cluster-scoped "
                           f"rbac.authorization.k8s.io/ClusterRoleBinding is not allowed")
    out = w.admin("-n", w.b, "create", "configmap", "x", f"--as={w.applier_a}", check=False)
    assert f"namespaces: {w.b} is not one of {w.a}'s namespaces" in denied(out)


@pytest.mark.parametrize("what", ["namespace", "tenant", "own-tenant", "label-namespace", "project-crd"])
def test_protected_kinds_never_writable_by_a_tenant(world: World, what: str) -> None:
    w = world
    attempts = {
        "namespace": ("create", "namespace", f"evil-{w.a}"),
        "tenant": ("create", "-f", "-"),
        "own-tenant": ("label", "tenant", w.a, "x=y"),
        "label-namespace": ("label", "namespace", w.b, f"{LABEL_TENANT}={w.a}", "--overwrite"),
        "project-crd": ("label", "crd", "syncs.kubectl-gitops.dev", "x=y"),
    }
    stdin = yaml.safe_dump(_tenant(f"evil-{w.a}", [w.names["amir"]], ["*"])) if what == "tenant" else None
    message = denied(w.as_user("amir", *attempts[what], stdin=stdin))
    assert message.startswith(f"Tenant {w.a} refuses ") and ": protected: " in message, message


def test_webhook_configurations_are_left_to_rbac(world: World) -> None:
    """The API server never sends webhook configurations to webhooks: only RBAC keeps tenants off them."""
    vwc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": f"evil-{world.a}"}, "webhooks": []}
    forbidden_by_rbac(world.apply_as("alice", vwc))


# ------------------------------------------------------------------ RoleBindings


def test_binding_cluster_admin_or_an_escalating_role_refused(world: World) -> None:
    w = world
    out = w.as_user("amir", "-n", w.a, "create", "rolebinding", "x", "--clusterrole=cluster-admin",
                    f"--user={w.names['carl']}")
    assert denied(out) == (f"Tenant {w.a} refuses RoleBinding {w.a}/x: roles: ClusterRole cluster-admin is never "
                           f"grantable by a tenant")
    assert "roles: ClusterRole admin is never grantable" in denied(w.as_user(
        "amir", "-n", w.a, "create", "rolebinding", "x", "--clusterrole=admin", f"--user={w.names['carl']}"))
    for verb in ("escalate", "bind", "impersonate"):
        made = w.as_user("amir", "-n", w.a, "create", "role", f"r-{verb}", f"--verb={verb}",
                         "--resource=roles.rbac.authorization.k8s.io" if verb != "impersonate" else "--resource=users")
        assert f"roles: a role granting '{verb}'" in denied(made)
    # a Role the platform made, carrying escalate: binding it is refused
    w.admin("-n", w.a, "create", "role", "escalator", "--verb=escalate", "--resource=roles.rbac.authorization.k8s.io",
            check=False)
    out = w.as_user("amir", "-n", w.a, "create", "rolebinding", "y", "--role=escalator", f"--user={w.names['carl']}")
    assert f"roles: Role {w.a}/escalator grants 'escalate'" in denied(out)
    # edit, but for someone outside the tenant
    out = w.as_user("alice", "-n", w.a, "create", "rolebinding", "z", "--clusterrole=edit", f"--user={w.names['bob']}")
    assert f"subjects: User {w.names['bob']} is not one of {w.a}'s people" in denied(out)


def test_a_teammate_gets_edit(world: World) -> None:
    out = world.as_user("alice", "-n", world.a, "create", "rolebinding", "carl-too", "--clusterrole=edit",
                        f"--user={world.names['carl']}")
    assert out.returncode == 0, out.output


# ------------------------------------------------------------------ GitSources and Syncs


def source(ns: str, name: str, url: str) -> dict[str, Any]:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
            "metadata": {"name": name, "namespace": ns}, "spec": {"url": url, "ref": {"branch": "main"}}}


def sync(ns: str, name: str, account: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"sourceRef": {"name": "src"}, "path": "./apps", "interval": "5m", "prune": True}
    if account:
        spec["serviceAccountName"] = account
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def test_git_source_urls(world: World) -> None:
    w = world
    out = w.apply_as("alice", source(w.a, "theirs", "https://git.example.com/team-b/apps"))
    assert denied(out) == (f"Tenant {w.a} refuses GitSource {w.a}/theirs: sourceURLs: "
                           f"https://git.example.com/team-b/apps matches none of https://git.example.com/team-a/*")
    ok = w.apply_as("alice", source(w.a, "src", "https://git.example.com/team-a/apps"))
    assert ok.returncode == 0, ok.output
    assert w.apply_as("bob", source(w.b, "src", "https://git.example.com/team-b/apps")).returncode == 0


def test_sync_must_name_the_tenant_applier(world: World) -> None:
    w = world
    assert f"applier: a Sync of {w.a} applies as serviceAccountName 'tenant-{w.a}-applier', not no " \
        "serviceAccountName" in denied(w.apply_as("alice", sync(w.a, "none", None)))
    assert f"not serviceAccountName 'tenant-{w.b}-applier'" in denied(
        w.apply_as("alice", sync(w.a, "other", f"tenant-{w.b}-applier")))
    ok = w.apply_as("alice", sync(w.a, "mine", f"tenant-{w.a}-applier"))
    assert ok.returncode == 0, ok.output
    relax = w.as_user("alice", "-n", w.a, "patch", "sync", "mine", "--type=merge", "-p",
                      '{"spec":{"driftGuard":"off"}}')
    assert "permissions.relaxDriftGuard: driftGuard off is not allowed" in denied(relax)


# ------------------------------------------------------------------ Tenant objects


def test_tenant_objects_validated_for_the_platform_too(world: World) -> None:
    w = world
    overlap = _tenant(f"tc-{w.a}", [], [])
    overlap["spec"]["namespaces"] = [w.a]
    assert f"spec.namespaces: {w.a} (claimed by Tenant {w.a})" in denied(w.admin(
        "create", "-f", "-", stdin=yaml.safe_dump(overlap), check=False))
    ghost = _tenant(f"tc-{w.a}", [], [])
    ghost["spec"]["roles"] = ["no-such-role"]
    assert "spec.roles: ClusterRole no-such-role does not exist" in denied(w.admin(
        "create", "-f", "-", stdin=yaml.safe_dump(ghost), check=False))
    glob = _tenant(f"tc-{w.a}", [], [])
    glob["spec"]["kinds"] = {"allow": ["apps/[Dd"]}
    assert "spec.kinds.allow: 'apps/[Dd' is not a valid glob" in denied(w.admin(
        "create", "-f", "-", stdin=yaml.safe_dump(glob), check=False))


# ------------------------------------------------------------------ no lockout (last: stops the webhook)


def _webhook_pid(name: str) -> int:
    status = json.loads(gitops("dev", "status", "--name", name, "-o", "json").stdout)
    found = [c for c in status["components"] if c["name"] == "webhook" and c["running"]]
    assert found, status
    return int(found[0]["pid"])


def _stop(pid: int) -> None:
    import os

    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if stat and stat.rsplit(")", 1)[1].split()[0] == "Z":
            return
        time.sleep(0.2)


def test_fail_closed_with_the_webhook_down_locks_out_tenants_only(world: World) -> None:
    w = world
    config = json.loads(w.admin("get", "validatingwebhookconfiguration", "kubectl-gitops-tenancy", "-o", "json").stdout)
    patch = [{"op": "replace", "path": f"/webhooks/{i}/failurePolicy", "value": "Fail"}
             for i, hook in enumerate(config["webhooks"]) if hook["name"] in TENANCY_ENTRIES]
    assert len(patch) == 3
    w.admin("patch", "validatingwebhookconfiguration", "kubectl-gitops-tenancy", "--type=json", "-p", json.dumps(patch))
    # a tenant namespace with content, to delete while the webhook is down
    doomed = f"td-{w.a}"
    w.admin("create", "namespace", doomed)
    w.admin("label", "namespace", doomed, f"{LABEL_TENANT}={w.a}", "--overwrite")
    w.admin("-n", doomed, "create", "configmap", "content", "--from-literal=a=1")
    _stop(_webhook_pid(w.cluster.name))
    try:
        # the tenants are stopped: fail closed
        out = w.apply_as("alice", configmap(w.a, "while-down"))
        assert out.returncode != 0 and "failed calling webhook" in out.stderr, out.output
        # nobody else: kube-system, the webhook's namespace, the platform's admins, namespace deletion
        for ns in ("kube-system", SYSTEM_NAMESPACE, w.a, w.b):
            w.admin("-n", ns, "create", "configmap", f"admin-{w.a}", "--from-literal=a=1")
            w.admin("-n", ns, "delete", "configmap", f"admin-{w.a}")
        w.admin("create", "clusterrole", f"admin-{w.a}", "--verb=get", "--resource=pods")
        w.admin("delete", "clusterrole", f"admin-{w.a}")
        w.admin("delete", "namespace", doomed, "--timeout=90s")
        assert w.admin("get", "namespace", doomed, check=False).returncode != 0
        # the way out for a tenant's emergency: the break-glass (webhook configurations are never sent)
        w.admin("get", "validatingwebhookconfiguration", "kubectl-gitops-tenancy")
    finally:
        back = [{**op, "value": "Ignore"} for op in patch]
        w.admin("patch", "validatingwebhookconfiguration", "kubectl-gitops-tenancy", "--type=json", "-p",
                json.dumps(back), check=False)
        gitops("dev", "up", "--name", w.cluster.name, "--webhook", check=False, timeout=300)
