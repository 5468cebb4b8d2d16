"""Attacks on `kubectl gitops sync`, on the real dev control plane, by the people a cluster has.

bob holds the built-in `edit` role in the test namespace (and in a namespace of his own); the admin
is system:masters, not the applier. Each test is an attack that used to work (a crash, a stranger
pruned or trusted, ownership lost for good, an opt-out nobody in Git asked for, a lost inventory
entry, an unreadable inventory, an object too large reported as an outage) and checks the cluster,
the Sync's status and the plugin's output, never only an exit code.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters.kube import Kube, Target
from kubectl_gitops.constants import FIELD_MANAGER, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.engine.reconcile import Engine
from tests.e2e.conftest import DevCluster
from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import SYNC_RESOURCE, World, configmap, deployment, docs
from tests.helpers import Run, gitops, kubectl, run

PRUNE_DISABLED = {"kubectl-gitops.dev/prune": "disabled"}
DEPTH = 5000  # far past Python's recursion limit, well inside the API server's (10,000)


@pytest.fixture(scope="module")
def installed(kubeconfig: str) -> str:
    gitops("install", "--no-webhook", kubeconfig=kubeconfig)
    return kubeconfig


@pytest.fixture(scope="module")
def bob(dev_cluster: DevCluster, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A client-certificate kubeconfig for bob (group devs): no rights until a test binds `edit`."""
    path = tmp_path_factory.mktemp("bob") / "bob.kubeconfig"
    path.write_text(gitops("dev", "kubeconfig", "--name", dev_cluster.name, "--user", "bob", "--group",
                           "devs").stdout)
    return str(path)


@pytest.fixture
def w(installed: str, namespace: str, tmp_path: Path) -> World:
    kubectl("-n", namespace, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
            kubeconfig=installed)
    return World(installed, namespace, GitRepo(tmp_path / "repo"))


@pytest.fixture
def bobs_namespace(w: World) -> Iterator[str]:
    """A second namespace where bob has `edit` and no Sync lives."""
    name = f"{w.ns[:50]}-bob"
    kubectl("create", "namespace", name, kubeconfig=w.kubeconfig)
    kubectl("-n", name, "create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob",
            kubeconfig=w.kubeconfig)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", kubeconfig=w.kubeconfig, check=False)


def as_bob(bob: str, *args: str, input: str | None = None) -> Run:
    result = run(["kubectl", *args], kubeconfig=bob, input=input, check=False, timeout=120)
    assert result.returncode == 0, f"bob could not {' '.join(args)}: {result.output}"
    return result


