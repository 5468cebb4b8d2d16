"""The whole Engine driven against an in-memory cluster and Git source (tests/unit/fakecluster.py).

What is tested here is the engine's control flow: the order of the steps, the reason and message
recorded when each step fails (an API error keeps the API server's words under the step's reason),
the inventory after a partial apply, that nothing is pruned after a failed apply, and that a
damaged status is recorded as a failure or repaired, never a traceback.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core.errors import SourceFailed, VerificationFailed
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine.reconcile import Engine, StatusNotRecorded, SyncReport
from kubectl_gitops.engine.steps import Step
from kubectl_gitops.engine.tenants import TENANTS
from tests.unit.fakecluster import RESOURCES, SOURCES, SYNCS, FakeCluster, FakeFetcher

JSON = dict[str, Any]
NS = "team"
EVERY_STEP = [Step.TENANCY, Step.DEPENDENCIES, Step.SOURCE, Step.BUILD, Step.PLAN, Step.APPLY, Step.PRUNE,
              Step.HEALTH, Step.RECORD]


def cm(name: str, value: str = "1") -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def files(*objs: JSON) -> dict[str, str]:
    return {"deploy/all.yaml": "---\n".join(yaml.safe_dump(o) for o in objs)}


def sync_obj(name: str = "app", **spec: Any) -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"sourceRef": {"name": "src"}, "path": "deploy", "prune": True, **spec}}


class World:
    """A cluster with a GitSource and a Sync, a Git tree, and an engine over them."""

    def __init__(self, *objs: JSON, **spec: Any) -> None:
        self.cluster = FakeCluster(RESOURCES)
        self.cluster.add({"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
                          "metadata": {"name": "src", "namespace": NS}, "spec": {"url": "file:///repo"}})
        self.cluster.add(sync_obj(**spec))
        self.git = FakeFetcher(self.cluster, files(*objs))
        self.steps: list[Step] = []
        self.engine = Engine(self.cluster.kube, self.git.fetcher, on_step=self.steps.append)

    def run(self, **kwargs: Any) -> SyncReport:
        self.steps.clear()
        return self.engine.reconcile(NS, "app", **kwargs)

    @property
    def status(self) -> JSON:
        found = self.cluster.stored(SYNCS, "app", NS)
        assert found is not None
        return dict(found.get("status") or {})

    def condition(self, kind: str = "Ready") -> JSON:
        return next(c for c in self.status["conditions"] if c["type"] == kind)

    def inventory(self) -> set[str]:
        return {e["id"] for e in self.status["inventory"]["entries"]}

    def configmaps(self) -> set[str]:
        return self.cluster.names("ConfigMap")


def cm_id(name: str) -> str:
    return f"{NS}_{name}__ConfigMap"


def assert_failed(w: World, report: SyncReport, reason: str, *words: str) -> None:
    """The run failed with `reason`, and the report and the status say so (with `words`)."""
    assert not report.ready and report.reason == reason, report
    ready = w.condition()
    assert ready["status"] == "False" and ready["reason"] == reason, ready
    for word in words:
        assert word in report.message and word in ready["message"], (word, ready["message"])
    assert w.status["history"][0]["result"] == reason
    assert any(e["reason"] == reason and e["type"] == "Warning" for e in w.cluster.state.events)


# ---------------------------------------------------------------- the happy path and its order


def test_a_first_run_goes_through_every_step_in_order_and_records_what_it_did() -> None:
    w = World(cm("a"), cm("b"))
    report = w.run()
    assert report.ready and report.reason == "ReconciliationSucceeded", report
    assert w.steps == EVERY_STEP and list(report.steps) == EVERY_STEP
    assert {str(r.ref.name): r.action for r in report.results} == {"a": ObjectAction.CREATED,
                                                                  "b": ObjectAction.CREATED}
    assert report.counts["created"] == 2
    assert w.configmaps() == {"a", "b"}
    assert w.inventory() == {cm_id("a"), cm_id("b")}
    status = w.status
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == w.git.revision
    assert status["observedGeneration"] == 1
    assert status["history"][0]["counts"]["created"] == 2
    assert {c["type"]: c["status"] for c in status["conditions"]} == {"Ready": "True", "Reconciling": "False",
                                                                     "Stalled": "False"}


def test_the_inventory_is_written_ahead_of_the_first_write_and_status_last() -> None:
    w = World(cm("a"))
    w.run()
    verbs = w.cluster.verbs()
    first_apply = verbs.index("apply ConfigMap")
    assert verbs.index("patch Sync/status") < first_apply, verbs  # write-ahead inventory
    assert verbs[-1] == "patch Sync/status", verbs  # the record is the last thing done
    assert "list ConfigMap" in verbs[:first_apply]  # one labelled LIST for the plan


def test_an_unchanged_run_writes_nothing_but_its_status() -> None:
    w = World(cm("a"))
    w.run()
    before = len(w.cluster.calls)
    report = w.run()
    assert report.ready and report.counts["unchanged"] == 1
    writes = [v for v in w.cluster.verbs()[before:] if v.split()[0] in ("apply", "delete", "patch")]
    assert writes == ["patch Sync/status"], writes


def test_objects_removed_from_git_are_pruned_after_the_apply() -> None:
    w = World(cm("a"), cm("b"))
    w.run()
    w.git.commit(files(cm("a", "2")), "b" * 40)
    report = w.run()
    assert report.ready, report
    assert {r.ref.name: r.action for r in report.results} == {"a": ObjectAction.CONFIGURED, "b": ObjectAction.PRUNED}
    verbs = w.cluster.verbs()
    assert max(i for i, v in enumerate(verbs) if v == "apply ConfigMap") < verbs.index("delete ConfigMap")
    assert w.configmaps() == {"a"} and w.inventory() == {cm_id("a")}


def test_a_suspended_sync_is_not_touched() -> None:
    w = World(cm("a"), suspend=True)
    report = w.run()
    assert report.reason == "Suspended" and w.steps == [] and w.git.checkouts == 0
    assert w.configmaps() == set() and "conditions" not in w.status


# ---------------------------------------------------------------- one reason per step


def test_tenancy_unreadable_tenants_is_tenancy_check_failed() -> None:
    w = World(cm("a"))
    w.cluster.resources = w.cluster.resources.with_extra([TENANTS])
    w.cluster.fail("list", "Tenant", status=500, message="etcdserver: request timed out")
    report = w.run()
    assert_failed(w, report, "TenancyCheckFailed", "etcdserver: request timed out")
    assert w.steps == [Step.TENANCY] and w.git.checkouts == 0


def test_dependencies_a_dependency_that_is_not_ready_is_dependency_not_ready() -> None:
    w = World(cm("a"), dependsOn=[{"name": "infra"}])
    w.cluster.add(sync_obj("infra"))  # never reconciled: not Ready
    report = w.run()
    assert_failed(w, report, "DependencyNotReady", f"{NS}/infra")
    assert w.steps == [Step.TENANCY, Step.DEPENDENCIES] and w.git.checkouts == 0


def test_dependencies_an_api_error_reading_one_is_dependency_not_ready_with_the_api_message() -> None:
    w = World(cm("a"), dependsOn=[{"name": "infra"}])
    w.cluster.fail("get", "Sync", "infra", message='syncs "infra" is forbidden: nope')
    report = w.run()
    assert_failed(w, report, "DependencyNotReady", 'syncs "infra" is forbidden: nope')


def test_source_a_failed_fetch_is_source_failed_and_nothing_is_applied() -> None:
    w = World(cm("a"))
    w.git.error = SourceFailed("GitSource team/src: git fetch: repository not found")
    report = w.run()
    assert_failed(w, report, "SourceFailed", "repository not found")
    assert w.steps == [Step.TENANCY, Step.DEPENDENCIES, Step.SOURCE] and w.configmaps() == set()


def test_source_an_api_error_reading_the_gitsource_is_source_failed() -> None:
    w = World(cm("a"))
    w.cluster.fail("get", "GitSource", message='gitsources "src" is forbidden')
    report = w.run()
    assert_failed(w, report, "SourceFailed", 'gitsources "src" is forbidden')


def test_verify_a_refused_signature_is_verification_failed() -> None:
    w = World(cm("a"))
    w.git.error = VerificationFailed("GitSource team/src: commit aaaa refused: unsigned")
    report = w.run()
    assert_failed(w, report, "VerificationFailed", "unsigned")
    assert w.configmaps() == set()


def test_build_invalid_yaml_is_build_failed() -> None:
    w = World()
    w.git.commit({"deploy/bad.yaml": "kind: [unclosed"}, "c" * 40)
    report = w.run()
    assert_failed(w, report, "BuildFailed", "bad.yaml")
    assert w.steps[-1] is Step.BUILD and report.revision == w.git.revision
    assert w.status["lastAttemptedRevision"] == w.git.revision and "lastAppliedRevision" not in w.status


def test_build_a_discovery_error_is_build_failed_with_the_api_message() -> None:
    w = World(cm("a"))
    w.cluster.fail("discover", message="the server is currently unable to handle the request")
    report = w.run()
    assert_failed(w, report, "BuildFailed", "unable to handle the request")


def test_plan_an_api_error_listing_live_objects_is_plan_failed_with_the_api_message() -> None:
    w = World(cm("a"))
    w.cluster.fail("list", "ConfigMap", message='configmaps is forbidden: User "x" cannot list')
    report = w.run()
    assert_failed(w, report, "PlanFailed", 'configmaps is forbidden: User "x" cannot list')
    assert w.steps[-1] is Step.PLAN
    assert "apply ConfigMap" not in w.cluster.verbs() and w.configmaps() == set()


def test_plan_a_corrupt_inventory_is_recorded_and_nothing_is_applied_or_pruned() -> None:
    w = World(cm("a"))
    w.cluster.add(cm("old") | {"metadata": {"name": "old", "namespace": NS,
                                            "labels": {LABEL_SYNC: "app", LABEL_SYNC_NAMESPACE: NS}}})
    w.cluster.merge_patch(SYNCS, "app", NS, {"status": {"inventory": {"entries": [{"id": "garbage"}, 42]}}},
                          subresource="status")
    report = w.run()
    assert_failed(w, report, "InventoryCorrupt", "--reset-inventory")
    assert not {"apply ConfigMap", "delete ConfigMap"} & set(w.cluster.verbs())
    assert w.status["inventory"] == {"entries": [{"id": "garbage"}, 42]}  # left for the repair to read
    repaired = w.run(reset_inventory=True)
    assert repaired.ready, repaired


def test_apply_a_refused_object_is_apply_failed_and_the_inventory_keeps_every_object_written_ahead() -> None:
    w = World(cm("keep"), cm("old"))
    w.run()
    w.git.commit(files(cm("keep", "2"), cm("new"), cm("bad")), "d" * 40)
    w.cluster.fail("apply", "ConfigMap", "bad", status=422, message='ConfigMap "bad" is invalid: data: too long')
    report = w.run()
    assert_failed(w, report, "ApplyFailed", 'ConfigMap "bad" is invalid')
    actions = {r.ref.name: r.action for r in report.results}
    assert actions["bad"] is ObjectAction.FAILED and actions["new"] is ObjectAction.CREATED
    # Written ahead, so the object created before the failure is listed, and the old one too.
    assert w.inventory() == {cm_id("keep"), cm_id("old"), cm_id("new"), cm_id("bad")}
    # Never a prune after a failed apply, though "old" left Git.
    assert "old" in w.configmaps() and "delete ConfigMap" not in w.cluster.verbs()
    assert Step.PRUNE not in w.steps and w.status["lastAppliedRevision"] != w.git.revision


def test_apply_an_unreachable_api_server_is_apply_failed() -> None:
    from kubectl_gitops.core.errors import ClusterUnreachable

    w = World(cm("a"))
    w.cluster.fail("apply", error=ClusterUnreachable("API server https://fake unreachable: timed out"))
    report = w.run()
    assert_failed(w, report, "ApplyFailed", "unreachable")


def test_apply_the_write_ahead_inventory_refused_is_apply_failed_and_nothing_is_written() -> None:
    w = World(cm("a"))
    w.cluster.fail("patch", "Sync", times=1, status=500, message="etcd leader changed")
    report = w.run()
    assert_failed(w, report, "ApplyFailed", "etcd leader changed")
    assert "apply ConfigMap" not in w.cluster.verbs()


def test_prune_a_refused_delete_is_prune_failed_and_stays_in_the_inventory() -> None:
    w = World(cm("a"), cm("b"))
    w.run()
    w.git.commit(files(cm("a")), "e" * 40)
    w.cluster.fail("delete", "ConfigMap", "b", message='configmaps "b" is forbidden')
    report = w.run()
    assert_failed(w, report, "PruneFailed", 'configmaps "b" is forbidden')
    assert w.inventory() == {cm_id("a"), cm_id("b")}  # retried next run, never forgotten
    w.cluster.heal()
    assert w.run().ready and w.inventory() == {cm_id("a")}


def test_health_an_object_that_never_becomes_ready_is_health_check_failed() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    w = World(deploy, wait=True, timeout="0s")
    report = w.run()
    assert_failed(w, report, "HealthCheckFailed", "Deployment")
    assert w.condition("Healthy")["status"] == "False"
    assert w.inventory() == {f"{NS}_web_apps_Deployment"}  # applied, recorded, just not healthy


def test_health_an_api_error_while_waiting_is_health_check_failed() -> None:
    w = World(cm("a"), healthChecks=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "a"}])
    w.run()
    w.cluster.fail("get", "ConfigMap", "a", message="connection reset by peer")
    report = w.run()
    assert_failed(w, report, "HealthCheckFailed", "connection reset by peer")


def test_record_a_refused_status_write_is_recorded_as_record_failed_when_a_retry_gets_through() -> None:
    w = World(cm("a"))
    w.run()
    w.cluster.fail("patch", "Sync", times=1, status=500, message="etcdserver: too many requests")
    report = w.run()  # nothing to create: the first status write is the record
    assert_failed(w, report, "RecordFailed", "too many requests")


def test_record_a_status_that_cannot_be_written_at_all_is_raised_as_a_gitops_error() -> None:
    w = World(cm("a"))
    w.run()
    w.cluster.fail("patch", "Sync", status=500, message="etcdserver: no leader")
    with pytest.raises(StatusNotRecorded, match="no leader"):
        w.run()


def test_an_unforeseen_exception_is_reconcile_error_naming_the_step() -> None:
    w = World(cm("a"))

    def tick(action: ObjectAction, ref: ObjectRef) -> None:
        raise KeyError("a bug")

    w.engine.tick = tick
    report = w.run()
    assert_failed(w, report, "ReconcileError", "KeyError", "during apply")
    assert isinstance(report.error, KeyError)
    assert w.inventory() == {cm_id("a")}  # written ahead: nothing lost


def test_an_invalid_spec_is_stalled_and_no_step_runs() -> None:
    w = World(cm("a"), interval="soon")
    report = w.run()
    assert not report.ready and report.reason == "InvalidSpec" and w.steps == []
    assert w.condition("Stalled")["status"] == "True"


# ---------------------------------------------------------------- a damaged status


def test_garbage_history_and_conditions_are_replaced_never_a_traceback() -> None:
    w = World(cm("a"))
    w.cluster.merge_patch(SYNCS, "app", NS, {"status": {
        "history": ["not a run", {"revision": "old", "durationSeconds": "long"},
                    {"revision": "r1", "startedAt": "2026-01-01T00:00:00Z", "result": "BuildFailed"}],
        "conditions": "Ready"}}, subresource="status")
    report = w.run()
    assert report.ready, report
    history = w.status["history"]
    assert [h["revision"] for h in history] == [w.git.revision, "r1"]  # the readable entry is kept
    assert w.condition()["status"] == "True"


def test_a_status_that_is_not_an_object_is_rewritten() -> None:
    w = World(cm("a"))
    stored = w.cluster.state.objects[("kubectl-gitops.dev", "Sync", NS, "app")]
    stored["status"] = ["garbage"]
    report = w.run()
    assert report.ready, report
    assert w.inventory() == {cm_id("a")}


def test_a_generation_that_is_not_a_number_is_a_recorded_failure() -> None:
    w = World(cm("a"))
    w.cluster.state.objects[("kubectl-gitops.dev", "Sync", NS, "app")]["metadata"]["generation"] = "two"
    report = w.run()
    assert report.reason == "ReconcileError" and "ValueError" in report.message, report
    assert w.condition()["reason"] == "ReconcileError" and w.status["observedGeneration"] == 0


def test_the_sources_status_is_not_the_engines_to_write() -> None:
    w = World(cm("a"))
    w.run()
    assert not [c for c in w.cluster.calls if c.verb == "patch" and c.kind == "GitSource"]
    assert w.cluster.stored(SOURCES, "src", NS) is not None
