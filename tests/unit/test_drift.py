"""The drift guard (kubectl_gitops.core.drift): each attack first, then what must keep working."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.constants import BREAK_GLASS_GROUP, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core.admission import AdmissionRequest, AdmissionResponse, request_from_review
from kubectl_gitops.core.drift import SyncInfo, needs_judgement, ownership, review

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
APPLIER = "system:serviceaccount:gitops:shop-applier"
REVISION = "main@sha1:4f2c9a1e0b7d3c6a5e8f9012b3c4d5e6f7a8b9c0"
SYNC = SyncInfo(name="shop-apps", namespace="gitops",
                source_url="https://deploy:ghp_s3cret@github.com/acme/shop.git?token=abc",
                path="./apps/shop", revision=REVISION, mode="enforce", appliers=frozenset({APPLIER}))
IMAGE_FIELD = "spec.template.spec.containers[name=web].image"


def raw(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def request(name: str, edit: Callable[[dict[str, Any]], None] | None = None) -> AdmissionRequest:
    doc = raw(name)
    if edit is not None:
        edit(doc["request"])
    return request_from_review(doc)


def lookup_of(*syncs: SyncInfo) -> Callable[[str, str], SyncInfo | None]:
    table = {(s.namespace, s.name): s for s in syncs}
    calls: list[tuple[str, str]] = []

    def lookup(namespace: str, name: str) -> SyncInfo | None:
        calls.append((namespace, name))
        return table.get((namespace, name))

    lookup.calls = calls  # type: ignore[attr-defined]
    return lookup


def judge(req: AdmissionRequest, *syncs: SyncInfo, parent: dict[str, Any] | None = None) -> AdmissionResponse:
    return review(req, lookup_of(*(syncs or (SYNC,))), break_glass_group=BREAK_GLASS_GROUP, parent=parent)


def as_user(username: str, groups: list[str] | None = None) -> Callable[[dict[str, Any]], None]:
    def edit(r: dict[str, Any]) -> None:
        r["userInfo"] = {"username": username, "uid": "x", "groups": groups or ["system:authenticated"]}
    return edit


def both(*edits: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(r: dict[str, Any]) -> None:
        for e in edits:
            e(r)
    return edit


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return result


def assert_denied(resp: AdmissionResponse, *fields: str) -> None:
    assert resp.allowed is False, resp
    assert resp.code == 403
    for f in fields:
        assert f in resp.message


# ------------------------------------------------------------------ attacks


def test_attack_non_applier_edits_owned_field_is_denied() -> None:
    resp = judge(request("deployment_update_kubectl_edit.json"))
    assert_denied(resp, IMAGE_FIELD)
    assert resp.reason == "OwnedFieldChanged"
    assert resp.uid == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"


def test_refusal_message_names_sync_source_path_revision_and_way_forward() -> None:
    msg = judge(request("deployment_update_kubectl_edit.json")).message
    lines = msg.splitlines()
    assert len(lines) <= 2
    assert "Deployment shop/web" in lines[0] and "Sync gitops/shop-apps" in lines[0]
    assert "https://github.com/acme/shop.git" in lines[0]
    assert "path ./apps/shop" in lines[0] and REVISION in lines[0]
    assert lines[1] == ("Change it in Git, or suspend the Sync: kubectl gitops suspend sync shop-apps -n gitops")


def test_refusal_message_never_leaks_source_credentials() -> None:
    msg = judge(request("deployment_update_kubectl_edit.json")).message
    assert "ghp_s3cret" not in msg and "deploy:" not in msg and "token=abc" not in msg


def test_refusal_lists_first_fields_and_counts_the_rest() -> None:
    def edit(r: dict[str, Any]) -> None:
        new = r["object"]
        new["spec"]["replicas"] = 9
        new["spec"]["selector"] = {"matchLabels": {"app": "evil"}}
        containers(new)[0]["resources"]["limits"]["memory"] = "8Gi"
        new["metadata"]["labels"]["app"] = "evil"
    resp = judge(request("deployment_update_kubectl_edit.json", edit))
    assert_denied(resp, "(+2 more)")
    assert len(resp.message.splitlines()) == 2


def test_attack_removing_ownership_label_is_denied() -> None:
    def edit(r: dict[str, Any]) -> None:
        r["object"] = copy.deepcopy(r["oldObject"])
        del r["object"]["metadata"]["labels"][LABEL_SYNC]
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)), LABEL_SYNC)


def test_attack_relabelling_to_a_missing_or_suspended_sync_is_denied() -> None:
    # Ownership is read from the OLD object; the new labels are the attacker's to choose.
    suspended = dataclasses.replace(SYNC, name="other", suspended=True)
    for target in ("no-such-sync", "other"):
        def edit(r: dict[str, Any], target: str = target) -> None:
            r["object"] = copy.deepcopy(r["oldObject"])
            r["object"]["metadata"]["labels"][LABEL_SYNC] = target
        lookup = lookup_of(SYNC, suspended)
        resp = review(request("deployment_update_kubectl_edit.json", edit), lookup,
                      break_glass_group=BREAK_GLASS_GROUP)
        assert_denied(resp, LABEL_SYNC)
        assert lookup.calls == [("gitops", "shop-apps")]  # type: ignore[attr-defined]


def test_attack_changing_sync_namespace_label_is_denied() -> None:
    def edit(r: dict[str, Any]) -> None:
        r["object"] = copy.deepcopy(r["oldObject"])
        r["object"]["metadata"]["labels"][LABEL_SYNC_NAMESPACE] = "elsewhere"
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)), LABEL_SYNC_NAMESPACE)


def test_attack_delete_by_non_applier_is_denied() -> None:
    resp = judge(request("deployment_delete.json"))
    assert_denied(resp, "delete refused")
    assert resp.reason == "DeleteRefused"


def test_attack_spoofed_field_manager_is_still_denied() -> None:
    # `kubectl apply --server-side --field-manager=kubectl-gitops --force-conflicts` by alice:
    # the new managedFields say kubectl-gitops owns the new value; only userInfo counts.
    def edit(r: dict[str, Any]) -> None:
        r["options"] = {"kind": "PatchOptions", "apiVersion": "meta.k8s.io/v1",
                        "fieldManager": "kubectl-gitops", "force": True}
        new = copy.deepcopy(r["oldObject"])
        containers(new)[0]["image"] = "evil:latest"
        r["object"] = new
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)), IMAGE_FIELD)


def test_attack_rewriting_managed_fields_to_disown_git_is_denied() -> None:
    # Step one of a two-step attack: drop Git's ownership record without touching values, so a
    # second edit would find nothing owned. The record itself is guarded.
    def edit(r: dict[str, Any]) -> None:
        new = copy.deepcopy(r["oldObject"])
        new["metadata"]["managedFields"] = [e for e in new["metadata"]["managedFields"]
                                            if e["manager"] != "kubectl-gitops"]
        r["object"] = new
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)),
                  "metadata.managedFields[manager=kubectl-gitops]")


def test_attack_applier_of_another_sync_is_denied() -> None:
    other = SyncInfo(name="tenant-b", namespace="team-b",
                     appliers=frozenset({"system:serviceaccount:team-b:applier"}))
    req = request("deployment_update_kubectl_edit.json", as_user("system:serviceaccount:team-b:applier"))
    assert_denied(judge(req, SYNC, other))


def test_attack_lookalike_system_deleter_is_denied() -> None:
    for user in ("system:serviceaccount:kube-system:generic-garbage-collector2",
                 "system:serviceaccount:attacker:generic-garbage-collector",
                 "generic-garbage-collector"):
        assert_denied(judge(request("deployment_delete.json", as_user(user))))


def test_attack_gc_identity_may_delete_but_not_edit_owned_fields() -> None:
    gc = as_user("system:serviceaccount:kube-system:generic-garbage-collector")
    assert_denied(judge(request("deployment_update_kubectl_edit.json", gc)), IMAGE_FIELD)


@pytest.mark.parametrize("where", ["username", "extra", "labels", "annotations"])
def test_attack_break_glass_only_from_userinfo_groups(where: str) -> None:
    def edit(r: dict[str, Any]) -> None:
        if where == "username":
            r["userInfo"]["username"] = BREAK_GLASS_GROUP
        elif where == "extra":
            r["userInfo"]["extra"] = {"groups": [BREAK_GLASS_GROUP]}
        else:
            r["object"]["metadata"][where]["groups"] = BREAK_GLASS_GROUP
            r["object"]["metadata"][where][BREAK_GLASS_GROUP] = "true"
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)))


def test_attack_scale_subresource_when_git_owns_replicas_is_denied() -> None:
    parent = raw("deployment_update_kubectl_edit.json")["request"]["oldObject"]
    resp = judge(request("deployment_scale.json"), parent=parent)
    assert_denied(resp, "spec.replicas", "Sync gitops/shop-apps")


def test_attack_dry_run_is_judged_the_same() -> None:
    def edit(r: dict[str, Any]) -> None:
        r["dryRun"] = True
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)), IMAGE_FIELD)
    assert_denied(judge(request("deployment_delete.json", edit)))


# ------------------------------------------------------------------ what must keep working


def test_applier_passes() -> None:
    for name in ("deployment_update_kubectl_edit.json", "deployment_delete.json"):
        resp = judge(request(name, as_user(APPLIER)))
        assert resp.allowed and resp.reason == "Applier"


def test_non_owned_fields_and_annotations_pass() -> None:
    def edit(r: dict[str, Any]) -> None:
        new = copy.deepcopy(r["oldObject"])
        new["metadata"]["annotations"]["team"] = "platform"
        new["metadata"]["annotations"]["oncall"] = "bob"
        new["metadata"]["labels"]["cost-center"] = "42"
        containers(new)[0]["env"][0]["value"] = "trace"
        containers(new)[0]["env"].append({"name": "DEBUG", "value": "1"})
        r["object"] = new
    resp = judge(request("deployment_update_kubectl_edit.json", edit))
    assert resp.allowed and resp.reason == "NoOwnedFieldChanged" and not resp.warnings


def test_status_subresource_passes() -> None:
    resp = judge(request("deployment_status.json"))
    assert resp.allowed and resp.reason == "StatusSubresource"


@pytest.mark.parametrize("user", ["system:serviceaccount:kube-system:generic-garbage-collector",
                                  "system:serviceaccount:kube-system:namespace-controller"])
def test_gc_and_namespace_controller_delete_passes(user: str) -> None:
    resp = judge(request("deployment_delete.json", as_user(user)))
    assert resp.allowed and resp.reason == "SystemDelete"


def test_attack_editing_git_fields_of_a_terminating_object_is_denied() -> None:
    """Once an object is being deleted (a finalizer holds it), Git's fields are still Git's."""
    def edit(r: dict[str, Any]) -> None:
        for obj in (r["oldObject"], r["object"]):
            obj["metadata"]["deletionTimestamp"] = "2025-11-23T10:00:00Z"
    assert_denied(judge(request("deployment_update_kubectl_edit.json", edit)), IMAGE_FIELD)


def test_scale_passes_when_git_does_not_own_replicas() -> None:
    parent = raw("deployment_update_kubectl_edit.json")["request"]["oldObject"]
    del parent["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:replicas"]
    hpa = as_user("system:serviceaccount:kube-system:horizontal-pod-autoscaler")
    resp = judge(request("deployment_scale.json", hpa), parent=parent)
    assert resp.allowed and resp.reason == "NoOwnedFieldChanged"


def test_scale_without_change_or_unmanaged_parent_or_unknown_parent_passes() -> None:
    parent = raw("deployment_update_kubectl_edit.json")["request"]["oldObject"]

    def same(r: dict[str, Any]) -> None:
        r["object"]["spec"]["replicas"] = r["oldObject"]["spec"]["replicas"]
    assert judge(request("deployment_scale.json", same), parent=parent).allowed
    unmanaged = copy.deepcopy(parent)
    del unmanaged["metadata"]["labels"][LABEL_SYNC]
    assert judge(request("deployment_scale.json"), parent=unmanaged).reason == "NotManaged"
    assert judge(request("deployment_scale.json"), parent=None).reason == "ScaleParentUnknown"


def test_scale_by_applier_passes() -> None:
    parent = raw("deployment_update_kubectl_edit.json")["request"]["oldObject"]
    assert judge(request("deployment_scale.json", as_user(APPLIER)), parent=parent).reason == "Applier"


def test_break_glass_passes_with_warning_and_audit() -> None:
    resp = judge(request("deployment_update_kubectl_edit.json",
                         as_user("oncall@example.com", ["sre", BREAK_GLASS_GROUP])))
    assert resp.allowed and resp.reason == "BreakGlass"
    assert resp.warnings and "break-glass" in resp.warnings[0] and len(resp.warnings[0]) <= 120
    assert resp.audit_annotations["drift-guard"] == "break-glass"
    assert resp.audit_annotations["sync"] == "gitops/shop-apps"
    assert IMAGE_FIELD in resp.audit_annotations["fields"]


def test_break_glass_disabled_with_empty_group() -> None:
    req = request("deployment_update_kubectl_edit.json", as_user("x", [""]))
    assert not review(req, lookup_of(SYNC), break_glass_group="").allowed


def test_warn_mode_allows_with_warning() -> None:
    resp = judge(request("deployment_update_kubectl_edit.json"), dataclasses.replace(SYNC, mode="warn"))
    assert resp.allowed and resp.reason == "DriftWarned"
    assert resp.warnings and IMAGE_FIELD in resp.warnings[0] and len(resp.warnings[0]) <= 120
    assert resp.audit_annotations["drift-guard"] == "warned"


def relabel(namespace: str, name: str) -> Callable[[dict[str, Any]], None]:
    def edit(r: dict[str, Any]) -> None:
        for key in ("object", "oldObject"):
            r[key]["metadata"]["labels"].update({LABEL_SYNC: name, LABEL_SYNC_NAMESPACE: namespace})
    return edit


@pytest.mark.parametrize(("namespace", "name"), [
    ("test-warn-mode-allows-with-a-warning-94880", "s"),  # found by the e2e suite: the advice was cut
    ("team-" + "x" * 58, "y" * 200),  # longest names Kubernetes allows, near enough
])
@pytest.mark.parametrize(("groups", "mode", "tail"), [
    (["sre", BREAK_GLASS_GROUP], "enforce", "; Git reverts it unless suspended"),
    (["devs"], "warn", "; change it in Git"),
])
def test_warnings_keep_the_way_forward_with_long_names(namespace: str, name: str, groups: list[str], mode: str,
                                                       tail: str) -> None:
    sync = dataclasses.replace(SYNC, namespace=namespace, name=name, mode=mode)
    resp = judge(request("deployment_update_kubectl_edit.json",
                         both(relabel(namespace, name), as_user("someone", groups))), sync)
    assert resp.allowed and len(resp.warnings) == 1
    warning = resp.warnings[0]
    assert len(warning) <= 120 and warning.endswith(tail), warning
    assert warning.endswith("[name=web].image" + tail), warning  # the field's leaf survives
    assert f"Sync {namespace}/{name}"[:40] in warning, warning  # and the start of the Sync reference


def test_off_suspended_and_orphan_pass() -> None:
    req = request("deployment_delete.json")
    assert judge(req, dataclasses.replace(SYNC, mode="off")).reason == "GuardOff"
    assert judge(req, dataclasses.replace(SYNC, suspended=True)).reason == "SyncSuspended"
    assert review(req, lookup_of(), break_glass_group=BREAK_GLASS_GROUP).reason == "OrphanSync"


def test_unknown_mode_is_enforced() -> None:
    assert not judge(request("deployment_delete.json"), dataclasses.replace(SYNC, mode="Warn ")).allowed


def test_create_and_unlabelled_objects_are_not_judged_nor_looked_up() -> None:
    lookup = lookup_of(SYNC)
    create = request("configmap_create_by_applier.json", as_user("alice"))
    assert review(create, lookup, break_glass_group=BREAK_GLASS_GROUP).reason == "NotJudged"

    def unlabelled(r: dict[str, Any]) -> None:
        del r["oldObject"]["metadata"]["labels"][LABEL_SYNC_NAMESPACE]
    resp = review(request("deployment_delete.json", unlabelled), lookup, break_glass_group=BREAK_GLASS_GROUP)
    assert resp.reason == "NotManaged"
    assert lookup.calls == []  # type: ignore[attr-defined]


def test_needs_judgement_matches_what_review_can_refuse() -> None:
    assert needs_judgement(request("deployment_update_kubectl_edit.json"))
    assert needs_judgement(request("deployment_delete.json"))
    assert needs_judgement(request("deployment_scale.json"))
    assert not needs_judgement(request("deployment_status.json"))
    assert not needs_judgement(request("configmap_create_by_applier.json"))


def test_ownership_requires_both_labels() -> None:
    labels = {LABEL_SYNC: "a", LABEL_SYNC_NAMESPACE: "ns"}
    assert ownership({"metadata": {"labels": labels}}) == ("ns", "a")
    assert ownership({"metadata": {"labels": {LABEL_SYNC: "a"}}}) is None
    assert ownership({"metadata": {"labels": {LABEL_SYNC: "a", LABEL_SYNC_NAMESPACE: ""}}}) is None
    assert ownership(None) is None


# ------------------------------------------------------------------ closing the ways around the guard

BOB = "bob"
GC = "system:serviceaccount:kube-system:generic-garbage-collector"
OPERATOR = "system:serviceaccount:ops:cleanup-operator"


def update(change: Callable[[dict[str, Any]], None], *, user: str = BOB, groups: list[str] | None = None,
           old: Callable[[dict[str, Any]], None] | None = None, trusted: frozenset[str] = frozenset(),
           sync: SyncInfo = SYNC) -> AdmissionResponse:
    """An UPDATE of the fixture's managed Deployment: `change` edits the new object, `old` both."""
    doc = raw("deployment_update_kubectl_edit.json")
    r = doc["request"]
    if old is not None:
        old(r["oldObject"])
    r["object"] = copy.deepcopy(r["oldObject"])
    change(r["object"])
    as_user(user, groups)(r)
    return review(request_from_review(doc), lookup_of(sync), break_glass_group=BREAK_GLASS_GROUP,
                  trusted=trusted)


