"""The drift guard as a security boundary, end to end: who may call the webhook, who may act as
an applier, and a fail-closed guard that never locks the cluster out.

Real API server, real webhook over TLS, real users with client certificates. The module runs its
own dev control plane with the webhook (`dev up --webhook`, cluster "webhook-ops") because it
stops the webhook, restarts the API server with a broken admission configuration, switches the
guard to failurePolicy Fail and finally uninstalls; it is torn down at module end. Tests run in
file order and the disruptive ones come last.

1. Only the API server may ask for reviews: a crafted AdmissionReview POSTed by anyone else (no
   client certificate, or a user's certificate from the cluster CA) never gets an answer that
   names a Sync, its source, path or revision; the API server's own calls still judge.
2. Whoever may impersonate a Sync's applier (or mint its tokens) walks around the guard, and
   `kubectl gitops check` names the binding, the subject and the account.
3. An API server that does not present its client certificate: `check` fails and says what to fix.
4. `install --fail-closed` with the webhook process stopped: edits are refused, but kube-system and
   the webhook's namespace, the default applier, the garbage collector, namespace deletion and
   `uninstall` all still work; a Sync with its own applier is stuck until the way out is taken.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from kubectl_gitops.constants import LABEL_SYNC, SYSTEM_NAMESPACE
from tests.e2e.gitrepo import GitRepo
from tests.e2e.webhookworld import webhook_cluster
from tests.helpers import Run, gitops, kubectl, run

CLUSTER = "webhook-ops"
GUARD = "drift-guard.kubectl-gitops.dev"
DEFAULT_APPLIER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:kubectl-gitops-applier"

APP = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
data:
  a: "1"
"""


@dataclass(frozen=True)
class Cluster:
    name: str
    home: Path  # the dev cluster's state directory
    kubeconfig: str  # admin: system:masters, not the applier
    users: dict[str, str]  # user -> kubeconfig path

    @property
    def webhook_url(self) -> str:
        return "{0.scheme}://{0.netloc}".format(urlsplit(_guard_entry(self.kubeconfig)["clientConfig"]["url"]))

    @property
    def port(self) -> int:
        return int(self.webhook_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    for world in webhook_cluster(CLUSTER, tmp_path_factory, (("bob", "devs"), ("eve", "devs"))):
        yield Cluster(world.name, Path(world.kubeconfig).parent, world.kubeconfig, world.users)


def _guard_entry(kubeconfig: str) -> dict[str, Any]:
    config = json.loads(kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", "-o", "json",
                                kubeconfig=kubeconfig).stdout)
    return next(h for h in config["webhooks"] if h["name"] == GUARD)


# ------------------------------------------------------------------ one managed app per test


@dataclass(frozen=True)
class App:
    cluster: Cluster
    ns: str
    repo: GitRepo
    sync: str = "s"

    def kubectl(self, user: str, *args: str) -> Run:
        return run(["kubectl", "-n", self.ns, *args], kubeconfig=self.cluster.users[user], check=False, timeout=120)

    def gitops(self, *args: str, check: bool = True) -> Run:
        return gitops("-n", self.ns, *args, kubeconfig=self.cluster.kubeconfig, check=check)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.kubectl("admin", "get", kind, name, "-o", "json").stdout)
        return obj

    def exists(self, kind: str, name: str) -> bool:
        return self.kubectl("admin", "get", kind, name).returncode == 0

    def image(self) -> str:
        return str(self.get("deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"])

    def commit_image(self, image: str) -> None:
        self.repo.write("apps/app.yaml", APP.replace("nginx:1", image)).commit(f"image {image}")


