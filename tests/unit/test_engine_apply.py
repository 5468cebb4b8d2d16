"""engine.apply.Applier's own logic against a small in-memory fake of the Kube adapter.

The fake records every call and answers like an API server would for the few things the applier
relies on (SSA returns the object with a creationTimestamp, GET of a deleted object is None, CRDs
become Established). It is not a stand-in for e2e: it exists to test stage order, no-op skipping,
failure propagation, prune ownership and force-recreate decisions.
"""

from __future__ import annotations

import builtins
import copy
import threading
import time
from typing import Any, cast

import pytest

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import (
    ANNOTATION_PRUNE,
    FIELD_MANAGER,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
    PRUNE_DISABLED,
)
from kubectl_gitops.core.discovery import ResourceInfo, ResourceMap
from kubectl_gitops.core.errors import ApplyFailed
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of
from kubectl_gitops.core.plan import Verb, plan, stamp
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine.apply import Applier, ApplyFailedWith, ObjectResult, selector
from tests.unit.fakefields import applied

JSON = dict[str, Any]
SYNC, SYNC_NS = "apps", "team-a"
OLD = "2024-01-02T03:04:05Z"

RESOURCES = ResourceMap([
    ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    ResourceInfo("", "v1", "Namespace", "namespaces", False),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", True),
    ResourceInfo("", "v1", "Service", "services", True),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True),
    ResourceInfo("apps", "v1", "Deployment", "deployments", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceInfo("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration",
                 "validatingwebhookconfigurations", False),
])


def now_stamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKube:
    """Implements the part of Kube the applier uses; records calls; thread-safe."""

    def __init__(self, objects: list[JSON] | None = None) -> None:
        self.objects: dict[IdentityKey, JSON] = {ref_of(o).key: copy.deepcopy(o) for o in objects or []}
        self.calls: list[tuple[Any, ...]] = []
        self.apply_errors: dict[str, ApiError] = {}  # name -> error raised by the (first) apply
        self.delete_errors: dict[str, ApiError] = {}
        self._lock = threading.Lock()

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def _key(self, info: ResourceInfo, name: str, namespace: str | None) -> IdentityKey:
        return (info.group, info.kind, namespace or "", name)

    def list(self, info: ResourceInfo, *, label_selector: str = "", namespace: str | None = None,
             page: int = 1000) -> list[JSON]:
        self._record("list", info.kind, label_selector)
        wanted = dict(part.split("=", 1) for part in label_selector.split(",") if part)
        return [copy.deepcopy(o) for (g, k, _, _), o in self.objects.items()
                if (g, k) == (info.group, info.kind)
                and all((o["metadata"].get("labels") or {}).get(lk) == lv for lk, lv in wanted.items())]

    def apply(self, info: ResourceInfo, obj: JSON, *, field_manager: str, force: bool = True,
              dry_run: bool = False) -> JSON:
        name = obj["metadata"]["name"]
        self._record("apply", obj["kind"], name, field_manager, force)
        with self._lock:
            err = self.apply_errors.pop(name, None)
        if err is not None:
            raise err
        key = ref_of(obj).key
        out = applied(obj, field_manager)
        existing = self.objects.get(key)
        out["metadata"]["creationTimestamp"] = (existing or {}).get("metadata", {}).get(
            "creationTimestamp") or now_stamp()
        if obj["kind"] == "CustomResourceDefinition":
            out["status"] = {"conditions": [{"type": "NamesAccepted", "status": "True"},
                                            {"type": "Established", "status": "True"}]}
        with self._lock:
            self.objects[key] = out
        return copy.deepcopy(out)

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> JSON | None:
        self._record("get", info.kind, name)
        found = self.objects.get(self._key(info, name, namespace))
        return copy.deepcopy(found) if found is not None else None

    def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
               propagation: str = "Background") -> bool:
        return self.delete_object(info, name, namespace, propagation=propagation) is not None

    def delete_object(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                      propagation: str = "Background") -> JSON | None:
        self._record("delete", info.kind, name, propagation)
        if name in self.delete_errors:
            raise self.delete_errors[name]
        key = self._key(info, name, namespace)
        with self._lock:
            found = self.objects.get(key)
            if found is None:
                return None
            if found["metadata"].get("finalizers"):  # held: marked for deletion, still there
                found["metadata"]["deletionTimestamp"] = now_stamp()
                return copy.deepcopy(found)
            return self.objects.pop(key)

    def request(self, method: str, path: str, **_: Any) -> JSON:
        self._record("request", method, path)
        raise AssertionError(f"the applier should not send raw requests ({method} {path})")

    def names(self, verb: str) -> builtins.list[str]:
        return [c[2] for c in self.calls if c[0] == verb]