def meta(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["metadata"]
    return result


def add_finalizer(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda o: meta(o).setdefault("finalizers", []).append(name)


OWNER_REF = {"apiVersion": "v1", "kind": "ConfigMap", "name": "bobs", "uid": "6f1c0f2e-0000-4000-8000-000000000001"}


def add_owner_ref(ref: dict[str, Any] = OWNER_REF) -> Callable[[dict[str, Any]], None]:
    return lambda o: meta(o).setdefault("ownerReferences", []).append(dict(ref))


def test_unchanged_update_passes() -> None:
    resp = update(lambda o: None)
    assert resp.allowed and resp.reason == "NoOwnedFieldChanged"


@pytest.mark.parametrize(("change", "field"), [
    (add_finalizer("bob.example/hold"), 'metadata.finalizers[="bob.example/hold"]'),
    (add_owner_ref(), f"metadata.ownerReferences[uid={OWNER_REF['uid']}]"),
    (add_owner_ref({**OWNER_REF, "uid": "does-not-exist"}), "metadata.ownerReferences[uid=does-not-exist]"),
], ids=["finalizer", "owner-ref-to-bobs-object", "owner-ref-to-nothing"])
def test_attack_adding_finalizers_or_owner_references_is_denied(change: Callable[[dict[str, Any]], None],
                                                                field: str) -> None:
    """An ownerReference lets the garbage collector delete the object; a finalizer keeps it half-deleted."""
    resp = update(change)
    assert_denied(resp, field)
    assert resp.reason == "OwnedFieldChanged"


def test_attack_changing_an_existing_owner_reference_is_denied() -> None:
    def flip(o: dict[str, Any]) -> None:
        meta(o)["ownerReferences"][0]["blockOwnerDeletion"] = False
    resp = update(flip, old=add_owner_ref({**OWNER_REF, "blockOwnerDeletion": True}))
    assert_denied(resp, f"metadata.ownerReferences[uid={OWNER_REF['uid']}]")


def test_attack_finalizer_then_edit_while_terminating_is_denied() -> None:
    def terminating(o: dict[str, Any]) -> None:
        meta(o)["deletionTimestamp"] = "2025-11-23T10:00:00Z"
        meta(o)["finalizers"] = ["bob.example/hold"]
    def image(o: dict[str, Any]) -> None:
        containers(o)[0]["image"] = "evil:1"
    assert_denied(update(image, old=terminating), IMAGE_FIELD)


def test_removing_an_undeclared_finalizer_from_a_terminating_object_passes() -> None:
    """Its owner must be able to finish the deletion."""
    def terminating(o: dict[str, Any]) -> None:
        meta(o)["deletionTimestamp"] = "2025-11-23T10:00:00Z"
        meta(o)["finalizers"] = ["bob.example/hold", "other.example/x"]
    resp = update(lambda o: meta(o).update(finalizers=["other.example/x"]), old=terminating)
    assert resp.allowed and resp.reason == "NoOwnedFieldChanged"
    resp = update(lambda o: meta(o).pop("finalizers"), old=terminating)
    assert resp.allowed


def test_removing_an_owner_reference_passes() -> None:
    resp = update(lambda o: meta(o).pop("ownerReferences"), old=add_owner_ref())
    assert resp.allowed


@pytest.mark.parametrize("user", [GC, "system:serviceaccount:kube-system:namespace-controller",
                                  "system:kube-controller-manager"])
def test_control_plane_controllers_may_change_owner_references_and_finalizers(user: str) -> None:
    resp = update(lambda o: (add_finalizer("foregroundDeletion")(o), add_owner_ref()(o)), user=user)
    assert resp.allowed and resp.reason == "NoOwnedFieldChanged"


def test_gc_may_remove_an_owner_reference_git_declares_when_orphaning() -> None:
    ref_key = "k:" + json.dumps({"uid": OWNER_REF["uid"]}, separators=(",", ":"))

    def declared_ref(o: dict[str, Any]) -> None:
        add_owner_ref()(o)
        fields = meta(o)["managedFields"][0]["fieldsV1"]["f:metadata"]
        fields["f:ownerReferences"] = {".": {}, ref_key: {}}

    def orphan(o: dict[str, Any]) -> None:
        meta(o).pop("ownerReferences")
        meta(o)["managedFields"][0]["fieldsV1"]["f:metadata"].pop("f:ownerReferences")
    assert update(orphan, user=GC, old=declared_ref).allowed
    # ...but bob may not (Git declares it), nor may the GC edit Git's other fields.
    assert_denied(update(orphan, old=declared_ref), "metadata.ownerReferences")
    assert_denied(update(lambda o: containers(o)[0].update(image="x"), user=GC), IMAGE_FIELD)


def test_trusted_controller_may_add_its_finalizer_but_nothing_else() -> None:
    trusted = frozenset({OPERATOR})
    assert update(add_finalizer("ops.example/cleanup"), user=OPERATOR, trusted=trusted).allowed
    assert_denied(update(add_finalizer("ops.example/cleanup"), user=OPERATOR), "metadata.finalizers")
    assert_denied(update(lambda o: containers(o)[0].update(image="x"), user=OPERATOR, trusted=trusted), IMAGE_FIELD)
    assert_denied(judge(request("deployment_delete.json", as_user(OPERATOR))), "delete")


def test_a_finalizer_git_declares_stays_git_s_even_while_terminating() -> None:
    def declared(o: dict[str, Any]) -> None:
        meta(o)["finalizers"] = ["shop.example/keep"]
        meta(o)["managedFields"][0]["fieldsV1"]["f:metadata"]["f:finalizers"] = {
            ".": {}, 'v:"shop.example/keep"': {}}

    def terminating(o: dict[str, Any]) -> None:
        declared(o)
        meta(o)["deletionTimestamp"] = "2025-11-23T10:00:00Z"
    assert_denied(update(add_finalizer("bob.example/hold"), old=declared), 'finalizers[="bob.example/hold"]')
    assert_denied(update(lambda o: meta(o).pop("finalizers"), old=terminating), "metadata.finalizers")
    assert update(lambda o: meta(o).pop("finalizers"), old=terminating, user=GC).allowed


def test_applier_and_suspended_sync_may_add_finalizers() -> None:
    assert update(add_finalizer("x.example/y"), user=APPLIER).allowed
    assert update(add_finalizer("x.example/y"), sync=dataclasses.replace(SYNC, suspended=True)).allowed


# ------------------------------------------------------------------ declared fields whose ownership moved


def _lost_image(o: dict[str, Any]) -> None:
    """What an allowed edit (suspended Sync, break-glass, outage) leaves: Git declares the image,
    the record says so, but another manager owns it now."""
    from kubectl_gitops.constants import ANNOTATION_FIELDS
    from kubectl_gitops.core import declared

    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "shop:1"}]}}}}
    meta(o)["annotations"][ANNOTATION_FIELDS] = declared.encode(declared.with_declared(manifest))
    ours = meta(o)["managedFields"][0]["fieldsV1"]
    ours["f:metadata"]["f:annotations"][f"f:{ANNOTATION_FIELDS}"] = {}
    del ours["f:spec"]["f:template"]["f:spec"]
    del ours["f:spec"]["f:replicas"]