@pytest.fixture
def make_app(wh: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., App]]:
    """`make_app(*sync_flags, before_sync=fn)`: namespace + bob's `edit` + Git repo + source + Sync, synced once."""
    made: list[str] = []

    def make(*sync_flags: str, before_sync: Callable[[App], None] = lambda _a: None) -> App:
        base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower().removeprefix("test_"))[:20].strip("-")
        ns = f"{base}-{uuid.uuid4().hex[:5]}"
        kubectl("create", "namespace", ns, kubeconfig=wh.kubeconfig)
        made.append(ns)
        kubectl("-n", ns, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
                kubeconfig=wh.kubeconfig)
        repo = GitRepo(tmp_path / f"repo-{len(made)}")
        repo.write("apps/app.yaml", APP).commit("app")
        app = App(wh, ns, repo)
        before_sync(app)
        app.gitops("create", "source", "s", "--url", repo.url, "--branch", "main")
        app.gitops("create", "sync", app.sync, "--source", "s", "--path", "apps", "--prune", *sync_flags)
        out = app.gitops("sync", app.sync)
        assert "ReconciliationSucceeded" in out.output, out.output
        return app

    yield make
    for ns in made:
        kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", kubeconfig=wh.kubeconfig,
                check=False)


def own_applier(app: App) -> None:
    """A ServiceAccount `deployer` in the app's namespace with `admin` there: the Sync's own applier
    (plus `view` cluster-wide: the applier finds unchanged objects with one labelled LIST per kind)."""
    kubectl("-n", app.ns, "create", "serviceaccount", "deployer", kubeconfig=app.cluster.kubeconfig)
    kubectl("-n", app.ns, "create", "rolebinding", "deployer-admin", "--clusterrole=admin",
            f"--serviceaccount={app.ns}:deployer", kubeconfig=app.cluster.kubeconfig)
    kubectl("create", "clusterrolebinding", f"{app.ns}-deployer-view", "--clusterrole=view",
            f"--serviceaccount={app.ns}:deployer", kubeconfig=app.cluster.kubeconfig)


def wait_refused(app: App, timeout: float = 20) -> Run:
    """Bob's server-side dry-run edit until the guard refuses it (the webhook caches Sync lookups)."""
    deadline = time.monotonic() + timeout
    while True:
        probe = app.kubectl("bob", "set", "image", "deployment/web", "web=nginx:9", "--dry-run=server")
        if "denied the request" in probe.stderr or time.monotonic() > deadline:
            return probe
        time.sleep(0.5)


# ------------------------------------------------------------------ 1. only the API server may call


def crafted_review(app: App) -> bytes:
    """What an attacker in the cluster sends: bob's edit of the managed Deployment, as a review."""
    live = app.get("deployment", "web")
    edited = json.loads(json.dumps(live))
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
        "name": "web", "namespace": app.ns, "operation": "UPDATE",
        "userInfo": {"username": "bob", "groups": ["devs", "system:authenticated"]},
        "object": edited, "oldObject": live, "dryRun": False}}
    return json.dumps(review).encode()