def with_managed_fields(world: World, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    got = kubectl("-n", namespace or world.ns, "get", kind, name, "-o", "json", "--show-managed-fields",
                  kubeconfig=world.kubeconfig)
    obj: dict[str, Any] = json.loads(got.stdout)
    return obj


def managers_of(obj: dict[str, Any], *path: str) -> set[str]:
    """Managers whose fieldsV1 holds the map-key path (f:...) on the main resource."""
    out = set()
    for entry in obj["metadata"].get("managedFields") or []:
        node = entry.get("fieldsV1") or {}
        for key in path:
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
        if node is not None and not entry.get("subresource"):
            out.add(entry["manager"])
    return out


def deep_entry_json(obj: dict[str, Any], depth: int = DEPTH) -> str:
    """`obj` as JSON with one more managedFields entry nested `depth` levels deep (built as text:
    Python's own json cannot even write it)."""
    copy = json.loads(json.dumps(obj))
    copy["metadata"]["managedFields"].append({"manager": "evil", "operation": "Update", "apiVersion": "v1",
                                              "fieldsType": "FieldsV1", "fieldsV1": "DEEP",
                                              "time": "2026-01-01T00:00:00Z"})
    return json.dumps(copy).replace('"DEEP"', '{"f:data":' * depth + "{}" + "}" * depth)


def app_sync(w: World, *objs: dict[str, Any] | str, prune: bool = True) -> None:
    w.repo.write("apps/app.yaml", docs(*objs))
    w.repo.commit("app")
    w.setup({"app": {"path": "apps", "prune": prune}})


def commit(w: World, *objs: dict[str, Any] | str) -> None:
    w.repo.write("apps/app.yaml", docs(*objs))
    w.repo.commit("change")


def assert_one_clear_failure(result: Any) -> None:
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output, result.output


# ------------------------------------------------------------------ A. hostile objects never crash a sync


def test_a_managed_fields_entry_nested_thousands_deep_does_not_crash_the_sync(w: World, bob: str) -> None:
    app_sync(w, configmap("cfg", {"a": "1"}))
    w.sync_ok("app")
    hostile = deep_entry_json(with_managed_fields(w, "configmap", "cfg"))
    as_bob(bob, "-n", w.ns, "replace", "-f", "-", input=hostile)

    again = w.sync("app")
    assert again.returncode == 0, again.output
    assert again.results == {f"ConfigMap/{w.ns}/cfg": "unchanged"}
    assert w.condition("app", "Ready")["status"] == "True"
    # Git changes still go through, past the hostile entry.
    commit(w, configmap("cfg", {"a": "2"}))
    assert w.sync_ok("app").results == {f"ConfigMap/{w.ns}/cfg": "configured"}
    assert (w.get("configmap", "cfg") or {})["data"] == {"a": "2"}


def test_a_custom_resource_nested_thousands_deep_does_not_crash_the_sync(w: World) -> None:
    group = f"w{w.ns[-5:]}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}}}]}}
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    app_sync(w, crd, widget)
    try:
        w.sync_ok("app")
        deep = '{"spec":{"deep":' + '{"a":' * DEPTH + "1" + "}" * DEPTH + "}}"
        kubectl("-n", w.ns, "patch", f"widgets.{group}", "w", "--type=merge", "-p", deep, kubeconfig=w.kubeconfig)
        again = w.sync("app")
        assert again.returncode == 0, again.output
        assert w.condition("app", "Ready")["status"] == "True"
    finally:
        kubectl("delete", "crd", f"widgets.{group}", "--wait=false", kubeconfig=w.kubeconfig, check=False)


def test_an_unexpected_failure_is_recorded_not_a_traceback_under_an_old_ready(w: World) -> None:
    app_sync(w, configmap("a"))
    w.sync_ok("app")
    assert w.condition("app", "Ready")["status"] == "True"
    commit(w, configmap("a"), configmap("b"))

    def bug(_action: str, _ref: Any) -> None:  # a failure nothing foresaw, half-way through the writes
        raise KeyError("something nobody foresaw")

    report = Engine(Kube.connect(Target(w.kubeconfig)), tick=bug).reconcile(w.ns, "app")
    assert not report.ready and report.reason == "ReconcileError"
    assert isinstance(report.error, KeyError)  # kept for --debug, never printed without it
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ReconcileError", ready
    assert "KeyError" in ready["message"] and "something nobody foresaw" in ready["message"]
    assert w.sync_status("app")["history"][0]["result"] == "ReconcileError"
    # Nothing lost: the inventory lists what this run was about to create (written ahead).
    assert w.inventory("app") == {w.cm_id("a"), w.cm_id("b")}
    w.sync_ok("app")


def test_a_manifest_nested_too_deep_is_a_recorded_failure(w: World) -> None:
    app_sync(w, configmap("cfg"))
    w.sync_ok("app")
    w.repo.write("apps/deep.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: {x: '1'}\n"
                 "extra: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n")
    w.repo.commit("deep")
    result = w.gitops("sync", "app", check=False)
    assert_one_clear_failure(result)
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] not in ("", "ReconciliationSucceeded"), ready


# ------------------------------------------------------------------ B. strangers can't enter a Sync's view