def test_attack_editing_a_declared_field_our_manager_lost_is_denied() -> None:
    resp = update(lambda o: containers(o)[0].update(image="evil:1"), old=_lost_image)
    assert_denied(resp, "spec.template.spec.containers")
    resp = update(lambda o: o["spec"].update(replicas=9), old=_lost_image)
    assert_denied(resp, "spec.replicas")
    assert "Change it in Git" in resp.message


def test_declared_lost_field_unchanged_or_applier_passes() -> None:
    assert update(lambda o: meta(o)["annotations"].update(team="x"), old=_lost_image).allowed
    assert update(lambda o: containers(o)[0].update(image="shop:2"), old=_lost_image, user=APPLIER).allowed


def test_attack_rewriting_the_declared_record_is_denied() -> None:
    from kubectl_gitops.constants import ANNOTATION_FIELDS
    resp = update(lambda o: meta(o)["annotations"].update({ANNOTATION_FIELDS: "{}"}), old=_lost_image)
    assert_denied(resp, ANNOTATION_FIELDS)


# ------------------------------------------------------------------ hostile JSON: bounded, fails closed


def deep(levels: int, leaf: Any = None) -> Any:
    value: Any = leaf if leaf is not None else {}
    for _ in range(levels):
        value = {"f:x": value}
    return value