def post(wh: Cluster, path: str, body: bytes, client: tuple[str, str] | None = None) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(wh.home / "webhook" / "ca.crt"))
    if client:
        ctx.load_cert_chain(*client)
    conn = http.client.HTTPSConnection("127.0.0.1", wh.port, context=ctx, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def user_cert(wh: Cluster, user: str, tmp: Path) -> tuple[str, str]:
    """bob's client certificate and key (signed by the cluster CA, which the API server trusts)."""
    import base64

    config = yaml.safe_load(Path(wh.users[user]).read_text())
    creds = config["users"][0]["user"]
    cert, key = tmp / f"{user}.crt", tmp / f"{user}.key"
    cert.write_bytes(base64.b64decode(creds["client-certificate-data"]))
    key.write_bytes(base64.b64decode(creds["client-key-data"]))
    return str(cert), str(key)


def assert_reveals_nothing(app: App, text: str) -> None:
    for secret in (app.repo.url, app.ns, "apps", "sha1:", app.repo.head()[:12], "managed by Sync"):
        assert secret not in text, f"{secret!r} leaked to a caller that is not the API server: {text}"


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_a_review_without_a_client_certificate_is_refused_and_reveals_nothing(
        wh: Cluster, make_app: Callable[..., App], path: str) -> None:
    app = make_app()
    refused = wait_refused(app)  # the API server's path: judged, with the whole story
    assert app.repo.url in refused.stderr and "denied the request" in refused.stderr, refused.output
    status, text = post(wh, path, crafted_review(app))
    assert status == 403, text
    assert "client certificate required" in text
    assert_reveals_nothing(app, text)


def test_a_users_certificate_does_not_pass_as_the_api_server(wh: Cluster, make_app: Callable[..., App],
                                                              tmp_path: Path) -> None:
    app = make_app()
    # bob's certificate is good enough for the API server (same cluster CA), not for the webhook.
    assert app.kubectl("bob", "get", "deployment", "web").returncode == 0
    with pytest.raises((ssl.SSLError, ConnectionError)):  # refused in the TLS handshake
        post(wh, "/validate", crafted_review(app), client=user_cert(wh, "bob", tmp_path))
    with pytest.raises((ssl.SSLError, ConnectionError)):  # nor the admin's (system:masters)
        post(wh, "/validate", crafted_review(app), client=user_cert(wh, "admin", tmp_path))


def test_the_api_servers_reviews_still_judge(wh: Cluster, make_app: Callable[..., App]) -> None:
    app = make_app()
    refused = wait_refused(app)
    assert "denied the request" in refused.stderr and f"revision main@sha1:{app.repo.head()}" in refused.stderr, \
        refused.output
    assert app.image() == "nginx:1"
    # and what Git does not own stays editable through the API server
    ok = app.kubectl("bob", "annotate", "deployment", "web", "team=blue")
    assert ok.returncode == 0, ok.output


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_stay_readable_without_a_certificate(wh: Cluster, path: str) -> None:
    """No client certificate needed. /readyz may answer 503 for a moment after start: a worker is
    ready once its watched Tenants and Namespaces are listed; what matters is that it gets there."""
    ctx = ssl.create_default_context(cafile=str(wh.home / "webhook" / "ca.crt"))
    deadline = time.monotonic() + 30
    while True:
        conn = http.client.HTTPSConnection("127.0.0.1", wh.port, context=ctx, timeout=10)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        if status == 200 or path != "/readyz" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 200


def check_lines(wh: Cluster, name: str) -> tuple[Run, list[str]]:
    out = gitops("check", kubeconfig=wh.kubeconfig, check=False, timeout=120)
    lines = [line for line in out.stdout.splitlines() if re.match(rf"^\S+\s+{re.escape(name)}\s", line)]
    return out, lines


def test_check_confirms_only_the_api_server_calls(wh: Cluster) -> None:
    out, lines = check_lines(wh, "admission callers")
    assert len(lines) == 1, out.output
    assert lines[0].startswith("ok ") and "only from the API server" in lines[0], out.output


# ------------------------------------------------------------------ 2. impersonation is visible


def test_edit_in_the_namespace_of_a_syncs_own_applier_bypasses_the_guard_and_check_says_so(
        wh: Cluster, make_app: Callable[..., App]) -> None:
    app = make_app("--service-account", "deployer", before_sync=own_applier)
    refused = wait_refused(app)
    assert "denied the request" in refused.stderr, refused.output  # bob himself is refused...
    applier = f"system:serviceaccount:{app.ns}:deployer"
    bypass = app.kubectl("bob", "--as", applier, "set", "image", "deployment/web", "web=nginx:9")
    assert bypass.returncode == 0, bypass.output  # ...but `edit` lets him impersonate the applier
    assert app.image() == "nginx:9"
    out, lines = check_lines(wh, "applier impersonation")
    ours = [line for line in lines if f"RoleBinding {app.ns}/bob-edit" in line]
    assert len(ours) == 1, out.output
    assert ours[0].startswith("warn ") and "User bob" in ours[0] and f"{app.ns}/deployer" in ours[0], ours[0]
    assert "impersonate" in ours[0] and "create tokens for" in ours[0] and "drop the binding" in ours[0], ours[0]
    # The fix check names works: without the binding, bob can't act as the applier any more.
    kubectl("-n", app.ns, "delete", "rolebinding", "bob-edit", kubeconfig=wh.kubeconfig)
    kubectl("-n", app.ns, "create", "rolebinding", "bob-view", "--clusterrole=view", "--user=bob",
            kubeconfig=wh.kubeconfig)
    out, lines = check_lines(wh, "applier impersonation")
    assert not [line for line in lines if app.ns in line], out.output
    denied = app.kubectl("bob", "--as", applier, "get", "deployment", "web")
    assert denied.returncode != 0 and "cannot impersonate" in denied.stderr, denied.output


def test_the_default_applier_is_out_of_reach_of_edit(wh: Cluster, make_app: Callable[..., App]) -> None:
    app = make_app()
    tried = app.kubectl("bob", "--as", DEFAULT_APPLIER, "set", "image", "deployment/web", "web=nginx:9")
    assert tried.returncode != 0 and "cannot impersonate" in tried.stderr, tried.output
    token = app.kubectl("bob", "-n", SYSTEM_NAMESPACE, "create", "token", "kubectl-gitops-applier")
    assert token.returncode != 0 and "forbidden" in token.stderr.lower(), token.output
    out, lines = check_lines(wh, "applier impersonation")
    assert not [line for line in lines if "kubectl-gitops-system/kubectl-gitops-applier" in line
                and line.startswith("warn")], out.output
    assert any("expected grant" in line for line in lines), out.output  # cluster-admin & co: counted, not listed


def test_a_cluster_wide_grant_is_named_once_with_every_applier(wh: Cluster) -> None:
    kubectl("create", "clusterrolebinding", "e2e-devs-edit", "--clusterrole=edit", "--group=devs",
            kubeconfig=wh.kubeconfig)
    try:
        out, lines = check_lines(wh, "applier impersonation")
        ours = [line for line in lines if "ClusterRoleBinding/e2e-devs-edit" in line]
        assert len(ours) == 1 and "Group devs" in ours[0], out.output
        assert "kubectl-gitops-system/kubectl-gitops-applier" in ours[0], ours[0]
    finally:
        kubectl("delete", "clusterrolebinding", "e2e-devs-edit", kubeconfig=wh.kubeconfig)


# ------------------------------------------------------------------ 3. an API server without its certificate


def component(name: str) -> dict[str, Any]:
    status = json.loads(gitops("dev", "status", "--name", CLUSTER, "-o", "json", check=False).stdout)
    found = [c for c in status["components"] if c["name"] == name and c["running"]]
    assert found, f"no running {name} in dev status: {status['components']}"
    comp: dict[str, Any] = found[0]
    return comp


def _running(pid: int) -> bool:
    """Not gone and not a zombie (our processes outlive the `dev up` that started them)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop(pid: int, timeout: float = 60, sig: signal.Signals = signal.SIGTERM) -> None:
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(pid):
            return
        time.sleep(0.2)
    raise AssertionError(f"pid {pid} did not stop on {sig.name}")


def restart_apiserver(wh: Cluster) -> None:
    # SIGKILL: on SIGTERM kube-apiserver waits out its clients' long requests (the controllers' watches).
    stop(int(component("kube-apiserver")["pid"]), sig=signal.SIGKILL)
    up = gitops("dev", "up", "--name", CLUSTER, check=False, timeout=300)
    assert up.returncode == 0 and "restarting in place" in up.output and "afresh" not in up.output, up.output


def test_check_fails_when_the_api_server_presents_no_client_certificate(wh: Cluster) -> None:
    """The cluster admin forgot the API server's side: the webhook refuses it, check says what to do."""
    client_config = wh.home / "pki" / "webhook-client.kubeconfig"
    good = client_config.read_text()
    broken = yaml.safe_load(good)
    # a client certificate for some other webhook, none for ours
    broken["users"] = [dict(broken["users"][0], name="elsewhere.example:443")]
    client_config.write_text(yaml.safe_dump(broken))
    try:
        restart_apiserver(wh)
        out, lines = check_lines(wh, "admission callers")
        assert out.returncode == 1, out.output
        assert len(lines) == 1 and lines[0].startswith("failed "), out.output
        assert "without the client certificate" in lines[0] and "--admission-control-config-file" in lines[0], lines[0]
        assert "nothing is guarded" in lines[0], lines[0]  # failurePolicy Ignore here
    finally:
        client_config.write_text(good)
        restart_apiserver(wh)
    out, lines = check_lines(wh, "admission callers")
    assert lines and lines[0].startswith("ok "), out.output


# ------------------------------------------------------------------ 4. fail closed, webhook down


@pytest.fixture(scope="module")
def closed(wh: Cluster) -> Iterator[Cluster]:
    """`install --fail-closed`, then the webhook process stopped for the rest of the module."""
    url = wh.webhook_url
    out = gitops("install", "--webhook-url", url, "--fail-closed", kubeconfig=wh.kubeconfig)
    assert "fails closed" in out.output, out.output
    config = json.loads(kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", "-o", "json",
                                kubeconfig=wh.kubeconfig).stdout)
    policies = {h["name"]: h["failurePolicy"] for h in config["webhooks"]}
    assert policies == {GUARD: "Fail", "drift-guard-scale.kubectl-gitops.dev": "Ignore"}, policies
    stamps = json.loads(kubectl("get", "mutatingwebhookconfiguration", "kubectl-gitops-stamps", "-o", "json",
                                kubeconfig=wh.kubeconfig).stdout)
    assert {h["failurePolicy"] for h in stamps["webhooks"]} == {"Ignore"}
    stop(int(component("webhook")["pid"]))
    deadline = time.monotonic() + 20
    while _listening(wh.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(wh.port), "the webhook still listens"
    try:
        yield wh
    finally:
        gitops("dev", "up", "--name", CLUSTER, "--webhook", check=False, timeout=300)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_fail_closed_refuses_edits_while_the_webhook_is_down(make_app: Callable[..., App], closed: Cluster) -> None:
    app = make_app()  # the default applier syncs without the webhook (matchCondition)
    edit = app.kubectl("bob", "set", "image", "deployment/web", "web=nginx:9")
    assert edit.returncode != 0 and "failed calling webhook" in edit.stderr, edit.output
    assert app.image() == "nginx:1"
    # the scale entry stays Ignore: autoscalers are never frozen
    scaled = app.kubectl("bob", "scale", "deployment", "web", "--replicas=3")
    assert scaled.returncode == 0, scaled.output


def test_fail_closed_refuses_unsigned_managed_creates_but_not_scale_or_unmanaged(
        make_app: Callable[..., App], closed: Cluster) -> None:
    """The signatures entry is Fail too (its scale writes split off, Ignore): with the webhook down a
    managed object can't be created by anyone but the default applier; other objects can."""
    config = json.loads(kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-signatures", "-o", "json",
                                kubeconfig=closed.kubeconfig).stdout)
    assert {h["name"]: h["failurePolicy"] for h in config["webhooks"]} == {
        "signatures.kubectl-gitops.dev": "Fail", "trustpolicies.kubectl-gitops.dev": "Fail",
        "signatures-scale.kubectl-gitops.dev": "Ignore"}
    app = make_app()
    labelled = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "sneaky", "labels": {LABEL_SYNC: app.sync, "kubectl-gitops.dev/sync-namespace": app.ns}}})
    made = run(["kubectl", "-n", app.ns, "create", "-f", "-"], kubeconfig=app.cluster.users["bob"], input=labelled,
               check=False)
    assert made.returncode != 0 and "failed calling webhook" in made.stderr, made.output
    assert app.kubectl("bob", "create", "configmap", "plain", "--from-literal=a=b").returncode == 0
    assert app.kubectl("bob", "scale", "deployment", "web", "--replicas=2").returncode == 0