def test_labelled_strangers_are_ignored_and_reported_never_pruned(w: World, bob: str, bobs_namespace: str) -> None:
    app_sync(w, configmap("cfg"))
    w.sync_ok("app")
    labels = {LABEL_SYNC: "app", LABEL_SYNC_NAMESPACE: w.ns}
    stranger = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "stranger", "namespace": bobs_namespace, "labels": labels},
                "data": {"mine": "bob's"}}
    as_bob(bob, "create", "-f", "-", input=json.dumps(stranger))
    # ... and a hostile one: labelled and nested thousands deep.
    hostile = {**stranger, "metadata": {**stranger["metadata"], "name": "hostile"}}
    as_bob(bob, "create", "-f", "-", input=json.dumps(hostile))
    live = with_managed_fields(w, "configmap", "hostile", bobs_namespace)
    as_bob(bob, "-n", bobs_namespace, "replace", "-f", "-", input=deep_entry_json(live))

    result = w.sync("app")
    assert result.returncode == 0, result.output
    assert result.results[f"ConfigMap/{bobs_namespace}/stranger"] == "ignored"
    assert result.results[f"ConfigMap/{bobs_namespace}/hostile"] == "ignored"
    assert result.results[f"ConfigMap/{w.ns}/cfg"] == "unchanged"
    assert w.inventory("app") == {w.cm_id("cfg")}
    assert any(reason == "ForeignObjectsIgnored" and "stranger" in note for _, reason, note in w.events("app"))
    # Git drops everything: the Sync prunes its own object, never the strangers.
    commit(w, configmap("other"))
    assert w.sync_ok("app").results[f"ConfigMap/{w.ns}/cfg"] == "pruned"
    still = kubectl("-n", bobs_namespace, "get", "configmap", "stranger", "hostile", kubeconfig=w.kubeconfig)
    assert still.returncode == 0, still.output


# ------------------------------------------------------------------ C. allowed edits don't transfer ownership for good


def test_a_sync_takes_back_ownership_of_a_field_edited_and_reverted_while_suspended(w: World, bob: str) -> None:
    app_sync(w, configmap("cfg", {"a": "1"}), deployment("web", replicas=1))
    w.sync_ok("app")
    cfg = with_managed_fields(w, "configmap", "cfg")
    assert managers_of(cfg, "data", "a") == {FIELD_MANAGER}

    w.gitops("suspend", "sync", "app")
    as_bob(bob, "-n", w.ns, "patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"a":"2"}}')
    as_bob(bob, "-n", w.ns, "patch", "configmap", "cfg", "--type=merge", "-p", '{"data":{"a":"1"}}')
    as_bob(bob, "-n", w.ns, "scale", "deployment", "web", "--replicas=3")
    as_bob(bob, "-n", w.ns, "scale", "deployment", "web", "--replicas=1")
    cfg = with_managed_fields(w, "configmap", "cfg")
    assert cfg["data"] == {"a": "1"}  # Git's value again...
    assert FIELD_MANAGER not in managers_of(cfg, "data", "a")  # ...but no longer Git's field
    w.gitops("resume", "sync", "app")

    result = w.sync_ok("app")
    assert result.results == {f"ConfigMap/{w.ns}/cfg": "configured", f"Deployment/{w.ns}/web": "configured"}
    assert FIELD_MANAGER in managers_of(with_managed_fields(w, "configmap", "cfg"), "data", "a")
    assert FIELD_MANAGER in managers_of(with_managed_fields(w, "deployment", "web"), "spec", "replicas")
    # Taken back once: the next run writes nothing.
    assert set(w.sync_ok("app").results.values()) == {"unchanged"}


def every_kind(ns: str) -> list[dict[str, Any]]:
    """One object of every kind the e2e suites apply, written the way people write them."""
    group = f"g{ns[-5:]}.example.com"
    pod = {"metadata": {"labels": {"app": "d"}, "creationTimestamp": None, "annotations": {}},
           "spec": {"nodeSelector": {"disk": "ssd"}, "tolerations": [],
                    "containers": [{"name": "app", "image": "nginx:1", "resources": {},
                                    "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}]}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{ns[:50]}-n", "labels": {"team": "a"}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "annotations": {}},
         "data": {"a": "1", "empty": ""}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque",
         "stringData": {"password": "hunter2"}, "data": {"k": "dmFsdWU="}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
         "spec": {"clusterIP": "None", "selector": {"app": "d"}, "ports": [{"name": "http", "port": 80,
                                                                            "targetPort": "http"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
         "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "d"}}, "strategy": {}, "template": pod}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
         "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": ns}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": f"{ns}-cr"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
         "metadata": {"name": f"gadgets.{group}"},
         "spec": {"group": group, "scope": "Namespaced",
                  "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                  "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                      "type": "object", "properties": {"spec": {"type": "object",
                                                                "x-kubernetes-preserve-unknown-fields": True}}}}}]}},
        {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"},
         "spec": {"a": {"b": {"c": 1}}, "list": [1, 2], "empty": {}}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np"},
         "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
         "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                  "minReplicas": 1, "maxReplicas": 3}},
        {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
         "spec": {"hard": {"pods": "10", "requests.cpu": "1000m"}}},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": f"{ns}-vwc"}, "webhooks": []},
    ]


CLUSTER_SCOPED = ("Namespace", "ClusterRole", "CustomResourceDefinition", "ValidatingWebhookConfiguration")


def test_a_no_change_resync_writes_nothing_for_any_kind(w: World) -> None:
    objs = every_kind(w.ns)
    app_sync(w, *objs)
    try:
        first = w.sync_ok("app")
        assert set(first.results.values()) == {"created"}, first.results
        second = w.sync_ok("app")
        assert set(second.results.values()) == {"unchanged"}, second.output
    finally:
        for obj in objs:
            if obj["kind"] in CLUSTER_SCOPED:
                kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--wait=false",
                        kubeconfig=w.kubeconfig, check=False)


