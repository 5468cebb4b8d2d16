"""The drift guard end to end: the real API server calls the real webhook over TLS.

The module runs its own dev control plane with the webhook (`dev up --webhook`), not the shared
session cluster, because some tests stop the webhook process to prove the cluster is never locked
out; it is torn down at module end. Every test gets its own namespace, a real Git repository in
tmp_path, and a Sync applied by `kubectl gitops sync` (the applier identity, impersonated), and
then acts the way people do: `kubectl edit/patch/scale/label/apply/delete` as a user with `edit`
rights (bob), as a cluster admin (system:masters, which is *not* the applier), and as a member of
the break-glass group. Refusals are checked on what matters: the object is unchanged in the
cluster, and the message names the Sync, its source, path and revision, the field, and the way
forward, in at most two lines.

The webhook caches Sync lookups for 5 s (docs/webhook.md): the first lookup happens while the
Sync applies (before its status records the revision), so tests that read the revision in a
message first wait until the guard reports it, and mode changes are polled for.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.constants import BREAK_GLASS_GROUP, LABEL_SYNC, SYSTEM_NAMESPACE
from tests.e2e.gitrepo import GitRepo
from tests.helpers import Run, gitops, kubectl, run

CLUSTER = "webhook-e2e"
CACHE_TTL = 5.0  # the webhook's Sync cache (webhook serve --cache-ttl default)
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


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    up = gitops("dev", "up", "--name", CLUSTER, "--webhook", check=False, timeout=5400)
    if up.returncode != 0:
        pytest.fail(f"the dev control plane with the webhook did not start:\n{up.output}", pytrace=False)
    try:
        admin = gitops("dev", "kubeconfig", "--name", CLUSTER, "--path").stdout.strip()
        home = tmp_path_factory.mktemp("users")
        users = {"admin": admin}
        for user, group in (("bob", "devs"), ("alice", BREAK_GLASS_GROUP)):
            path = home / f"{user}.kubeconfig"
            path.write_text(gitops("dev", "kubeconfig", "--name", CLUSTER, "--user", user, "--group", group).stdout)
            users[user] = str(path)
        # Break-glass members get ordinary edit rights; their group is what the guard looks at.
        _apply(admin, kubectl("create", "clusterrolebinding", "e2e-break-glass-edit", "--clusterrole=edit",
                              f"--group={BREAK_GLASS_GROUP}", "--dry-run=client", "-o", "yaml",
                              kubeconfig=admin).stdout)
        yield Cluster(CLUSTER, admin, users)
    finally:
        gitops("dev", "down", "--name", CLUSTER, check=False)


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
    """`make_app(*sync_flags)`: namespace + bob's edit RoleBinding + Git repo + source + Sync, synced once."""
    made: list[str] = []

    def make(*sync_flags: str) -> App:
        ns = _ns_name(request)
        kubectl("create", "namespace", ns, kubeconfig=wh.kubeconfig)
        made.append(ns)
        kubectl("-n", ns, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
                kubeconfig=wh.kubeconfig)
        repo = GitRepo(tmp_path / f"repo-{len(made)}")
        repo.write("apps/app.yaml", APP).commit("app")
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


# ------------------------------------------------------------------ 1. people are refused


def _changed_manifest(app: App, image: str) -> Path:
    text = (app.repo.path / "apps" / "app.yaml").read_text().replace("image: nginx:1", f"image: {image}", 1)
    path = app.repo.path.parent / f"changed-{app.ns}.yaml"
    path.write_text(text)
    return path