def test_system_namespaces_stay_writable(closed: Cluster) -> None:
    name = f"e2e-lockout-{uuid.uuid4().hex[:5]}"
    for ns in ("kube-system", SYSTEM_NAMESPACE):
        kubectl("-n", ns, "create", "configmap", name, "--from-literal=a=b", kubeconfig=closed.kubeconfig)
        kubectl("-n", ns, "label", "configmap", name, f"{LABEL_SYNC}=x", "kubectl-gitops.dev/sync-namespace=y",
                kubeconfig=closed.kubeconfig)
        kubectl("-n", ns, "patch", "configmap", name, "--type=merge", "-p", '{"data":{"a":"c"}}',
                kubeconfig=closed.kubeconfig)
        kubectl("-n", ns, "delete", "configmap", name, kubeconfig=closed.kubeconfig)


def test_the_default_applier_still_syncs(make_app: Callable[..., App], closed: Cluster) -> None:
    app = make_app()
    app.commit_image("nginx:2")
    out = app.gitops("sync", app.sync)
    assert "ReconciliationSucceeded" in out.output, out.output
    assert app.image() == "nginx:2"
    app.repo.remove("apps/app.yaml").write("apps/only.yaml", APP.split("---", 1)[1]).commit("drop web")
    out = app.gitops("sync", app.sync)  # prune: the applier's DELETE
    assert "ReconciliationSucceeded" in out.output, out.output
    assert not app.exists("deployment", "web")


