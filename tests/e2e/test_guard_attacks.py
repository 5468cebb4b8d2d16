"""The ways around the drift guard, each tried for real: the API server calls the webhook over TLS.

Each test is an attack a user with ordinary `edit` rights (bob) can make on a GitOps-managed
object without touching a field Git declares head-on, and each was let through before the guard
closed it (docs/drift-guard.md lists them with the tests that cover them):

* hostile JSON: nesting deeper than the webhook's decoder in a place the API server stores without
  a schema (managedFields' fieldsV1). The webhook used to answer HTTP 400, which `failurePolicy:
  Ignore` turns into "allowed", so the object became freely editable and deletable;
* deletion through the garbage collector: an ownerReference to an object bob owns (or to none);
  a finalizer, then edits while the object is terminating;
* ownership that moved: an edit allowed while the Sync was suspended moves the field to bob's
  field manager, after which the guard no longer saw it as Git's.

The legitimate paths next to them are checked too: the applier still syncs, the owner of a
finalizer can still finish a deletion, bob can still do all of it to objects no Sync manages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from kubectl_gitops.constants import ANNOTATION_FIELDS
from kubectl_gitops.core import declared
from tests.e2e.webhookworld import (
    MODE_WAIT,
    App,
    Cluster,
    app,
    assert_refused,
    denial,
    make_app,
    retry_until,
    webhook_cluster,
)
from tests.helpers import Run, kubectl

__all__ = ["app", "make_app"]  # fixtures, used by name

CLUSTER = "guard-e2e"
DEEP = 3000  # levels: past the webhook's JSON decoder (~1,000), within the API server's (10,000)


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory)


def data(app: App, name: str = "cfg") -> dict[str, str]:
    got: dict[str, str] = app.get("configmap", name).get("data") or {}
    return got


def patch_cfg(app: App, user: str, patch: object, *extra: str, kind: str = "json") -> Run:
    return app.kubectl(user, "patch", "configmap", "cfg", f"--type={kind}", "-p", json.dumps(patch), *extra)


def suspend_until_allowed(app: App) -> None:
    """Suspend the Sync and wait until the guard's cache says so (a dry run of bob's edit passes)."""
    app.gitops("suspend", "sync", app.sync)
    probe = retry_until(lambda: patch_cfg(app, "bob", {"data": {"a": "probe"}}, "--dry-run=server", kind="merge"),
                        lambda r: r.returncode == 0)
    assert probe.returncode == 0, probe.output


def resume_until_guarded(app: App) -> None:
    app.gitops("resume", "sync", app.sync)
    probe = retry_until(lambda: patch_cfg(app, "bob", {"data": {"a": "probe"}}, "--dry-run=server", kind="merge"),
                        lambda r: r.returncode != 0)
    assert probe.returncode != 0, f"the guard did not come back within {MODE_WAIT}s:\n{probe.output}"


# ------------------------------------------------------------------ 1. hostile JSON


def _deep_entry_patch(tmp_path: Path) -> str:
    """A JSON patch adding a managedFields entry whose fieldsV1 is nested DEEP levels."""
    fields = '{"f:x":' * DEEP + "{}" + "}" * DEEP
    entry = ('{"manager":"bob","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1",'
             f'"fieldsV1":{fields}}}')
    path = tmp_path / "deep-patch.json"
    path.write_text(f'[{{"op":"add","path":"/metadata/managedFields/-","value":{entry}}}]')
    return str(path)


def _stored_depth_ok(app: App) -> bool:
    """Whether the stored object is still plain JSON (no deep entry got in)."""
    got = app.admin("get", "configmap", "cfg", "-o", "json", "--show-managed-fields")
    try:
        json.loads(got.stdout)
    except RecursionError:
        return False
    return True


def test_deep_managed_fields_in_an_edit_are_refused(app: App, tmp_path: Path) -> None:
    patch = _deep_entry_patch(tmp_path)
    result = app.kubectl("bob", "patch", "configmap", "cfg", "--type=json", "--patch-file", patch)
    message = assert_refused(app, result, "could not analyse", "ConfigMap", "cfg")
    assert "nested too deeply" in message, message
    assert _stored_depth_ok(app)


def test_deep_managed_fields_stored_while_suspended_do_not_unlock_the_object(app: App, tmp_path: Path) -> None:
    """Stored during an allowed window, the deep entry must not make the object editable ever after."""
    suspend_until_allowed(app)
    stored = app.kubectl("bob", "patch", "configmap", "cfg", "--type=json", "--patch-file",
                         _deep_entry_patch(tmp_path))
    assert stored.returncode == 0, stored.output
    assert not _stored_depth_ok(app), "the API server did not store the deep entry: the test proves nothing"
    resume_until_guarded(app)
    before = data(app)
    assert_refused(app, patch_cfg(app, "bob", {"data": {"a": "bob"}}, kind="merge"), "could not analyse",
                   "ConfigMap", "cfg")
    assert_refused(app, app.kubectl("bob", "delete", "configmap", "cfg", "--wait=false"), "delete refused",
                   "ConfigMap", "cfg")
    assert data(app) == before


WIDGETS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.guard-e2e.example
spec:
  group: guard-e2e.example
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: guard-e2e.example/v1
kind: Widget
metadata:
  name: w
spec:
  size: 1
"""


