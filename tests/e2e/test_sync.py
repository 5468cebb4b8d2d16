"""`kubectl gitops sync` end to end: real Git repositories (file://), the real API server, real kubectl.

Each test gets its own namespace and repository; every claim is checked against the cluster
(objects via kubectl, the Sync's and GitSource's status), not only against exit codes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.syncworld import World, configmap, deployment, docs
from tests.helpers import kubectl

PRUNE_DISABLED = {"kubectl-gitops.dev/prune": "disabled"}


def data_of(world: World, name: str) -> dict[str, str]:
    obj = world.get("configmap", name)
    assert obj is not None, f"ConfigMap {world.ns}/{name} does not exist"
    data: dict[str, str] = obj.get("data") or {}
    return data


def spec_of(world: World, sync: str) -> dict[str, Any]:
    obj = world.get("syncs.kubectl-gitops.dev", sync)
    assert obj is not None, f"Sync {world.ns}/{sync} does not exist"
    spec: dict[str, Any] = obj["spec"]
    return spec


# ---------------------------------------------------------------------------------- 1. refs


def test_branch_picks_up_new_commit_on_next_sync(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "1"})))
    first = w.repo.commit("v1")
    w.create_source("src", "--branch", "main")
    w.create_sync("app", "--path", "apps")

    run = w.sync_ok("app")
    assert run.data["revision"] == f"main@sha1:{first}"
    assert run.results == {f"ConfigMap/{w.ns}/app": "created"}
    assert data_of(w, "app") == {"version": "1"}
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{first}"
    assert w.source_status()["artifact"]["revision"] == f"main@sha1:{first}"

    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "2"}), configmap("extra")))
    second = w.repo.commit("v2")
    run = w.sync_ok("app")
    assert run.data["revision"] == f"main@sha1:{second}"
    assert run.results == {f"ConfigMap/{w.ns}/app": "configured", f"ConfigMap/{w.ns}/extra": "created"}
    assert data_of(w, "app") == {"version": "2"}
    status = w.sync_status("app")
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == f"main@sha1:{second}"
    assert [h["revision"] for h in status["history"]][:2] == [f"main@sha1:{second}", f"main@sha1:{first}"]
    assert w.source_status()["artifact"]["revision"] == f"main@sha1:{second}"
    live = w.get("configmap", "app")
    assert live is not None
    assert live["metadata"]["labels"]["kubectl-gitops.dev/sync"] == "app"
    assert live["metadata"]["labels"]["kubectl-gitops.dev/sync-namespace"] == w.ns
    assert w.inventory("app") == {w.cm_id("app"), w.cm_id("extra")}
    assert [e[:2] for e in w.events("app")] == [("Normal", "ReconciliationSucceeded")] * 2
    assert second in w.events("app")[-1][2]


def test_annotated_tag_pins_the_tagged_commit(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "1.0.0"})))
    w.repo.commit("release 1.0.0")
    tagged = w.repo.tag("v1.0.0", annotated=True)
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "next"})))
    w.repo.commit("work after the release")
    w.create_source("src", "--tag", "v1.0.0")
    w.create_sync("app", "--path", "apps")

    run = w.sync_ok("app")
    # The commit's SHA, not the annotated tag object's.
    assert run.data["revision"] == f"v1.0.0@sha1:{tagged}"
    assert data_of(w, "app") == {"version": "1.0.0"}
    assert w.sync_status("app")["lastAppliedRevision"] == f"v1.0.0@sha1:{tagged}"
    assert w.source_status()["artifact"]["revision"] == f"v1.0.0@sha1:{tagged}"

    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "even later"})))
    w.repo.commit("more work on main")
    again = w.sync_ok("app")
    assert again.data["revision"] == f"v1.0.0@sha1:{tagged}"
    assert again.results == {f"ConfigMap/{w.ns}/app": "unchanged"}
    assert data_of(w, "app") == {"version": "1.0.0"}


def test_semver_range_picks_highest_match_and_ignores_prereleases(w: World) -> None:
    shas: dict[str, str] = {}
    for tag in ("v1.0.0", "v1.2.0", "v1.10.0", "v1.11.0-rc.1", "v2.0.0"):
        w.repo.write("apps/cm.yaml", docs(configmap("release", {"version": tag})))
        w.repo.commit(f"release {tag}")
        shas[tag] = w.repo.tag(tag, annotated=tag == "v1.10.0")
    w.create_source("src", "--semver", ">=1.0.0 <2.0.0")
    w.create_sync("app", "--path", "apps")

    run = w.sync_ok("app")
    # 1.10.0 > 1.2.0 (numeric, not lexical); 1.11.0-rc.1 is a prerelease; 2.0.0 is out of range.
    assert run.data["revision"] == f"v1.10.0@sha1:{shas['v1.10.0']}"
    assert data_of(w, "release") == {"version": "v1.10.0"}
    assert w.sync_status("app")["lastAppliedRevision"] == f"v1.10.0@sha1:{shas['v1.10.0']}"
    assert w.source_status()["artifact"]["revision"] == f"v1.10.0@sha1:{shas['v1.10.0']}"

    # A new matching tag is picked up by the next sync.
    w.repo.checkout(shas["v1.10.0"])
    w.repo.write("apps/cm.yaml", docs(configmap("release", {"version": "v1.10.1"})))
    w.repo.commit("patch release")
    patch = w.repo.tag("v1.10.1")
    run = w.sync_ok("app")
    assert run.data["revision"] == f"v1.10.1@sha1:{patch}"
    assert data_of(w, "release") == {"version": "v1.10.1"}
    assert w.source_status()["artifact"]["revision"] == f"v1.10.1@sha1:{patch}"


def test_exact_commit_pins_that_commit(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "a"})))
    w.repo.commit("a")
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "b"})))
    pinned = w.repo.commit("b")
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "c"})))
    w.repo.commit("c")
    w.create_source("src", "--commit", pinned)
    w.create_sync("app", "--path", "apps")

    run = w.sync_ok("app")
    assert run.data["revision"] == f"sha1:{pinned}"
    assert data_of(w, "app") == {"version": "b"}
    assert w.sync_status("app")["lastAppliedRevision"] == f"sha1:{pinned}"
    assert w.source_status()["artifact"]["revision"] == f"sha1:{pinned}"


# ---------------------------------------------------------------------------------- 2. prune


def test_prune_deletes_what_left_git_but_respects_prune_disabled(w: World) -> None:
    w.repo.write("apps/a.yaml", docs(configmap("a")))
    w.repo.write("apps/b.yaml", docs(configmap("b", annotations=PRUNE_DISABLED)))
    w.repo.write("apps/c.yaml", docs(configmap("c")))
    w.repo.commit("three")
    w.create_source()
    w.create_sync("app", "--path", "apps", "--prune")
    assert spec_of(w, "app")["prune"] is True
    w.sync_ok("app")
    assert w.inventory("app") == {w.cm_id("a"), w.cm_id("b"), w.cm_id("c")}

    w.repo.remove("apps/a.yaml").remove("apps/b.yaml")
    w.repo.commit("drop a and b")
    run = w.sync_ok("app")
    assert run.results[f"ConfigMap/{w.ns}/a"] == "pruned"
    assert run.results[f"ConfigMap/{w.ns}/b"] == "skipped"
    assert run.data["counts"]["pruned"] == 1
    assert not w.exists("configmap", "a")
    assert w.exists("configmap", "b"), "an object annotated prune: disabled must survive"
    assert w.exists("configmap", "c")
    assert w.inventory("app") == {w.cm_id("c")}


@pytest.mark.parametrize("flags", [("--prune=false",), ()], ids=["prune=false", "default"])
def test_prune_off_keeps_objects_that_left_git(w: World, flags: tuple[str, ...]) -> None:
    w.repo.write("apps/a.yaml", docs(configmap("a")))
    w.repo.write("apps/c.yaml", docs(configmap("c")))
    w.repo.commit("two")
    w.create_source()
    w.create_sync("app", "--path", "apps", *flags)
    assert spec_of(w, "app")["prune"] is False
    w.sync_ok("app")

    w.repo.remove("apps/a.yaml")
    w.repo.commit("drop a")
    run = w.sync_ok("app")
    assert run.data["counts"]["pruned"] == 0
    assert w.exists("configmap", "a"), "prune is off: the object must stay"
    assert w.exists("configmap", "c")
    assert w.cm_id("c") in w.inventory("app")


# ---------------------------------------------------------------------------------- 3. failed apply


INVALID_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "broken"},
                   "spec": {"type": "ClusterIP", "ports": [{"name": "web", "port": 99999}]}}


def test_no_prune_after_failed_apply(w: World) -> None:
    w.repo.write("apps/a.yaml", docs(configmap("a")))
    w.repo.write("apps/keep.yaml", docs(configmap("keep")))
    good = w.repo.commit("good")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")

    w.repo.remove("apps/a.yaml")
    w.repo.write("apps/b.yaml", docs(INVALID_SERVICE))
    bad = w.repo.commit("remove a, add an invalid Service")
    run = w.sync("app")
    assert run.returncode == 1, run.output
    assert run.reason == "ApplyFailed"
    assert f"Service/{w.ns}/broken" in run.message
    assert "must be between 1 and 65535" in run.message  # the API server's own words
    assert run.results[f"Service/{w.ns}/broken"] == "failed"
    assert run.data["counts"]["pruned"] == 0
    assert w.exists("configmap", "a"), "nothing may be pruned after a failed apply"
    assert not w.exists("service", "broken")
    status = w.sync_status("app")
    assert status["lastAppliedRevision"] == f"main@sha1:{good}"
    assert status["lastAttemptedRevision"] == f"main@sha1:{bad}"
    assert w.cm_id("a") in w.inventory("app"), "a is still ours until it is pruned"
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ApplyFailed"
    assert f"Service/{w.ns}/broken" in ready["message"]
    warning = w.events("app")[-1]
    assert warning[:2] == ("Warning", "ApplyFailed") and f"Service/{w.ns}/broken" in warning[2]

    # Fixing Git completes the prune that was held back.
    w.repo.remove("apps/b.yaml")
    fixed = w.repo.commit("drop the invalid Service")
    run = w.sync_ok("app")
    assert run.results[f"ConfigMap/{w.ns}/a"] == "pruned"
    assert not w.exists("configmap", "a")
    assert w.inventory("app") == {w.cm_id("keep")}
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{fixed}"


# ---------------------------------------------------------------------------------- 4. bad input

# name -> (broken.yaml's text, fragments the message must contain). {ns} is the test namespace.
BAD_INPUT: dict[str, tuple[str, tuple[str, ...]]] = {
    "invalid-yaml": (docs(configmap("fine"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
                                             "data:\n  a: [unclosed\n"),
                     ("broken.yaml document 2", "invalid YAML")),
    "missing-kind": (docs(configmap("fine"), {"apiVersion": "v1", "metadata": {"name": "nokind"}}),
                     ("broken.yaml document 2", "kind is missing")),
    "duplicate": (docs(configmap("ok", {"again": "yes"})),
                  ("defined twice", "broken.yaml document 1", "ok.yaml document 1")),
    "duplicate-explicit-namespace": (docs(configmap("ok", {"again": "yes"}, namespace="{ns}")),
                                     ("defined twice", "broken.yaml document 1", "ok.yaml document 1")),
    "unknown-kind": (docs(configmap("fine"), {"apiVersion": "gizmos.example.com/v1", "kind": "Gizmo",
                                              "metadata": {"name": "g"}}),
                     ("broken.yaml document 2", "unknown kind Gizmo")),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_build_failed_and_nothing_is_applied(w: World, case: str) -> None:
    text, fragments = BAD_INPUT[case]
    w.repo.write("apps/ok.yaml", docs(configmap("ok")))
    good = w.repo.commit("good")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")

    w.repo.write("apps/new.yaml", docs(configmap("fresh")))
    w.repo.write("apps/broken.yaml", text.replace("{ns}", w.ns))
    bad = w.repo.commit(f"bad input: {case}")
    run = w.sync("app")
    assert run.returncode == 1, run.output
    assert run.reason == "BuildFailed", run.output
    for fragment in fragments:
        assert fragment in run.message, f"{fragment!r} not in {run.message!r}"
    assert not w.exists("configmap", "fresh"), "nothing may be applied from a build that failed"
    assert not w.exists("configmap", "fine")
    assert data_of(w, "ok") == {"name": "ok"}
    status = w.sync_status("app")
    assert status["lastAppliedRevision"] == f"main@sha1:{good}"
    assert status["lastAttemptedRevision"] == f"main@sha1:{bad}"
    assert w.inventory("app") == {w.cm_id("ok")}
    assert w.condition("app", "Ready")["reason"] == "BuildFailed"


# ---------------------------------------------------------------------------------- 5. CRDs


def crd(group: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer"}, "colour": {"type": "string"}}}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": schema}}]}}


@pytest.fixture
def crd_group(kubeconfig: str) -> Iterator[str]:
    group = f"e2e{uuid.uuid4().hex[:8]}.example.com"
    yield group
    kubectl("delete", "crd", f"widgets.{group}", "--ignore-not-found", "--wait=false", kubeconfig=kubeconfig,
            check=False)


def test_crd_and_its_custom_resources_in_one_commit(w: World, crd_group: str) -> None:
    widget = {"apiVersion": f"{crd_group}/v1", "kind": "Widget"}
    w.repo.write("apps/crd.yaml", docs(crd(crd_group)))
    w.repo.write("apps/widgets.yaml", docs({**widget, "metadata": {"name": "small"}, "spec": {"size": 1}},
                                           {**widget, "metadata": {"name": "large"}, "spec": {"size": 9}}))
    w.repo.commit("a CRD and two widgets")
    w.setup({"app": {"path": "apps", "prune": True}})

    run = w.sync_ok("app")
    assert run.results == {f"CustomResourceDefinition/widgets.{crd_group}": "created",
                           f"Widget/{w.ns}/small": "created", f"Widget/{w.ns}/large": "created"}
    definition = kubectl("get", "crd", f"widgets.{crd_group}", "-o", "json", kubeconfig=w.kubeconfig).stdout
    assert '"type": "Established"' in definition
    resource = f"widgets.{crd_group}"
    assert w.names(resource) == {"small", "large"}
    large = w.get(resource, "large")
    assert large is not None and large["spec"] == {"size": 9}
    assert w.inventory("app") == {
        f"_widgets.{crd_group}_apiextensions.k8s.io_CustomResourceDefinition",
        f"{w.ns}_small_{crd_group}_Widget", f"{w.ns}_large_{crd_group}_Widget"}

    again = w.sync_ok("app")
    assert set(again.results.values()) == {"unchanged"}


# ---------------------------------------------------------------------------------- 6. dependsOn


def test_depends_on_waits_for_the_dependency(w: World) -> None:
    w.repo.write("a/cm.yaml", docs(configmap("from-a")))
    w.repo.write("b/cm.yaml", docs(configmap("from-b")))
    w.repo.commit("two syncs")
    w.create_source()
    w.create_sync("a", "--path", "a")
    w.create_sync("b", "--path", "b", "--depends-on", "a")

    blocked = w.sync("b")
    assert blocked.returncode == 1, blocked.output
    assert blocked.reason == "DependencyNotReady"
    assert f"{w.ns}/a" in blocked.message
    assert not w.exists("configmap", "from-b")
    assert w.condition("b", "Ready")["reason"] == "DependencyNotReady"

    w.sync_ok("a")
    w.sync_ok("b")
    assert w.exists("configmap", "from-b")
    assert w.condition("b", "Ready")["status"] == "True"


def test_dependency_cycle_is_a_clear_error(w: World) -> None:
    w.repo.write("x/cm.yaml", docs(configmap("x")))
    w.repo.commit("x")
    w.setup({"one": {"path": "x", "depends_on": ["two"]}, "two": {"path": "x", "depends_on": ["one"]}})

    run = w.sync("one")
    assert run.returncode == 1, run.output
    assert run.reason == "DependencyCycle"
    assert "dependency cycle" in run.message
    assert f"{w.ns}/one" in run.message and f"{w.ns}/two" in run.message
    assert not w.exists("configmap", "x")
    assert w.condition("one", "Stalled")["status"] == "True"
    assert w.condition("one", "Ready")["reason"] == "DependencyCycle"


# ---------------------------------------------------------------------------------- 7. health


def test_wait_times_out_on_a_deployment_that_never_becomes_available(w: World) -> None:
    w.repo.write("stuck/deploy.yaml", docs(deployment("stuck", node_selector={"e2e.example/none": "true"})))
    w.repo.commit("unschedulable")
    w.create_source()
    w.create_sync("stuck", "--path", "stuck", "--wait", "--timeout", "4s")

    started = time.monotonic()
    run = w.sync("stuck")
    elapsed = time.monotonic() - started
    assert run.returncode == 1, run.output
    assert run.reason == "HealthCheckFailed"
    assert f"Deployment/{w.ns}/stuck" in run.message
    assert "timeout after 4s" in run.message
    assert 4 <= run.data["durationSeconds"] < 15 and elapsed < 20
    healthy = w.condition("stuck", "Healthy")
    assert healthy["status"] == "False" and f"Deployment/{w.ns}/stuck" in healthy["message"]
    assert w.condition("stuck", "Ready")["reason"] == "HealthCheckFailed"
    assert w.exists("deployment", "stuck")
    assert f"{w.ns}_stuck_apps_Deployment" in w.inventory("stuck"), "applied objects stay in the inventory"
    assert "lastAppliedRevision" not in w.sync_status("stuck")


def test_wait_succeeds_for_an_available_deployment(w: World) -> None:
    w.repo.write("web/deploy.yaml", docs(deployment("web", replicas=2)))
    w.repo.commit("web")
    w.setup({"web": {"path": "web", "wait": True, "timeout": "60s"}})

    w.sync_ok("web")
    live = w.get("deployment", "web")
    assert live is not None
    assert live["status"].get("availableReplicas") == 2
    healthy = w.condition("web", "Healthy")
    assert healthy["status"] == "True"
    assert w.condition("web", "Ready")["status"] == "True"


# ---------------------------------------------------------------------------------- 8. drift


def test_drift_is_corrected_and_an_unchanged_resync_writes_nothing(w: World) -> None:
    w.repo.write("apps/all.yaml", docs(deployment("web", replicas=2), configmap("settings", {"mode": "safe"})))
    w.repo.commit("web and settings")
    w.setup({"app": {"path": "apps"}})
    w.sync_ok("app")

    idle = w.sync_ok("app")
    assert idle.results == {f"Deployment/{w.ns}/web": "unchanged", f"ConfigMap/{w.ns}/settings": "unchanged"}
    assert idle.data["counts"]["unchanged"] == 2 and sum(idle.data["counts"].values()) == 2

    w.kubectl("scale", "deployment/web", "--replicas=5")
    w.kubectl("patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"mode":"reckless"}}')
    scaled = w.get("deployment", "web")
    assert scaled is not None and scaled["spec"]["replicas"] == 5

    fixed = w.sync_ok("app")
    assert fixed.results == {f"Deployment/{w.ns}/web": "configured", f"ConfigMap/{w.ns}/settings": "configured"}
    live = w.get("deployment", "web")
    assert live is not None and live["spec"]["replicas"] == 2
    assert data_of(w, "settings") == {"mode": "safe"}

    idle = w.sync_ok("app")
    assert set(idle.results.values()) == {"unchanged"}


# ---------------------------------------------------------------------------------- 9. delete


def test_delete_sync_prunes_its_objects_unless_keep(w: World) -> None:
    w.repo.write("gone/cm.yaml", docs(configmap("gone-1"), configmap("gone-2")))
    w.repo.write("kept/cm.yaml", docs(configmap("kept-1")))
    w.repo.commit("two syncs")
    w.setup({"gone": {"path": "gone", "prune": True}, "kept": {"path": "kept", "prune": True}})
    w.sync_ok("gone")
    w.sync_ok("kept")
    assert {"gone-1", "gone-2", "kept-1"} <= w.names("configmap")

    out = w.gitops("delete", "sync", "gone")
    assert f"pruned     ConfigMap/{w.ns}/gone-1" in out.stdout
    assert not w.exists("configmap", "gone-1") and not w.exists("configmap", "gone-2")
    assert not w.exists("syncs.kubectl-gitops.dev", "gone")

    w.gitops("delete", "sync", "kept", "--keep")
    assert not w.exists("syncs.kubectl-gitops.dev", "kept")
    assert w.exists("configmap", "kept-1"), "--keep orphans the objects instead of deleting them"
    assert w.exists("gitsources.kubectl-gitops.dev", "src")


# ---------------------------------------------------------------------------------- 10. substitution


def test_substitution_from_the_sync_and_defaults(w: World) -> None:
    w.repo.write("apps/cm.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings-${ENV}
        data:
          env: ${ENV}
          region: ${REGION:=eu-west-1}
          tier: ${TIER:=bronze}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: web
        spec:
          ports:
          - name: http
            port: ${PORT:=8080}
        """)
    w.repo.commit("templated")
    w.create_source()
    w.create_sync("app", "--path", "apps", "--substitute", "ENV=prod", "--substitute", "TIER=gold")

    w.sync_ok("app")
    assert data_of(w, "settings-prod") == {"env": "prod", "region": "eu-west-1", "tier": "gold"}
    service = w.get("service", "web")
    assert service is not None and service["spec"]["ports"][0]["port"] == 8080
