"""Helm charts end to end: HelmRepository (HTTP and OCI) and GitSource charts, rendered by the pinned
helm and applied, pruned, recorded and guarded like any Sync's objects, on the dev control plane with
the real webhook.

Charts are written as files in the test, packaged with `helm package`, indexed with `helm repo index`
and served by a Python http.server thread, or pushed with `helm push` to a local distribution registry
built from Go modules. Every claim is checked on the cluster (kubectl) and in the Sync's status.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import API_VERSION, FIELD_MANAGER, LABEL_SYNC
from kubectl_gitops.devcluster.registry_build import running_registry
from tests.e2e.chartrepo import Chart, HttpChartRepo, OciChartRepo
from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import World
from tests.e2e.webhookworld import Cluster, retry_until, webhook_cluster
from tests.helpers import kubectl, run

CLUSTER = "helm"

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  greeting: {{ .Values.greeting | quote }}
  chart: {{ .Chart.Version | quote }}
  upgrade: {{ .Release.IsUpgrade | quote }}
"""
EXTRA = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-extra
data:
  note: "only in 1.0.0"
"""
WEB = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "registry.example/web:{{ .Chart.Version }}"}]
"""
FAILING_HOOK = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-upgrade
spec:
  activeDeadlineSeconds: 2
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      nodeSelector: {no-such-node: "true"}
      containers: [{name: migrate, image: registry.example/migrate:1}]
"""
GOOD_HOOK = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-setup
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: setup, image: registry.example/setup:1}]
"""
POST_HOOK = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-installed
  annotations: {helm.sh/hook: post-install}
data: {at: {{ .Chart.Version | quote }}}
"""
TEST_HOOK = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {helm.sh/hook: test}
spec:
  containers: [{name: t, image: registry.example/test:1}]
"""
VALUES = {"greeting": "hello", "replicas": 1}


def app_chart(version: str, **templates: str) -> Chart:
    base = {"config.yaml": CONFIG, "web.yaml": WEB}
    return Chart("app", version, {**base, **templates}, dict(VALUES))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory)


@pytest.fixture
def w(wh: Cluster, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    ns = f"{request.node.name.lower().removeprefix('test_')[:30].strip('_').replace('_', '-')}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", ns, kubeconfig=wh.kubeconfig)
    kubectl("-n", ns, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
            kubeconfig=wh.kubeconfig)
    yield World(wh.kubeconfig, ns, GitRepo(tmp_path / "git"))
    kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", kubeconfig=wh.kubeconfig, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[HttpChartRepo]:
    served = HttpChartRepo(tmp_path / "charts").start()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


def apply(w: World, *objs: dict[str, Any]) -> None:
    kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-",
            kubeconfig=w.kubeconfig, input="---\n".join(yaml.safe_dump(o) for o in objs))


def chart_sync(w: World, name: str, chart: dict[str, Any], *, source: str = "charts",
               kind: str = "HelmRepository", **spec: Any) -> None:
    body = {"sourceRef": {"kind": kind, "name": source}, "prune": True, "chart": chart, **spec}
    apply(w, {"apiVersion": API_VERSION, "kind": "Sync", "metadata": {"name": name, "namespace": w.ns},
              "spec": body})


def helm_source(w: World, url: str, *extra: str) -> None:
    w.gitops("create", "source", "helm", "charts", "--url", url, "--interval", "1s", *extra)


def data(w: World, name: str) -> dict[str, str]:
    obj = w.get("configmap", name)
    assert obj is not None, f"ConfigMap {w.ns}/{name} does not exist"
    found: dict[str, str] = obj.get("data") or {}
    return found


def labelled(w: World, sync: str) -> set[str]:
    out = w.kubectl("get", "configmap,deployment,job", "-l", f"{LABEL_SYNC}={sync}", "-o", "name").stdout
    return set(out.split())


# ------------------------------------------------------------------ HTTP repository: the release's life