def test_deep_value_in_a_custom_resource_is_refused(make_app: Callable[..., App], tmp_path: Path) -> None:
    """A custom resource that preserves unknown fields stores any nesting its clients send."""
    app = make_app(manifest=WIDGETS)
    deep = '{"x":' * DEEP + "1" + "}" * DEEP
    patch = tmp_path / "deep-spec.json"
    patch.write_text(f'{{"spec":{{"size":1,"extra":{deep}}}}}')
    result = app.kubectl("admin", "patch", "widgets.guard-e2e.example", "w", "--type=merge", "--patch-file",
                         str(patch))
    message = assert_refused(app, result, "could not analyse", "Widget", "w")
    assert "nested too deeply" in message, message
    spec = app.get("widgets.guard-e2e.example", "w")["spec"]
    assert spec == {"size": 1}
    # Control: the same patch on a Widget no Sync manages is stored (the API server takes it).
    unmanaged = kubectl("-n", app.ns, "create", "-f", "-", kubeconfig=app.cluster.kubeconfig, input=json.dumps(
        {"apiVersion": "guard-e2e.example/v1", "kind": "Widget", "metadata": {"name": "mine"}, "spec": {}}))
    assert "created" in unmanaged.output
    stored = app.kubectl("admin", "patch", "widgets.guard-e2e.example", "mine", "--type=merge", "--patch-file",
                         str(patch))
    assert stored.returncode == 0, stored.output


# ------------------------------------------------------------------ 2. no deletion through the garbage collector


def _bobs_configmap(app: App) -> str:
    app.kubectl("bob", "create", "configmap", "bobs", "--from-literal=x=y")
    uid: str = app.get("configmap", "bobs")["metadata"]["uid"]
    return uid


@pytest.mark.parametrize("owner", ["bobs-own-object", "nothing"])
def test_owner_reference_to_let_the_gc_delete_is_refused(app: App, owner: str) -> None:
    uid = _bobs_configmap(app) if owner == "bobs-own-object" else "6f1c0f2e-0000-4000-8000-00000000dead"
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bobs", "uid": uid}
    result = patch_cfg(app, "bob", [{"op": "add", "path": "/metadata/ownerReferences", "value": [ref]}])
    assert_refused(app, result, f"metadata.ownerReferences[uid={uid}]", "ConfigMap", "cfg")
    if owner == "bobs-own-object":
        deleted = app.kubectl("bob", "delete", "configmap", "bobs", "--wait=true")
        assert deleted.returncode == 0, deleted.output
    assert "ownerReferences" not in app.get("configmap", "cfg")["metadata"]
    assert app.exists("configmap", "cfg")


