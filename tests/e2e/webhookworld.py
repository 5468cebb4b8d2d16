"""The drift guard's e2e world: a dev control plane with the webhook, its users, one managed app per test.

Shared by tests/e2e/test_webhook.py (how people are refused, modes, outage) and
tests/e2e/test_guard_attacks.py (the ways around the guard). Each module starts its own
control plane (`dev up --webhook`, named by the module) through `webhook_cluster`, because some
tests stop the webhook process; users: bob (`edit` role in each test namespace), admin
(system:masters, *not* the applier) and alice (the break-glass group, `edit` rights).

The webhook serves Sync lookups from watches (webhook/lookup.py, docs/webhook.md): a change is seen
when its watch event arrives, not at once, so tests that read the revision in a message first wait
until the guard reports it, and mode changes are polled for (at most MODE_WAIT).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.constants import BREAK_GLASS_GROUP, LABEL_SYNC
from tests.e2e.gitrepo import GitRepo
from tests.helpers import Run, gitops, kubectl, run

CACHE_TTL = 5.0  # an upper bound on how long a Sync change takes to reach the webhook's watches (was the TTL)
MODE_WAIT = 3 * CACHE_TTL  # how long a mode change may take to be seen, with room for a slow machine

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1
---
# No replicas in Git: an autoscaler (or a person) owns them, the guard must not.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: autoscaled
spec:
  selector: {matchLabels: {app: autoscaled}}
  template:
    metadata: {labels: {app: autoscaled}}
    spec:
      containers:
        - name: app
          image: nginx:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
"""

# ------------------------------------------------------------------ cluster and users


@dataclass(frozen=True)
class Cluster:
    name: str
    kubeconfig: str  # admin: system:masters, not the applier
    users: dict[str, str]  # user name -> kubeconfig path (admin included)


USERS = (("bob", "devs"), ("alice", BREAK_GLASS_GROUP))
"""(user, group) made by `webhook_cluster` unless a module asks for others."""


def webhook_cluster(name: str, tmp_path_factory: pytest.TempPathFactory,
                    people: tuple[tuple[str, str], ...] = USERS) -> Iterator[Cluster]:
    """Body of a module's `wh` fixture: start the named control plane with the webhook, stop it after."""
    up = gitops("dev", "up", "--name", name, "--webhook", check=False, timeout=5400)
    if up.returncode != 0:
        pytest.fail(f"the dev control plane with the webhook did not start:\n{up.output}", pytrace=False)
    try:
        admin = gitops("dev", "kubeconfig", "--name", name, "--path").stdout.strip()
        home = tmp_path_factory.mktemp("users")
        users = {"admin": admin}
        for user, group in people:
            path = home / f"{user}.kubeconfig"
            path.write_text(gitops("dev", "kubeconfig", "--name", name, "--user", user, "--group", group).stdout)
            users[user] = str(path)
        # Break-glass members get ordinary edit rights; their group is what the guard looks at.
        if any(group == BREAK_GLASS_GROUP for _, group in people):
            _apply(admin, kubectl("create", "clusterrolebinding", "e2e-break-glass-edit", "--clusterrole=edit",
                                  f"--group={BREAK_GLASS_GROUP}", "--dry-run=client", "-o", "yaml",
                                  kubeconfig=admin).stdout)
        yield Cluster(name, admin, users)
    finally:
        gitops("dev", "down", "--name", name, check=False)


def _apply(kubeconfig: str, manifest: str) -> None:
    kubectl("apply", "-f", "-", input=manifest, kubeconfig=kubeconfig)


# ------------------------------------------------------------------ one managed app per test


@dataclass(frozen=True)
class App:
    cluster: Cluster
    ns: str
    repo: GitRepo
    sync: str = "s"
    path: str = "apps"

    @property
    def revision(self) -> str:
        return f"main@sha1:{self.repo.head()}"

    def kubectl(self, user: str, *args: str, **env: str) -> Run:
        """kubectl in the app's namespace as `user`; never raises (refusals are the point)."""
        return run(["kubectl", "-n", self.ns, *args], kubeconfig=self.cluster.users[user], check=False,
                   timeout=120, **env)

    def admin(self, *args: str) -> Run:
        return kubectl("-n", self.ns, *args, kubeconfig=self.cluster.kubeconfig)

    def gitops(self, *args: str, check: bool = True) -> Run:
        return gitops("-n", self.ns, *args, kubeconfig=self.cluster.kubeconfig, check=check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.admin("get", kind, name, "-o", "json").stdout)
        return obj

    def exists(self, kind: str, name: str) -> bool:
        got = kubectl("-n", self.ns, "get", kind, name, kubeconfig=self.cluster.kubeconfig, check=False)
        return got.returncode == 0

    def image(self, name: str = "web") -> str:
        return str(self.get("deployment", name)["spec"]["template"]["spec"]["containers"][0]["image"])

    def replicas(self, name: str = "web") -> int:
        return int(self.get("deployment", name)["spec"]["replicas"])