def test_the_garbage_collector_still_deletes_managed_dependents(make_app: Callable[..., App],
                                                                 closed: Cluster) -> None:
    app = make_app()
    owner = json.loads(app.kubectl("admin", "create", "configmap", "owner", "-o", "json").stdout)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    # With the guard closed and down even the admin's UPDATE of a managed object is refused, so the
    # default applier (never sent to the guard) sets the owner reference.
    patched = run(["kubectl", "-n", app.ns, "--as", DEFAULT_APPLIER, "patch", "configmap", "cfg", "--type=merge",
                   "-p", json.dumps({"metadata": {"ownerReferences": [ref]}})],
                  kubeconfig=closed.kubeconfig, check=False)
    assert patched.returncode == 0, patched.output
    assert app.kubectl("admin", "delete", "configmap", "owner").returncode == 0
    deadline = time.monotonic() + 60
    while app.exists("configmap", "cfg") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not app.exists("configmap", "cfg"), "the garbage collector could not delete the managed dependent"


def test_a_namespace_full_of_managed_objects_can_be_deleted(make_app: Callable[..., App], closed: Cluster) -> None:
    doomed = f"doomed-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", doomed, kubeconfig=closed.kubeconfig)
    make_app("--target-namespace", doomed)
    labels = json.loads(kubectl("-n", doomed, "get", "deployment", "web", "-o", "json",
                                kubeconfig=closed.kubeconfig).stdout)["metadata"]["labels"]
    assert LABEL_SYNC in labels
    refused = kubectl("-n", doomed, "delete", "deployment", "web", "--wait=false", kubeconfig=closed.kubeconfig,
                      check=False)
    assert "failed calling webhook" in refused.stderr, refused.output  # closed: even the admin is refused
    kubectl("delete", "namespace", doomed, "--wait=true", "--timeout=120s", kubeconfig=closed.kubeconfig, timeout=180)
    gone = kubectl("get", "namespace", doomed, kubeconfig=closed.kubeconfig, check=False)
    assert "NotFound" in gone.stderr, gone.output