def test_bob_may_set_owner_references_and_finalizers_on_his_own_objects(app: App) -> None:
    """Control: RBAC allows all of it, so the refusals here are the guard's."""
    uid = _bobs_configmap(app)
    app.kubectl("bob", "create", "configmap", "child", "--from-literal=x=y")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bobs", "uid": uid}
    for patch in ([{"op": "add", "path": "/metadata/ownerReferences", "value": [ref]}],
                  [{"op": "add", "path": "/metadata/finalizers", "value": ["bob.example/hold"]}],
                  [{"op": "remove", "path": "/metadata/finalizers"}]):
        got = app.kubectl("bob", "patch", "configmap", "child", "--type=json", "-p", json.dumps(patch))
        assert got.returncode == 0, got.output


def test_finalizer_is_refused(app: App) -> None:
    result = patch_cfg(app, "bob", [{"op": "add", "path": "/metadata/finalizers", "value": ["bob.example/hold"]}])
    assert_refused(app, result, 'metadata.finalizers[="bob.example/hold"]', "ConfigMap", "cfg")


def test_terminating_object_stays_guarded_and_its_finalizer_can_still_go(app: App) -> None:
    suspend_until_allowed(app)
    held = patch_cfg(app, "bob", [{"op": "add", "path": "/metadata/finalizers", "value": ["bob.example/hold"]}])
    assert held.returncode == 0, held.output
    deleted = app.kubectl("bob", "delete", "configmap", "cfg", "--wait=false")
    assert deleted.returncode == 0, deleted.output
    assert app.get("configmap", "cfg")["metadata"].get("deletionTimestamp")
    resume_until_guarded(app)
    assert_refused(app, patch_cfg(app, "bob", {"data": {"a": "bob"}}, kind="merge"), "data.a", "ConfigMap", "cfg")
    assert data(app)["a"] == "1"
    # The finalizer's owner can finish the deletion.
    released = patch_cfg(app, "bob", [{"op": "remove", "path": "/metadata/finalizers"}])
    assert released.returncode == 0, released.output
    gone = retry_until(lambda: app.admin("get", "configmap", "cfg", "--ignore-not-found", "-o", "name"),
                       lambda r: not r.stdout.strip())
    assert not gone.stdout.strip(), "the configmap was not deleted after its finalizer was removed"


# ------------------------------------------------------------------ 3. what Git declares, not only what we own now


def _declared_manifest() -> str:
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}}
    record = declared.encode(declared.with_declared(cfg))
    cfg["metadata"]["annotations"] = {ANNOTATION_FIELDS: record}  # type: ignore[index]
    return yaml.safe_dump(cfg)


def test_field_edited_while_suspended_is_guarded_again_after_resume(make_app: Callable[..., App]) -> None:
    app = make_app(manifest=_declared_manifest())
    assert_refused(app, patch_cfg(app, "bob", {"data": {"a": "x"}}, kind="merge"), "data.a", "ConfigMap", "cfg")
    suspend_until_allowed(app)
    edited = patch_cfg(app, "bob", {"data": {"a": "bob"}}, kind="merge")
    assert edited.returncode == 0, edited.output
    live = json.loads(app.admin("get", "configmap", "cfg", "-o", "json", "--show-managed-fields").stdout)
    owners = {e["manager"]: e for e in live["metadata"]["managedFields"]}
    assert '"f:a"' not in json.dumps(owners["kubectl-gitops"]["fieldsV1"]), "ownership of data.a did not move"
    resume_until_guarded(app)
    result = patch_cfg(app, "bob", {"data": {"a": "bob-again"}}, kind="merge")
    message = denial(result)
    assert "data.a" in message and "ConfigMap" in message, message
    assert data(app)["a"] == "bob"
    # b never moved: still refused by today's owned-fields rule; the applier still takes a back.
    assert_refused(app, patch_cfg(app, "bob", {"data": {"b": "x"}}, kind="merge"), "data.b", "ConfigMap", "cfg")
    out = app.gitops("sync", app.sync)
    assert "ReconciliationSucceeded" in out.output, out.output
    assert data(app)["a"] == "1"