def test_http_chart_install_values_upgrade_in_range_and_prune(w: World, repo: HttpChartRepo) -> None:
    repo.publish(app_chart("1.0.0", **{"extra.yaml": EXTRA}))
    helm_source(w, repo.url)
    apply(w, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vals", "namespace": w.ns},
              "data": {"values.yaml": "greeting: from-configmap\n"}})
    chart_sync(w, "app", {"name": "app", "version": ">=1.0.0 <2.0.0",
                          "valuesFrom": [{"kind": "ConfigMap", "name": "vals"}]})

    first = w.sync_ok("app")
    assert data(w, "app-config") == {"greeting": "from-configmap", "chart": "1.0.0", "upgrade": "false"}
    assert data(w, "app-extra") == {"note": "only in 1.0.0"}
    applied = w.sync_status("app")["lastAppliedRevision"]
    assert applied.startswith("app@1.0.0+values:sha256:"), applied
    assert first.data["revision"] == applied
    history = w.sync_status("app")["history"]
    assert history[0]["revision"] == applied and history[0]["result"] == "ReconciliationSucceeded"

    # values from the ConfigMap change the rendered output and the revision's values digest
    apply(w, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vals", "namespace": w.ns},
              "data": {"values.yaml": "greeting: changed\n"}})
    w.sync_ok("app")
    assert data(w, "app-config")["greeting"] == "changed"
    second = w.sync_status("app")["lastAppliedRevision"]
    assert second.startswith("app@1.0.0+values:sha256:") and second != applied

    # a new version within the range (and one outside it): upgraded to 1.1.0, the removed template pruned
    repo.publish(app_chart("1.1.0"))
    repo.publish(app_chart("2.0.0"))
    time.sleep(1.1)  # the index is fresh for the HelmRepository's interval (1s)
    upgraded = w.sync_ok("app")
    assert data(w, "app-config") == {"greeting": "changed", "chart": "1.1.0", "upgrade": "true"}
    assert not w.exists("configmap", "app-extra")
    assert upgraded.results.get(f"ConfigMap/{w.ns}/app-extra") == "pruned", upgraded.output
    assert w.sync_status("app")["lastAppliedRevision"].startswith("app@1.1.0+values:sha256:")
    assert f"{w.ns}_app-extra__ConfigMap" not in w.inventory("app")

    # a no-change re-sync writes nothing
    again = w.sync_ok("app")
    assert set(again.results.values()) == {"unchanged"}, again.output

    repository = w.get("helmrepositories.kubectl-gitops.dev", "charts")
    assert repository is not None
    assert repository["status"]["artifact"]["version"] == "1.1.0"


def test_failing_pre_upgrade_hook_leaves_the_previous_release_untouched(w: World, repo: HttpChartRepo) -> None:
    repo.publish(app_chart("1.0.0", **{"setup.yaml": GOOD_HOOK, "test.yaml": TEST_HOOK, "post.yaml": POST_HOOK}))
    helm_source(w, repo.url)
    chart_sync(w, "app", {"name": "app", "version": "1.x"})
    w.sync_ok("app")
    good = w.sync_status("app")["lastAppliedRevision"]
    setup = w.get("job", "app-setup")  # the pre-install hook ran to completion before the objects
    assert setup is not None and any(c["type"] == "Complete" and c["status"] == "True"
                                     for c in setup["status"]["conditions"]), setup
    assert LABEL_SYNC not in (setup["metadata"].get("labels") or {})  # a hook is not a release object
    assert not w.exists("pod", "app-test")  # test hooks never run
    post = w.get("configmap", "app-installed")  # the post-install hook ran after the apply
    assert post is not None and post["metadata"]["annotations"]["kubectl-gitops.dev/hook-of"] == f"{w.ns}/app"
    assert f"{w.ns}_app-installed__ConfigMap" not in w.inventory("app")
    before = w.get("deployment", "app-web")
    assert before is not None

    repo.publish(app_chart("1.1.0", **{"migrate.yaml": FAILING_HOOK}))
    time.sleep(1.1)
    failed = w.sync("app")
    assert failed.returncode != 0 and failed.reason == "HookFailed", failed.output
    message = w.condition("app", "Ready")["message"]
    assert "pre-upgrade hook Job" in message and "app-migrate" in message, message
    assert "DeadlineExceeded" in message, message
    assert f"previous revision {good}" in message, message
    status = w.sync_status("app")
    assert status["lastAppliedRevision"] == good
    assert status["lastAttemptedRevision"].startswith("app@1.1.0+")
    assert data(w, "app-config")["chart"] == "1.0.0"
    after = w.get("deployment", "app-web")
    assert after is not None
    assert after["spec"] == before["spec"]
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]