def applier(kube: FakeKube, **kwargs: Any) -> Applier:
    return Applier(cast(Kube, kube), RESOURCES, SYNC, SYNC_NS, **kwargs)


def own(obj: JSON, revision: str = "main@sha1:4c3b2a1f") -> JSON:
    return stamp(obj, SYNC, SYNC_NS, revision)


def namespace(name: str = "prod") -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def crd() -> JSON:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"kind": "Widget", "plural": "widgets", "singular": "widget",
                               "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


def widget() -> JSON:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "prod"},
            "spec": {"size": 3}}


def deployment(name: str = "web", image: str = "ghcr.io/stefanprodan/podinfo:6.7.1") -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image,
                                                           "ports": [{"containerPort": 9898}]}]}}}}


def configmap(name: str = "settings", **data: str) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "prod"},
            "data": data or {"LOG_LEVEL": "info"}}


def service(name: str = "web") -> JSON:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "prod"},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 9898}]}}


def webhook_config() -> JSON:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "policy"},
            "webhooks": [{"name": "policy.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                          "clientConfig": {"service": {"name": "web", "namespace": "prod", "path": "/v"}}}]}


def cluster_role() -> JSON:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}


def live_copy(obj: JSON, created: str = OLD) -> JSON:
    """What the server holds after applying `obj` earlier: the object plus server-set fields."""
    out = applied(obj)
    out["metadata"].update({"uid": f"uid-{obj['metadata']['name']}", "resourceVersion": "4711",
                            "creationTimestamp": created, "generation": 1})
    if obj["kind"] == "Deployment":
        out["spec"]["strategy"] = {"type": "RollingUpdate"}
        out["status"] = {"observedGeneration": 1, "replicas": 2, "readyReplicas": 2}
    return out


def run(a: Applier, desired: list[JSON], live: dict[IdentityKey, JSON] | None = None) -> list[ObjectResult]:
    changes = a.plan(desired, live or {})
    return a.apply(changes, time.time())


def by_name(results: list[ObjectResult]) -> dict[str, str]:
    return {r.ref.name: r.action for r in results}


# --- reading live state --------------------------------------------------------------------------


def test_selector_uses_both_ownership_labels() -> None:
    assert selector(SYNC, SYNC_NS) == f"{LABEL_SYNC}=apps,{LABEL_SYNC_NAMESPACE}=team-a"


def test_live_objects_one_labelled_list_per_served_kind() -> None:
    mine = own(live_copy(configmap()))
    theirs = stamp(live_copy(configmap("other")), "other-sync", SYNC_NS, "r")
    kube = FakeKube([mine, theirs, own(live_copy(deployment()))])
    live = applier(kube).live_objects([("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "ConfigMap"),
                                       ("example.com/v1", "Widget")])
    lists = sorted((c[1], c[2]) for c in kube.calls if c[0] == "list")
    assert lists == [("ConfigMap", selector(SYNC, SYNC_NS)), ("Deployment", selector(SYNC, SYNC_NS))]
    assert set(live) == {("", "ConfigMap", "prod", "settings"), ("apps", "Deployment", "prod", "web")}


# --- apply ---------------------------------------------------------------------------------------


def test_stage_order_definitions_then_resources_then_admission() -> None:
    kube = FakeKube()
    desired = [own(o) for o in (webhook_config(), deployment(), configmap(), namespace(), crd(), widget(),
                                cluster_role(), service())]
    results = run(applier(kube), desired)
    applied = kube.names("apply")
    assert len(applied) == 8
    assert sorted(applied[:3]) == ["prod", "reader", "widgets.example.com"]
    assert sorted(applied[3:7]) == ["settings", "w1", "web", "web"]  # Deployment and Service "web"
    assert applied[7] == "policy"
    assert [c[3:] for c in kube.calls if c[0] == "apply"] == [(FIELD_MANAGER, True)] * 8
    assert {r.action for r in results} == {"created"}
    assert len(results) == 8


def test_crd_established_is_awaited_and_its_kind_becomes_known() -> None:
    kube = FakeKube()
    a = applier(kube)
    assert a.resources.get("example.com/v1", "Widget") is None
    results = run(a, [own(crd()), own(namespace()), own(widget())])
    assert by_name(results) == {"widgets.example.com": "created", "prod": "created", "w1": "created"}
    gets = [c for c in kube.calls if c[0] == "get"]
    assert ("get", "CustomResourceDefinition", "widgets.example.com") in gets
    first_widget = kube.calls.index(("apply", "Widget", "w1", FIELD_MANAGER, True))
    assert kube.calls.index(("get", "CustomResourceDefinition", "widgets.example.com")) < first_widget
    info = a.resources.get("example.com/v1", "Widget")
    assert info is not None
    assert (info.plural, info.namespaced) == ("widgets", True)


def test_unchanged_objects_cause_no_apply_call() -> None:
    desired = [own(configmap()), own(deployment()), own(service())]
    live_objs = [live_copy(o) for o in desired[:2]]
    kube = FakeKube(live_objs)
    a = applier(kube)
    live = {ref_of(o).key: o for o in live_objs}
    changes = a.plan(desired, live)
    assert [x.verb for x in changes.actions] == [Verb.UNCHANGED, Verb.UNCHANGED, Verb.CREATE]
    results = a.apply(changes, time.time())
    assert kube.names("apply") == ["web"]  # only the Service
    assert by_name(results) == {"settings": "unchanged", "web": "created"}
    assert sorted(r.action for r in results) == ["created", "unchanged", "unchanged"]


def test_changed_object_is_configured() -> None:
    old = own(configmap(LOG_LEVEL="info"))
    kube = FakeKube([live_copy(old)])
    new = own(configmap(LOG_LEVEL="debug"))
    results = run(applier(kube), [new], {ref_of(old).key: live_copy(old)})
    assert kube.names("apply") == ["settings"]
    assert results == [ObjectResult(ref_of(new), "configured")]


def test_existing_unlabelled_object_is_configured_not_created() -> None:
    # not in `live` (no labels yet), so planned as a create; the server says it's old: "configured"
    kube = FakeKube([live_copy(configmap())])
    results = run(applier(kube), [own(configmap())])
    assert [r.action for r in results] == ["configured"]


def test_tick_reports_every_object() -> None:
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def tick(action: str, ref: ObjectRef) -> None:
        with lock:
            seen.append((action, ref.name))

    desired = [own(configmap()), own(deployment())]
    live = {ref_of(desired[0]).key: live_copy(desired[0])}
    run(applier(FakeKube(), tick=tick), desired, live)
    assert sorted(seen) == [("created", "web"), ("unchanged", "settings")]


def test_failed_object_stops_later_stages_and_carries_results() -> None:
    kube = FakeKube()
    kube.apply_errors["web"] = ApiError(422, 'Deployment.apps "web" is invalid: spec.template.spec.containers[0]'
                                             '.image: Required value', "Invalid")
    desired = [own(o) for o in (namespace(), deployment(), configmap(), webhook_config())]
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube), desired)
    assert "policy" not in kube.names("apply")  # stage 2 never started
    assert set(kube.names("apply")) == {"prod", "web", "settings"}  # the rest of stage 1 still ran
    results = by_name(err.value.results)
    assert results == {"prod": "created", "web": "failed", "settings": "created"}
    failed = next(r for r in err.value.results if r.action == "failed")
    assert failed.message.startswith("Deployment/prod/web: ")
    assert "Required value" in failed.message
    assert str(err.value).startswith("1 object(s) failed to apply: Deployment/prod/web: ")
    assert isinstance(err.value, ApplyFailed)
    assert err.value.reason == "ApplyFailed"