def test_attack_deep_fieldsv1_in_our_entry_is_refused_not_crashed() -> None:
    def poison(o: dict[str, Any]) -> None:
        meta(o)["managedFields"][0]["fieldsV1"]["f:spec"]["f:deep"] = deep(200)
    resp = update(lambda o: None, old=poison)
    assert_denied(resp, "could not analyse", "nested deeper than 64 levels", "Change it in Git")
    assert resp.reason == "Unanalysable"
    assert len(resp.message.splitlines()) == 2
    assert update(lambda o: None, old=poison, user=APPLIER).allowed  # the applier can still repair it


@pytest.mark.parametrize(("poison", "said"), [
    (lambda o: meta(o)["managedFields"].extend({"manager": f"m{i}", "operation": "Update"} for i in range(300)),
     "managedFields has 304 entries"),
    (lambda o: meta(o)["managedFields"][0]["fieldsV1"]["f:data"].update(
        {f"f:k{i}": {} for i in range(60_000)}) if False else
        meta(o)["managedFields"][0]["fieldsV1"].update({"f:data": {f"f:k{i}": {} for i in range(60_000)}}),
     "more than 50,000 nodes"),
    (lambda o: o["spec"]["template"]["spec"].update(containers=[{"name": f"c{i}"} for i in range(20_000)]),
     "20,000 items"),
], ids=["managed-fields-entries", "fieldsv1-nodes", "list-length"])
def test_attack_oversized_objects_are_refused_with_the_bound_named(poison: Callable[[dict[str, Any]], None],
                                                                  said: str) -> None:
    resp = update(lambda o: None, old=poison)
    assert_denied(resp, said)
    assert resp.reason == "Unanalysable"