def test_chart_with_crds(w: World, repo: HttpChartRepo) -> None:
    group = f"{w.ns}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}}
    widget = f"apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: {{{{ .Values.size }}}}\n"
    repo.publish(Chart("widgets", "0.1.0", {"widget.yaml": widget}, {"size": 3}, {"widgets.yaml": yaml.safe_dump(crd)}))
    helm_source(w, repo.url)
    chart_sync(w, "widgets", {"name": "widgets", "installCRDs": "CreateReplace"})
    w.sync_ok("widgets")
    try:
        live = json.loads(kubectl("get", "crd", f"widgets.{group}", "-o", "json", kubeconfig=w.kubeconfig).stdout)
        assert live["metadata"]["annotations"]["kubectl-gitops.dev/prune"] == "disabled"  # never pruned, as in Helm
        got = w.get(f"widgets.{group}", "w1")
        assert got is not None and got["spec"] == {"size": 3}
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--wait=false", kubeconfig=w.kubeconfig, check=False)


def test_unreachable_repository_keeps_the_last_good_revision(w: World, repo: HttpChartRepo) -> None:
    repo.publish(app_chart("1.0.0"))
    helm_source(w, repo.url)
    chart_sync(w, "app", {"name": "app"})
    w.sync_ok("app")
    good = w.sync_status("app")["lastAppliedRevision"]
    repo.stop()
    time.sleep(1.1)
    failed = w.sync("app")
    assert failed.returncode != 0 and failed.reason == "SourceFailed", failed.output
    assert "cannot reach" in failed.message and repo.url in failed.message, failed.message
    assert w.sync_status("app")["lastAppliedRevision"] == good
    assert data(w, "app-config")["chart"] == "1.0.0"
    repository = w.get("helmrepositories.kubectl-gitops.dev", "charts")
    assert repository is not None
    ready = next(c for c in repository["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "SourceFailed"


# ------------------------------------------------------------------ OCI and Git


def test_oci_chart_install_and_upgrade_in_range(w: World, registry: str, tmp_path: Path) -> None:
    oci = OciChartRepo(tmp_path / "oci", registry)
    name = f"app{uuid.uuid4().hex[:6]}"  # the registry is shared by the module's tests
    oci.publish(Chart(name, "1.0.0", {"config.yaml": CONFIG}, dict(VALUES)))
    helm_source(w, oci.url, "--insecure")
    chart_sync(w, "app", {"name": name, "version": "^1.0.0", "releaseName": "app",
                          "values": {"greeting": "inline"}})
    w.sync_ok("app")
    assert data(w, "app-config") == {"greeting": "inline", "chart": "1.0.0", "upgrade": "false"}
    oci.publish(Chart(name, "1.2.0", {"config.yaml": CONFIG}, dict(VALUES)))
    oci.publish(Chart(name, "2.0.0", {"config.yaml": CONFIG}, dict(VALUES)))
    w.sync_ok("app")
    assert data(w, "app-config")["chart"] == "1.2.0"
    assert w.sync_status("app")["lastAppliedRevision"].startswith(f"{name}@1.2.0+values:sha256:")


def test_chart_from_a_gitsource_path(w: World) -> None:
    chart = app_chart("0.3.0")
    w.repo.write("charts/app/Chart.yaml", yaml.safe_dump({"apiVersion": "v2", "name": "app", "version": "0.3.0"}))
    w.repo.write("charts/app/values.yaml", yaml.safe_dump(chart.values))
    for file, text in chart.templates.items():
        w.repo.write(f"charts/app/templates/{file}", text)
    sha = w.repo.commit("chart")
    w.gitops("create", "source", "src", "--url", w.repo.url, "--branch", "main")
    chart_sync(w, "app", {"values": {"replicas": 2}}, source="src", kind="GitSource", path="charts/app")
    w.sync_ok("app")
    web = w.get("deployment", "app-web")
    assert web is not None and web["spec"]["replicas"] == 2
    applied = w.sync_status("app")["lastAppliedRevision"]
    assert applied.startswith("app@0.3.0+values:sha256:") and applied.endswith(f"+git:main@sha1:{sha}"), applied


# ------------------------------------------------------------------ the drift guard


def test_drift_guard_refuses_an_edit_of_a_chart_rendered_field(w: World, wh: Cluster, repo: HttpChartRepo) -> None:
    repo.publish(app_chart("1.0.0"))
    helm_source(w, repo.url)
    chart_sync(w, "app", {"name": "app"})
    w.sync_ok("app")

    def edit() -> Any:
        return run(["kubectl", "-n", w.ns, "patch", "configmap", "app-config", "--type=merge", "-p",
                    '{"data":{"greeting":"hacked"}}'], kubeconfig=wh.users["bob"], check=False)

    refused = retry_until(edit, lambda r: r.returncode != 0)
    assert refused.returncode != 0, refused.output
    assert "denied the request" in refused.stderr and f"is managed by Sync {w.ns}/app" in refused.stderr, refused.stderr
    assert "data.greeting" in refused.stderr, refused.stderr
    assert data(w, "app-config")["greeting"] == "hello"


# ------------------------------------------------------------------ bad input: clear errors, nothing applied


@pytest.mark.parametrize(("case", "reason", "expect"), [
    ("unknown-chart", "SourceFailed", ["chart 'nope' not found", "HelmRepository"]),
    ("unknown-version", "SourceFailed", ["no version of chart 'app' matches '>=9.0.0'", "available: 1.0.0"]),
    ("values-not-mapping", "BuildFailed", ["chart app 1.0.0", "valuesFrom ConfigMap", "key values.yaml",
                                           "values must be a mapping"]),
    ("template-fails", "BuildFailed", ["chart app 1.0.0 failed to render", "app/templates/bad.yaml",
                                       "imageTag is required"]),
])
def test_bad_input_is_a_clear_error_and_nothing_is_applied(w: World, repo: HttpChartRepo, case: str, reason: str,
                                                          expect: list[str]) -> None:
    bad = '{{ required "imageTag is required" .Values.imageTag }}\n'
    repo.publish(app_chart("1.0.0", **({"bad.yaml": bad} if case == "template-fails" else {})))
    helm_source(w, repo.url)
    apply(w, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vals", "namespace": w.ns},
              "data": {"values.yaml": "- a list\n- not a mapping\n"}})
    chart: dict[str, Any] = {"name": "nope" if case == "unknown-chart" else "app",
                             "version": ">=9.0.0" if case == "unknown-version" else "*"}
    if case == "values-not-mapping":
        chart["valuesFrom"] = [{"kind": "ConfigMap", "name": "vals"}]
    chart_sync(w, "app", chart)
    failed = w.sync("app")
    assert failed.returncode != 0 and failed.reason == reason, failed.output
    message = w.condition("app", "Ready")["message"]
    for part in expect:
        assert part in message, message
    assert "Traceback" not in failed.output
    assert labelled(w, "app") == set()
    assert not w.sync_status("app").get("lastAppliedRevision")