def test_failure_in_definitions_stops_everything_after() -> None:
    kube = FakeKube()
    kube.apply_errors["prod"] = ApiError(403, 'namespaces "prod" is forbidden: User "system:serviceaccount:'
                                              'team-a:deployer" cannot patch resource "namespaces"', "Forbidden")
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube), [own(namespace()), own(deployment()), own(configmap())])
    assert kube.names("apply") == ["prod"]
    assert by_name(err.value.results) == {"prod": "failed"}


def test_unserved_kind_fails_that_object_with_a_clear_message() -> None:
    kube = FakeKube()
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube), [own(widget()), own(configmap())])  # no CRD for Widget anywhere
    failed = [r for r in err.value.results if r.action == "failed"]
    assert [r.ref.name for r in failed] == ["w1"]
    assert failed[0].message == "Widget/prod/w1: Widget in example.com/v1 is not served by the API server"
    assert "w1" not in kube.names("apply")


def test_many_failures_are_summarised() -> None:
    kube = FakeKube()
    names = [f"cm-{i}" for i in range(5)]
    for n in names:
        kube.apply_errors[n] = ApiError(500, f"etcdserver: request timed out ({n})")
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube), [own(configmap(n)) for n in names])
    assert str(err.value).startswith("5 object(s) failed to apply: ")
    assert str(err.value).endswith(" (and 2 more)")
    assert len(err.value.results) == 5