# (action id, how, the field the message must name, kind, name)
EDITS: list[tuple[str, Callable[[App, str], Run], str, str, str]] = [
    ("edit", lambda a, u: a.kubectl(u, "edit", "deployment", "web",
                                    KUBE_EDITOR="sed -i -e s/nginx:1/nginx:9/"),
     "spec.template.spec.containers[name=web].image", "Deployment", "web"),
    ("patch", lambda a, u: a.kubectl(u, "patch", "deployment", "web", "-p",
                                     '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:9"}]}}}}'),
     "spec.template.spec.containers[name=web].image", "Deployment", "web"),
    ("apply", lambda a, u: a.kubectl(u, "apply", "-f", str(_changed_manifest(a, "nginx:9"))),
     "spec.template.spec.containers[name=web].image", "Deployment", "web"),
    ("set-image", lambda a, u: a.kubectl(u, "set", "image", "deployment/web", "web=nginx:9"),
     "spec.template.spec.containers[name=web].image", "Deployment", "web"),
    ("scale", lambda a, u: a.kubectl(u, "scale", "deployment", "web", "--replicas=4"),
     "spec.replicas", "Scale", "web"),
    ("patch-configmap", lambda a, u: a.kubectl(u, "patch", "configmap", "cfg", "--type=merge", "-p",
                                               '{"data":{"a":"changed"}}'),
     "data.a", "ConfigMap", "cfg"),
    ("unlabel", lambda a, u: a.kubectl(u, "label", "deployment", "web", f"{LABEL_SYNC}-"),
     f'metadata.labels["{LABEL_SYNC}"]', "Deployment", "web"),
    ("delete", lambda a, u: a.kubectl(u, "delete", "deployment", "web", "--wait=false"),
     "delete refused", "Deployment", "web"),
]


