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

The cluster, users, apps and assertions live in tests/e2e/webhookworld.py.
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
from pathlib import Path

import pytest

from kubectl_gitops.constants import LABEL_SYNC, SYSTEM_NAMESPACE
from tests.e2e.webhookworld import (
    APP,
    CACHE_TTL,
    App,
    Cluster,
    app,
    assert_one_warning,
    assert_refused,
    denial,
    guarded,
    make_app,
    retry_until,
    wait_for_guard,
    warnings,
    webhook_cluster,
)
from tests.helpers import Run, gitops, kubectl, run

__all__ = ["app", "make_app"]  # fixtures, used by name

CLUSTER = "webhook-e2e"


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory)


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