# --- force ---------------------------------------------------------------------------------------

IMMUTABLE = ApiError(422, 'Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector'
                          '{MatchLabels:map[string]string{"app":"web2"}}: field is immutable', "Invalid")


def changed_selector() -> JSON:
    obj = deployment()
    obj["spec"]["selector"]["matchLabels"]["app"] = "web2"
    obj["spec"]["template"]["metadata"]["labels"]["app"] = "web2"
    return own(obj)


def test_force_recreates_on_immutable_field_error() -> None:
    old = own(deployment())
    kube = FakeKube([live_copy(old)])
    kube.apply_errors["web"] = IMMUTABLE
    results = run(applier(kube, force=True), [changed_selector()], {ref_of(old).key: live_copy(old)})
    verbs = [c[:3] for c in kube.calls if c[0] in ("apply", "delete")]
    assert verbs == [("apply", "Deployment", "web"), ("delete", "Deployment", "web"),
                     ("apply", "Deployment", "web")]
    assert ("delete", "Deployment", "web", "Foreground") in kube.calls
    assert results == [ObjectResult(ref_of(old), "configured", "recreated (immutable field changed, force)")]
    assert kube.objects[ref_of(old).key]["spec"]["selector"]["matchLabels"] == {"app": "web2"}


def test_without_force_immutable_error_fails_and_deletes_nothing() -> None:
    old = own(deployment())
    kube = FakeKube([live_copy(old)])
    kube.apply_errors["web"] = IMMUTABLE
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube), [changed_selector()], {ref_of(old).key: live_copy(old)})
    assert kube.names("delete") == []
    assert "field is immutable" in err.value.results[0].message