def test_deep_values_are_compared_without_recursion() -> None:
    """A Git-owned value nested far past Python's recursion limit (an atomic field of a CR)."""
    def judge_blobs(before: Any, after: Any) -> AdmissionResponse:
        doc = raw("deployment_update_kubectl_edit.json")
        r = doc["request"]
        meta(r["oldObject"])["managedFields"][0]["fieldsV1"]["f:spec"]["f:blob"] = {}
        r["object"] = {**r["oldObject"], "spec": {**r["oldObject"]["spec"], "blob": after}}
        r["oldObject"]["spec"]["blob"] = before
        return judge(request_from_review(doc))
    assert judge_blobs(deep(300, {"leaf": 1}), deep(300, {"leaf": 1})).allowed
    assert_denied(judge_blobs(deep(300, {"leaf": 1}), deep(300, {"leaf": 2})), "spec.blob")
    resp = judge_blobs(deep(5000, {"leaf": 1}), deep(5000, {"leaf": 1}))
    assert_denied(resp, "could not analyse", "nested deeper than 512 levels")


def test_unreadable_request_of_a_managed_object_is_refused_but_the_applier_passes() -> None:
    req = dataclasses.replace(request("deployment_update_kubectl_edit.json"),
                              unreadable=("request.oldObject.metadata.managedFields[3].fieldsV1",))
    resp = judge(req)
    assert_denied(resp, "request.oldObject.metadata.managedFields[3].fieldsV1 is nested too deeply")
    applier = dataclasses.replace(req, user_info=dataclasses.replace(req.user_info, username=APPLIER))
    assert judge(applier).allowed
    glass = dataclasses.replace(req, user_info=dataclasses.replace(req.user_info, groups=(BREAK_GLASS_GROUP,)))
    resp = judge(glass)
    assert resp.allowed and resp.warnings and resp.audit_annotations["drift-guard"] == "break-glass"


def test_unreadable_labels_are_refused_as_unknown_ownership() -> None:
    req = request("deployment_update_kubectl_edit.json", lambda r: r["oldObject"]["metadata"].pop("labels"))
    req = dataclasses.replace(req, unreadable=("request.oldObject.metadata",))
    assert needs_judgement(req)
    resp = judge(req)
    assert not resp.allowed and resp.reason == "Unreadable"
    assert "can't tell whether a Sync manages the object" in resp.message


def test_unreadable_parts_of_an_unmanaged_object_pass() -> None:
    req = request("deployment_update_kubectl_edit.json", lambda r: r["oldObject"]["metadata"].pop("labels"))
    req = dataclasses.replace(req, unreadable=("request.object.spec.blob",))
    assert judge(req).reason == "NotManaged"