@pytest.mark.parametrize("user", ["bob", "admin"])
@pytest.mark.parametrize(("how", "field", "kind", "name"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_out_of_band_change_is_refused_with_a_two_line_message(
        app: App, user: str, how: Callable[[App, str], Run], field: str, kind: str, name: str) -> None:
    target = ("configmap", "cfg") if kind == "ConfigMap" else ("deployment", "web")
    before = guarded(app.get(*target))
    result = how(app, user)
    assert_refused(app, result, field, kind, name)
    assert guarded(app.get(*target)) == before


def test_bob_really_has_the_rights_the_guard_takes_away(app: App) -> None:
    """Control: RBAC lets bob do all of it on an unmanaged Deployment, so refusals above are the guard's."""
    app.admin("create", "deployment", "mine", "--image=nginx:1")
    for args in (("scale", "deployment", "mine", "--replicas=3"),
                 ("set", "image", "deployment/mine", "nginx=nginx:2"),
                 ("label", "deployment", "mine", "x=y"),
                 ("delete", "deployment", "mine")):
        got = app.kubectl("bob", *args)
        assert got.returncode == 0, got.output
    assert not app.exists("deployment", "mine")


# ------------------------------------------------------------------ 2. the manager name proves nothing


def test_field_manager_name_is_not_an_identity(app: App) -> None:
    before = guarded(app.get("deployment", "web"))
    manifest = _changed_manifest(app, "nginx:9")
    spoof = app.kubectl("bob", "--field-manager=kubectl-gitops", "apply", "--server-side", "--force-conflicts",
                        "-f", str(manifest))
    message = denial(spoof)
    assert f"is managed by Sync {app.ns}/{app.sync}" in message
    assert guarded(app.get("deployment", "web")) == before
    assert app.image() == "nginx:1"


# ------------------------------------------------------------------ 3. the Sync itself passes


def test_the_syncs_own_applies_pass(app: App) -> None:
    app.repo.write("apps/app.yaml", APP.replace("image: nginx:1", "image: nginx:2", 1)).commit("bump")
    out = app.gitops("sync", app.sync)
    assert re.search(rf"configured\s+Deployment/{app.ns}/web", out.output), out.output
    assert "ReconciliationSucceeded" in out.output, out.output
    web = app.get("deployment", "web")
    assert web["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert web["metadata"]["annotations"]["kubectl-gitops.dev/revision"] == app.revision


# ------------------------------------------------------------------ 4. what Git does not own stays editable


def test_fields_git_does_not_own_stay_editable(app: App) -> None:
    for args in (("annotate", "deployment", "web", "team=payments"),
                 ("label", "deployment", "web", "tier=frontend"),
                 ("patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"added":"by-bob"}}'),
                 ("scale", "deployment", "autoscaled", "--replicas=3")):
        got = app.kubectl("bob", *args)
        assert got.returncode == 0, got.output
        assert not warnings(got), got.stderr
    web = app.get("deployment", "web")
    assert web["metadata"]["annotations"]["team"] == "payments"
    assert web["metadata"]["labels"]["tier"] == "frontend"
    assert app.get("configmap", "cfg")["data"] == {"a": "1", "added": "by-bob"}
    assert app.replicas("autoscaled") == 3
    # ...but the key bob added sits next to Git's, which is still guarded.
    assert_refused(app, app.kubectl("bob", "patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"a":"2"}}'),
                   "data.a", "ConfigMap", "cfg")


# ------------------------------------------------------------------ 5. break-glass


def test_break_glass_group_passes_with_a_warning(app: App) -> None:
    scaled = app.kubectl("alice", "scale", "deployment", "web", "--replicas=5")
    assert scaled.returncode == 0, scaled.output
    assert_one_warning(scaled, f"break-glass: Sync {app.ns}/{app.sync} owns ", "spec.replicas",
                       "; Git reverts it unless suspended")
    assert app.replicas() == 5
    patched = app.kubectl("alice", "set", "image", "deployment/web", "web=nginx:9")
    assert patched.returncode == 0, patched.output
    assert_one_warning(patched, f"break-glass: Sync {app.ns}/{app.sync} owns ", "[name=web].image",
                       "; Git reverts it unless suspended")
    assert app.image() == "nginx:9"
    # The same edit by someone outside the group is still refused.
    assert_refused(app, app.kubectl("bob", "label", "deployment", "web", f"{LABEL_SYNC}-"),
                   f'metadata.labels["{LABEL_SYNC}"]')


# ------------------------------------------------------------------ 6. modes and suspend


def _bump_image(app: App, user: str, image: str) -> Run:
    return app.kubectl(user, "set", "image", "deployment/web", f"web={image}")


def test_warn_mode_allows_with_a_warning(make_app: Callable[..., App]) -> None:
    app = make_app("--drift-guard", "warn")
    got = _bump_image(app, "bob", "nginx:9")
    assert got.returncode == 0, got.output
    assert_one_warning(got, f"drift: Sync {app.ns}/{app.sync} owns ", "[name=web].image", "; change it in Git")
    assert app.image() == "nginx:9"


def test_switching_the_sync_to_warn_takes_effect_within_the_cache_ttl(app: App) -> None:
    assert_refused(app, _bump_image(app, "bob", "nginx:9"), "image")
    app.gitops("create", "sync", app.sync, "--source", "s", "--path", app.path, "--prune", "--drift-guard", "warn")
    started = time.monotonic()
    got = retry_until(lambda: _bump_image(app, "bob", "nginx:9"), lambda r: r.returncode == 0)
    assert got.returncode == 0, got.output
    assert time.monotonic() - started <= CACHE_TTL + 3
    assert_one_warning(got, f"drift: Sync {app.ns}/{app.sync} owns ", "[name=web].image", "; change it in Git")
    assert app.image() == "nginx:9"


def test_off_mode_allows_silently(app: App) -> None:
    assert_refused(app, _bump_image(app, "bob", "nginx:9"), "image")
    app.admin("patch", "syncs.kubectl-gitops.dev", app.sync, "--type=merge", "-p", '{"spec":{"driftGuard":"off"}}')
    got = retry_until(lambda: _bump_image(app, "bob", "nginx:9"), lambda r: r.returncode == 0)
    assert got.returncode == 0, got.output
    assert not warnings(got), got.stderr
    assert app.image() == "nginx:9"
    deleted = app.kubectl("bob", "delete", "configmap", "cfg")
    assert deleted.returncode == 0 and not warnings(deleted), deleted.output
    assert not app.exists("configmap", "cfg")


def test_suspended_sync_allows_edits(app: App) -> None:
    assert_refused(app, app.kubectl("bob", "scale", "deployment", "web", "--replicas=4"), "spec.replicas",
                   "Scale")
    app.gitops("suspend", "sync", app.sync)
    got = retry_until(lambda: app.kubectl("bob", "scale", "deployment", "web", "--replicas=4"),
                      lambda r: r.returncode == 0)
    assert got.returncode == 0, got.output
    assert not warnings(got), got.stderr
    assert app.replicas() == 4


def test_a_typo_in_the_mode_does_not_switch_the_guard_off(app: App) -> None:
    """The CRD may or may not validate the enum; either way the guard must stay on."""
    patched = app.kubectl("admin", "patch", "syncs.kubectl-gitops.dev", app.sync, "--type=merge", "-p",
                          '{"spec":{"driftGuard":"of"}}')
    time.sleep(CACHE_TTL + 0.5)  # whatever was stored, the guard has re-read it
    assert_refused(app, _bump_image(app, "bob", "nginx:9"), "image")
    assert app.image() == "nginx:1", patched.output


# ------------------------------------------------------------------ 7. dry runs


def test_server_dry_run_is_judged_the_same(app: App) -> None:
    before = guarded(app.get("deployment", "web"))
    assert_refused(app, app.kubectl("bob", "patch", "deployment", "web", "--dry-run=server", "-p",
                                    '{"spec":{"replicas":7}}'), "spec.replicas")
    assert_refused(app, app.kubectl("bob", "scale", "deployment", "web", "--replicas=7", "--dry-run=server"),
                   "spec.replicas", "Scale")
    assert_refused(app, app.kubectl("admin", "delete", "deployment", "web", "--dry-run=server"), "delete refused")
    assert guarded(app.get("deployment", "web")) == before


# ------------------------------------------------------------------ 8. webhook outage


def _webhook_pid() -> int:
    status = json.loads(gitops("dev", "status", "--name", CLUSTER, "-o", "json", check=False).stdout)
    pids = [c["pid"] for c in status["components"] if c["name"] == "webhook" and c["running"]]
    assert pids, f"no running webhook in dev status: {status['components']}"
    return int(pids[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _webhook_port(kubeconfig: str) -> int:
    hook = json.loads(kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", "-o", "json",
                              kubeconfig=kubeconfig).stdout)["webhooks"][0]
    match = re.search(r":(\d+)", hook["clientConfig"]["url"].split("//", 1)[1])
    assert match, hook["clientConfig"]
    return int(match.group(1))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def webhook_stopped(wh: Cluster) -> Iterator[int]:
    """SIGTERM the webhook (a gunicorn master: it stops its workers) and bring it back afterwards."""
    pid = _webhook_pid()  # ours: the private cluster's webhook
    port = _webhook_port(wh.kubeconfig)
    os.kill(pid, signal.SIGTERM)
    try:
        deadline = time.monotonic() + 40
        while (_alive(pid) or _listening(port)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid) and not _listening(port), "the webhook did not stop on SIGTERM"
        yield port
    finally:
        gitops("dev", "up", "--name", CLUSTER, "--webhook", check=False, timeout=300)


def _system_namespaces_writable(wh: Cluster) -> None:
    name = f"e2e-lockout-{uuid.uuid4().hex[:5]}"
    for ns in ("kube-system", SYSTEM_NAMESPACE):
        # Labelled like a managed object: the namespaceSelector, not the labels, keeps these out.
        kubectl("-n", ns, "create", "configmap", name, "--from-literal=a=b", kubeconfig=wh.kubeconfig)
        kubectl("-n", ns, "label", "configmap", name, f"{LABEL_SYNC}=x", "kubectl-gitops.dev/sync-namespace=y",
                kubeconfig=wh.kubeconfig)
        kubectl("-n", ns, "patch", "configmap", name, "--type=merge", "-p", '{"data":{"a":"c"}}',
                kubeconfig=wh.kubeconfig)
        kubectl("-n", ns, "delete", "configmap", name, kubeconfig=wh.kubeconfig)


def test_system_namespaces_stay_writable_with_the_webhook_up(wh: Cluster, app: App) -> None:
    _system_namespaces_writable(wh)


def test_webhook_outage_fails_open_and_never_locks_the_cluster(wh: Cluster, app: App,
                                                                webhook_stopped: int) -> None:
    # failurePolicy Ignore: edits pass while the webhook is down (RBAC still applies, the next sync reverts).
    scaled = app.kubectl("bob", "scale", "deployment", "web", "--replicas=4")
    assert scaled.returncode == 0, scaled.output
    assert app.replicas() == 4
    imaged = _bump_image(app, "bob", "nginx:9")
    assert imaged.returncode == 0, imaged.output
    _system_namespaces_writable(wh)
    # The applier is never stuck behind the webhook either: it reverts the drift during the outage.
    out = app.gitops("sync", app.sync)
    assert "ReconciliationSucceeded" in out.output, out.output
    assert (app.replicas(), app.image()) == (2, "nginx:1")


def test_guard_refuses_again_after_restart(wh: Cluster, app: App) -> None:
    pid = _webhook_pid()
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 40
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), "the webhook did not stop on SIGTERM"
    during = app.kubectl("bob", "scale", "deployment", "web", "--replicas=4")
    assert during.returncode == 0, during.output  # Ignore: the outage lets it in...
    up = gitops("dev", "up", "--name", CLUSTER, "--webhook", timeout=300)
    assert "admission webhook serving" in up.output, up.output
    assert _webhook_pid() != pid
    # ...Git still owns the rest, and the restarted guard says so.
    wait_for_guard(app, lambda r: app.revision in r.stderr)
    assert_refused(app, app.kubectl("bob", "delete", "deployment", "web", "--wait=false"), "delete refused")
    assert_refused(app, _bump_image(app, "bob", "nginx:9"), "spec.template.spec.containers[name=web].image")
    # The next sync reverts the outage edit and takes replicas back under the guard.
    out = app.gitops("sync", app.sync)
    assert "ReconciliationSucceeded" in out.output, out.output
    assert app.replicas() == 2
    assert_refused(app, app.kubectl("bob", "scale", "deployment", "web", "--replicas=4"), "spec.replicas", "Scale")
    assert app.replicas() == 2


# ------------------------------------------------------------------ 9. namespaces can always go away


def test_namespace_with_managed_objects_can_be_deleted(wh: Cluster, make_app: Callable[..., App],
                                                       request: pytest.FixtureRequest) -> None:
    """The Sync lives elsewhere and stays in enforce mode; the namespace controller still empties it."""
    doomed = f"doomed-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", doomed, kubeconfig=wh.kubeconfig)
    app = make_app("--target-namespace", doomed)
    web = json.loads(kubectl("-n", doomed, "get", "deployment", "web", "-o", "json", kubeconfig=wh.kubeconfig).stdout)
    assert web["metadata"]["labels"][LABEL_SYNC] == app.sync
    refused = run(["kubectl", "-n", doomed, "delete", "deployment", "web", "--wait=false"],
                  kubeconfig=wh.kubeconfig, check=False)
    assert "denied the request" in refused.stderr, refused.output  # the guard is on for this namespace
    kubectl("delete", "namespace", doomed, "--wait=true", "--timeout=120s", kubeconfig=wh.kubeconfig, timeout=180)
    gone = kubectl("get", "namespace", doomed, kubeconfig=wh.kubeconfig, check=False)
    assert "NotFound" in gone.stderr, gone.output


# ------------------------------------------------------------------ 10. `kubectl gitops check`


def _check_lines(wh: Cluster) -> tuple[Run, dict[str, str]]:
    out = gitops("check", kubeconfig=wh.kubeconfig, check=False)
    lines: dict[str, str] = {}
    for line in out.stdout.splitlines():
        mark, _, rest = line.partition(" ")
        rest = rest.strip()
        for name in ("webhook endpoint", "webhook certificate", "webhook caBundle", "webhook"):
            if rest.startswith(name + " "):
                lines[name] = f"{mark} {rest[len(name):].strip()}"
                break
    return out, lines


def test_check_reports_a_healthy_webhook(wh: Cluster) -> None:
    out, lines = _check_lines(wh)
    assert out.returncode == 0, out.output
    assert set(lines) == {"webhook", "webhook caBundle", "webhook certificate", "webhook endpoint"}, out.stdout
    assert all(v.startswith("ok ") for v in lines.values()), out.stdout
    assert "kubectl-gitops-drift-guard" in lines["webhook"] and "kubectl-gitops-stamps" in lines["webhook"]
    assert "matches the serving certificate" in lines["webhook caBundle"]
    days = re.search(r"valid for (\d+) more days", lines["webhook certificate"])
    assert days and int(days.group(1)) > 30, lines["webhook certificate"]


def test_check_fails_clearly_with_the_webhook_stopped(wh: Cluster, webhook_stopped: int) -> None:
    out, lines = _check_lines(wh)
    assert out.returncode == 1, out.output
    assert lines.get("webhook", "").startswith("ok "), out.stdout  # the configurations are still there
    endpoint = lines.get("webhook endpoint", "")
    assert endpoint.startswith("failed "), f"no failed 'webhook endpoint' line:\n{out.stdout}"
    assert f"127.0.0.1:{webhook_stopped}" in endpoint and "refused" in endpoint.lower(), endpoint
    assert "check failed: webhook endpoint" in out.stderr, out.stderr