@pytest.mark.parametrize("error", [
    ApiError(422, 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be >= 0', "Invalid"),
    ApiError(409, 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
                  '.spec.replicas', "Conflict"),
    ApiError(400, "field is immutable", "BadRequest"),
])
def test_force_does_not_recreate_on_other_errors(error: ApiError) -> None:
    old = own(deployment())
    kube = FakeKube([live_copy(old)])
    kube.apply_errors["web"] = error
    with pytest.raises(ApplyFailedWith):
        run(applier(kube, force=True), [changed_selector()], {ref_of(old).key: live_copy(old)})
    assert kube.names("delete") == []
    assert len(kube.names("apply")) == 1


def test_force_recreate_failure_is_reported() -> None:
    old = own(deployment())
    kube = FakeKube([live_copy(old)])
    kube.apply_errors["web"] = IMMUTABLE
    kube.delete_errors["web"] = ApiError(403, 'deployments.apps "web" is forbidden', "Forbidden")
    with pytest.raises(ApplyFailedWith) as err:
        run(applier(kube, force=True), [changed_selector()], {ref_of(old).key: live_copy(old)})
    message = err.value.results[0].message
    assert message.startswith("Deployment/prod/web: recreate failed: ")
    assert "forbidden" in message


# --- prune ---------------------------------------------------------------------------------------


def test_prune_deletes_only_objects_carrying_both_labels() -> None:
    mine = own(live_copy(configmap("old-settings")))
    other_sync = stamp(live_copy(configmap("adopted")), "other", SYNC_NS, "r")
    other_ns = stamp(live_copy(configmap("same-name-other-ns")), SYNC, "team-b", "r")
    one_label = live_copy(configmap("half"))
    one_label["metadata"]["labels"] = {LABEL_SYNC: SYNC}
    kube = FakeKube([mine, other_sync, other_ns, one_label])
    objs = [mine, other_sync, other_ns, one_label]
    live = {ref_of(o).key: o for o in objs}
    results, keep = applier(kube).prune([ref_of(o) for o in objs], live)
    assert kube.names("delete") == ["old-settings"]
    assert by_name(results) == {"old-settings": "pruned", "adopted": "skipped", "same-name-other-ns": "skipped",
                                "half": "skipped"}
    assert keep == []
    assert ref_of(mine).key not in kube.objects
    assert ref_of(other_sync).key in kube.objects


def test_prune_skips_prune_disabled_from_git() -> None:
    in_git = own(configmap("keep-me"))
    in_git["metadata"]["annotations"][ANNOTATION_PRUNE] = PRUNE_DISABLED
    kept = live_copy(own(in_git))
    kube = FakeKube([kept])
    results, keep = applier(kube).prune([ref_of(kept)], {ref_of(kept).key: kept})
    assert kube.names("delete") == []
    assert results[0].action == "skipped"
    assert PRUNE_DISABLED in results[0].message
    assert keep == []


def test_prune_disabled_added_to_the_live_object_only_does_not_count() -> None:
    added = live_copy(own(configmap("added-later")))
    added["metadata"]["annotations"][ANNOTATION_PRUNE] = PRUNE_DISABLED  # kubectl annotate, not Git
    kube = FakeKube([added])
    results, keep = applier(kube).prune([ref_of(added)], {ref_of(added).key: added})
    assert kube.names("delete") == ["added-later"]
    assert results[0].action == "pruned" and keep == []


def test_an_object_held_by_a_finalizer_waits_in_the_inventory() -> None:
    held = live_copy(own(configmap("held")))
    held["metadata"]["finalizers"] = ["example.com/hold"]
    kube = FakeKube([held])
    a = applier(kube)
    results, keep = a.prune([ref_of(held)], {ref_of(held).key: held})
    assert [(r.action, "example.com/hold" in r.message) for r in results] == [("waiting", True)]
    assert keep == [ref_of(held)]
    # Next run: still there, being deleted: still waiting, not deleted again.
    again = kube.objects[ref_of(held).key]
    results, keep = a.prune([ref_of(held)], {ref_of(held).key: again})
    assert [r.action for r in results] == ["waiting"] and keep == [ref_of(held)]
    assert kube.names("delete") == ["held"]
    # Once gone, it leaves the inventory.
    results, keep = a.prune([ref_of(held)], {})
    assert [r.action for r in results] == ["skipped"] and keep == []


def test_prune_skips_objects_already_gone() -> None:
    ref = ref_of(configmap("gone"))
    kube = FakeKube()
    results, keep = applier(kube).prune([ref], {})
    assert kube.names("delete") == []
    why = "ConfigMap/prod/gone is already gone (or no longer carries this Sync's labels)"
    assert results == [ObjectResult(ref, ObjectAction.SKIPPED, why)]
    assert keep == []


def test_failed_deletes_are_kept() -> None:
    a = own(live_copy(configmap("a")))
    b = own(live_copy(deployment("b")))
    kube = FakeKube([a, b])
    kube.delete_errors["b"] = ApiError(403, 'deployments.apps "b" is forbidden: User "system:serviceaccount:'
                                            'team-a:deployer" cannot delete resource "deployments"', "Forbidden")
    results, keep = applier(kube).prune([ref_of(a), ref_of(b)], {ref_of(a).key: a, ref_of(b).key: b})
    assert keep == [ref_of(b)]
    assert by_name(results) == {"a": "pruned", "b": "failed"}
    failed = next(r for r in results if r.action == "failed")
    assert failed.message.startswith("Deployment/prod/b: delete failed: ")


def test_prune_of_a_kind_no_longer_served_is_skipped_not_kept() -> None:
    w = own(live_copy(widget()))
    kube = FakeKube([w])
    results, keep = applier(kube).prune([ref_of(w)], {ref_of(w).key: w})
    assert kube.names("delete") == []
    assert results == [ObjectResult(ref_of(w), "skipped", "Widget is no longer served")]
    assert keep == []


def test_the_applier_never_sends_raw_requests() -> None:
    kube = FakeKube()
    run(applier(kube), [own(namespace()), own(configmap())])
    applier(kube).prune([ref_of(configmap())], {ref_of(configmap()).key: kube.objects[ref_of(configmap()).key]})
    assert not [c for c in kube.calls if c[0] == "request"]
    assert kube.names("delete") == ["settings"]


def test_an_unreachable_server_stops_the_stage_instead_of_timing_out_object_by_object() -> None:
    """After the first ClusterUnreachable the remaining objects are not sent (bounded failure time)."""
    from kubectl_gitops.core.errors import ClusterUnreachable

    class DeadKube(FakeKube):
        def apply(self, info: ResourceInfo, obj: JSON, *, field_manager: str, force: bool = True,
                  dry_run: bool = False) -> JSON:
            self._record("apply", obj["kind"], obj["metadata"]["name"], field_manager, force)
            raise ClusterUnreachable("API server https://127.0.0.1:1 unreachable (PATCH ...): timed out")

    kube = DeadKube()
    objs = [own(configmap(f"c{i}")) for i in range(40)]
    with pytest.raises(ApplyFailedWith) as err:
        applier(kube, concurrency=1).apply(plan(objs, {}), 0.0)
    assert len(kube.names("apply")) == 1, "only the first request may be sent to a dead server"
    results = err.value.results
    assert len(results) == 40 and all(r.action == "failed" for r in results)
    assert results[0].message.startswith("ConfigMap/") and "unreachable" in results[0].message
    assert "not sent, the API server is unreachable" in results[1].message


def test_an_object_refused_as_too_large_is_named_and_the_rest_is_applied() -> None:
    kube = FakeKube()
    kube.apply_errors["huge"] = ApiError(413, "Request entity too large: limit is 3145728")
    a = applier(kube)
    changes = a.plan([own(configmap("huge")), own(configmap("small"))], {})
    with pytest.raises(ApplyFailedWith) as failed:
        a.apply(changes, time.time())
    messages = {r.ref.name: (r.action, r.message) for r in failed.value.results}
    assert messages["small"][0] == "created"
    assert messages["huge"][0] == "failed"
    assert messages["huge"][1].startswith("ConfigMap/prod/huge: refused by the API server as too large (")
    assert "unreachable" not in str(failed.value)