# ------------------------------------------------------------------ D. prune is Git's decision


def test_prune_opt_out_counts_only_from_git_and_finalizers_are_waited_for(w: World, bob: str) -> None:
    app_sync(w, configmap("from-git", annotations=PRUNE_DISABLED), configmap("sneaky"), configmap("held"),
             configmap("stays"))
    w.sync_ok("app")
    as_bob(bob, "-n", w.ns, "annotate", "configmap", "sneaky", "kubectl-gitops.dev/prune=disabled")
    as_bob(bob, "-n", w.ns, "patch", "configmap", "held", "--type=merge",
           "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    commit(w, configmap("stays"))

    result = w.sync_ok("app")
    assert result.results[f"ConfigMap/{w.ns}/from-git"] == "skipped"
    assert result.results[f"ConfigMap/{w.ns}/sneaky"] == "pruned"
    assert result.results[f"ConfigMap/{w.ns}/held"] == "waiting"
    assert w.exists("configmap", "from-git") and not w.exists("configmap", "sneaky")
    held = w.get("configmap", "held")
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert w.inventory("app") == {w.cm_id("stays"), w.cm_id("held")}
    ready = w.condition("app", "Ready")
    assert ready["status"] == "True" and "waiting on finalizers example.com/hold" in ready["message"], ready

    again = w.sync_ok("app")  # still held: still waiting, still listed
    assert again.results[f"ConfigMap/{w.ns}/held"] == "waiting"
    assert w.cm_id("held") in w.inventory("app")

    kubectl("-n", w.ns, "patch", "configmap", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
            kubeconfig=w.kubeconfig)
    assert not w.exists("configmap", "held")
    w.sync_ok("app")
    assert w.inventory("app") == {w.cm_id("stays")}


# ------------------------------------------------------------------ E. concurrent runs can't lose inventory


def labelled(w: World) -> set[str]:
    out = kubectl("-n", w.ns, "get", "configmaps", "-l", f"{LABEL_SYNC}=app", "-o",
                  "jsonpath={.items[*].metadata.name}", kubeconfig=w.kubeconfig).stdout
    return set(out.split())


def test_two_concurrent_runs_never_orphan_an_object(w: World) -> None:
    app_sync(w, configmap("a"))
    w.sync_ok("app")
    commit(w, configmap("a"), configmap("b"))  # run A will see this revision...

    a_blocked, b_done = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold(_action: str, _ref: Any) -> None:
        a_blocked.set()
        b_done.wait(120)

    def run_a() -> None:
        kube = Kube.connect(Target(w.kubeconfig))
        try:
            outcome["a"] = Engine(kube, tick=hold).reconcile(w.ns, "app")
        except Exception as err:
            outcome["a"] = err

    thread = threading.Thread(target=run_a, daemon=True)
    thread.start()
    try:
        assert a_blocked.wait(120), f"run A never reached its writes: {outcome}"
        commit(w, configmap("a"), configmap("c"))  # ...run B this one, while A is half-way
        b = w.sync("app")  # another process
        assert b.returncode == 0, b.output
    finally:
        b_done.set()
        thread.join(180)
    assert getattr(outcome.get("a"), "ready", False), outcome

    # Whatever order the two runs recorded in, every object with our labels is in the inventory.
    assert labelled(w) == {"a", "b", "c"}
    assert {w.cm_id(n) for n in labelled(w)} <= w.inventory("app")
    # ...so the next run prunes the one Git no longer has: nothing is orphaned.
    final = w.sync_ok("app")
    assert final.results[f"ConfigMap/{w.ns}/b"] == "pruned"
    assert labelled(w) == {"a", "c"} and w.inventory("app") == {w.cm_id("a"), w.cm_id("c")}


# ------------------------------------------------------------------ F. every failure recorded, never a traceback


def test_an_unreadable_inventory_is_a_recorded_failure_with_a_repair(w: World) -> None:
    app_sync(w, configmap("a"), configmap("b"))
    w.sync_ok("app")
    kubectl("-n", w.ns, "patch", SYNC_RESOURCE, "app", "--subresource=status", "--type=merge", "-p",
            json.dumps({"status": {"inventory": {"entries": [{"id": "garbage", "v": "v1"}]}}}),
            kubeconfig=w.kubeconfig)

    result = w.sync("app")
    assert_one_clear_failure(result)
    assert result.reason == "InventoryCorrupt"
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "InventoryCorrupt"
    assert "--reset-inventory" in ready["message"], ready

    repaired = w.sync("app", "--reset-inventory")
    assert repaired.returncode == 0, repaired.output
    assert w.inventory("app") == {w.cm_id("a"), w.cm_id("b")}
    commit(w, configmap("a"))  # and pruning works again from the rebuilt inventory
    assert w.sync_ok("app").results[f"ConfigMap/{w.ns}/b"] == "pruned"


def test_an_object_too_large_is_a_refusal_naming_it_not_an_outage(w: World) -> None:
    # Over the API server's 3 MiB body limit (answered 413), and far over it (the server drops the
    # connection while the body is still being sent).
    app_sync(w, configmap("small"), configmap("huge", {"x": "a" * 3_500_000}),
             configmap("huger", {"x": "a" * 10_000_000}))
    result = w.sync("app", timeout=300)
    assert_one_clear_failure(result)
    assert result.reason == "ApplyFailed"
    assert result.results[f"ConfigMap/{w.ns}/small"] == "created"
    for name in ("huge", "huger"):
        assert result.results[f"ConfigMap/{w.ns}/{name}"] == "failed"
        failed = next(o for o in result.data["objects"] if o["object"] == f"ConfigMap/{w.ns}/{name}")
        assert failed["message"].startswith(f"ConfigMap/{w.ns}/{name}: ") and "too large" in failed["message"]
    assert "unreachable" not in result.output
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and f"ConfigMap/{w.ns}/huge" in ready["message"]