def _ns_name(request: pytest.FixtureRequest) -> str:
    # Short, like real namespaces: warnings have 120 characters for the Sync, the field and the advice.
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower().removeprefix("test_"))[:22].strip("-")
    return f"{base}-{uuid.uuid4().hex[:5]}"


@pytest.fixture
def make_app(wh: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., App]]:
    """`make_app(*sync_flags, manifest=APP)`: namespace, bob's edit RoleBinding, Git repo, source, Sync; synced."""
    made: list[str] = []

    def make(*sync_flags: str, manifest: str = APP) -> App:
        ns = _ns_name(request)
        kubectl("create", "namespace", ns, kubeconfig=wh.kubeconfig)
        made.append(ns)
        kubectl("-n", ns, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
                kubeconfig=wh.kubeconfig)
        repo = GitRepo(tmp_path / f"repo-{len(made)}")
        repo.write("apps/app.yaml", manifest).commit("app")
        app = App(wh, ns, repo)
        app.gitops("create", "source", "s", "--url", repo.url, "--branch", "main")
        app.gitops("create", "sync", app.sync, "--source", "s", "--path", app.path, "--prune", *sync_flags)
        out = app.gitops("sync", app.sync)
        assert "ReconciliationSucceeded" in out.output, out.output
        return app

    yield make
    for ns in made:
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", kubeconfig=wh.kubeconfig,
                check=False)


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    """An enforce-mode app whose revision the guard already knows (its cache refreshed)."""
    app = make_app()
    wait_for_guard(app, lambda r: app.revision in r.stderr)
    return app


def wait_for_guard(app: App, seen: Callable[[Run], bool], timeout: float = MODE_WAIT) -> Run:
    """Probe with a server-side dry run (changes nothing) until the guard's answer satisfies `seen`."""
    deadline = time.monotonic() + timeout
    while True:
        probe = app.kubectl("admin", "label", "deployment", "web", f"{LABEL_SYNC}-", "--dry-run=server")
        if seen(probe) or time.monotonic() > deadline:
            return probe
        time.sleep(0.5)


def retry_until(action: Callable[[], Run], ok: Callable[[Run], bool], timeout: float = MODE_WAIT) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        result = action()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


# ------------------------------------------------------------------ assertions


def guarded(obj: dict[str, Any]) -> dict[str, Any]:
    """What a refused request must leave as it was (status and controller bookkeeping move on)."""
    meta = obj["metadata"]
    notes = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith("deployment.kubernetes")}
    return {"uid": meta["uid"], "labels": meta.get("labels"), "annotations": notes,
            "deleting": meta.get("deletionTimestamp"), "spec": obj.get("spec"), "data": obj.get("data")}


def denial(result: Run) -> str:
    """The webhook's own message out of kubectl's stderr (kubectl adds its prefixes and hints)."""
    assert result.returncode != 0, f"expected a refusal, got success:\n{result.output}"
    marker = "denied the request: "
    assert marker in result.stderr, result.stderr
    message = result.stderr.split(marker, 1)[1]
    # `kubectl edit` appends its own hint about the saved copy; it is not the webhook's.
    return message.split("\nYou can run `kubectl replace", 1)[0].strip()


def assert_refused(app: App, result: Run, field: str, kind: str = "Deployment", name: str = "web") -> str:
    message = denial(result)
    lines = message.splitlines()
    assert len(lines) <= 2, f"message longer than 2 lines:\n{message}"
    assert f"{kind} {app.ns}/{name} is managed by Sync {app.ns}/{app.sync}" in lines[0], message
    assert f"source {app.repo.url}" in lines[0], message
    assert f"path {app.path}" in lines[0], message
    assert f"revision {app.revision}" in lines[0], message
    assert field in lines[0], message
    assert "refused" in lines[0], message
    assert lines[-1] == (f"Change it in Git, or suspend the Sync: kubectl gitops suspend sync {app.sync} "
                         f"-n {app.ns}"), message
    return message


def warnings(result: Run) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]


def assert_one_warning(result: Run, head: str, field_leaf: str, advice: str) -> None:
    """One admission warning, within the API server's 120 characters, that keeps the way forward.

    Namespaces here are long (named after the test), so the field path may be shortened from the
    left; the advice at the end never is.
    """
    got = warnings(result)
    assert len(got) == 1, result.stderr
    text = got[0].removeprefix("Warning: ")
    assert text.startswith(head), text
    assert text.endswith(field_leaf + advice), text
    assert len(text) <= 120, text