def test_a_sync_with_its_own_applier_is_stuck_until_the_way_out(make_app: Callable[..., App],
                                                                 closed: Cluster) -> None:
    """Documented in docs/webhook.md: own appliers are judged by the webhook, so they wait for it;
    `install` without --fail-closed (or deleting the configuration) is the way out, always."""
    url = closed.webhook_url
    # Its creates are judged too (the signatures entry, Fail with --fail-closed): make it failing open.
    gitops("install", "--webhook-url", url, kubeconfig=closed.kubeconfig)
    try:
        app = make_app("--service-account", "deployer", before_sync=own_applier)
    finally:
        gitops("install", "--webhook-url", url, "--fail-closed", kubeconfig=closed.kubeconfig)
    app.commit_image("nginx:2")
    stuck = app.gitops("sync", app.sync, check=False)
    assert stuck.returncode != 0 and "failed calling webhook" in stuck.output, stuck.output
    assert app.image() == "nginx:1"
    try:
        out = gitops("install", "--webhook-url", url, kubeconfig=closed.kubeconfig)
        assert "fails closed" not in out.output
        synced = app.gitops("sync", app.sync)
        assert "ReconciliationSucceeded" in synced.output, synced.output
        assert app.image() == "nginx:2"
    finally:
        gitops("install", "--webhook-url", url, "--fail-closed", kubeconfig=closed.kubeconfig)
    assert _guard_entry(closed.kubeconfig)["failurePolicy"] == "Fail"


def test_uninstall_works_with_the_webhook_down(make_app: Callable[..., App], closed: Cluster) -> None:
    make_app()  # managed objects exist
    out = gitops("uninstall", kubeconfig=closed.kubeconfig, timeout=300)
    assert "uninstalled" in out.output, out.output
    gone = kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", kubeconfig=closed.kubeconfig,
                   check=False)
    assert "NotFound" in gone.stderr, gone.output
