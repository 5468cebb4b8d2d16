"""Attacks on manifest signatures at admission (issue 9), pure and through the Flask app: each was
written before its fix and must stay refused. The e2e counterparts are in
tests/e2e/test_signature_attacks.py."""

from __future__ import annotations

import base64
import copy
import json
import time
import zlib
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import ANNOTATION_SIGNATURE, LABEL_SYNC
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.trust import parse_trust_policy
from tests.unit.fakefields import applied
from tests.unit.test_manifest_sig import DEPLOYMENT, NOW, alice, check, edited, eve, live, signed, stamped
from tests.unit.test_webhook_signatures import APPLIER, answer, client, policy_obj, review, signed_cm

__all__ = ["alice", "eve"]  # module fixtures, shared
JSON = dict[str, Any]
BOB = "bob"


def _policy(name: str, public: str, mode: str = "enforce", **scope: list[str]) -> Any:
    return parse_trust_policy({"metadata": {"name": name}, "spec": {
        "mode": mode, "keys": [{"name": name, "type": "ssh", "publicKey": public}],
        "scope": scope or {"namespaces": ["team"]}}})


# ------------------------------------------------------------------ scope games


def test_relabelling_a_signed_object_out_of_its_sync_is_refused(alice: tuple[Path, str]) -> None:
    """Step 1 of a two-step attack: drop the ownership labels (the signature still verifies); step 2,
    no longer labelled, would not even be sent to the webhook, so any change would pass."""
    obj = live(signed(DEPLOYMENT, alice[0]))
    for change in (lambda o: o["metadata"]["labels"].pop(LABEL_SYNC),
                   lambda o: o["metadata"]["labels"].update({LABEL_SYNC: "other"})):
        moved = edited(obj, change)
        for pol in (_policy("ns", alice[1]), _policy("sync", alice[1], syncs=["team/s"])):
            for who in (BOB, APPLIER):
                problems = ms.check_signature(moved, [pol], keys.verify_manifest, now=NOW, old=obj, requester=who)
                assert any("ownership labels" in p for p in problems), (pol.name, who, problems)


def test_a_warn_policys_key_does_not_satisfy_an_enforcing_policy(alice: tuple[Path, str],
                                                                  eve: tuple[Path, str]) -> None:
    """Whoever may add a TrustPolicy in warn mode ("just trying it out") must not thereby add a
    trusted key to the enforcing policy covering the same namespace."""
    forged = live(signed(DEPLOYMENT, eve[0]))
    both = [_policy("strict", alice[1]), _policy("trial", eve[1], mode="warn")]
    problems = ms.check_signature(forged, both, keys.verify_manifest, now=NOW)
    assert problems and "not trusted" in problems[0], problems
    # the warn policy alone still accepts its own key (no warning), and the enforcing one its own
    assert ms.check_signature(forged, both[1:], keys.verify_manifest, now=NOW) == []
    assert ms.check_signature(live(signed(DEPLOYMENT, alice[0])), both, keys.verify_manifest, now=NOW) == []


# ------------------------------------------------------------------ canonical-form and encoding confusion


def test_secret_data_must_match_the_signed_string_data(alice: tuple[Path, str]) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
              "metadata": {"name": "db", "namespace": "team"}, "stringData": {"password": "signed"}}
    obj = signed(secret, alice[0])
    stored = copy.deepcopy(obj)
    stored.pop("stringData")
    stored["data"] = {"password": base64.b64encode(b"signed").decode()}
    assert check(stored, alice[1]) == []
    swapped = copy.deepcopy(stored)
    swapped["data"] = {"password": base64.b64encode(b"stolen").decode()}
    assert check(swapped, alice[1]), "a Secret's data changed under a signed stringData"
    extra = copy.deepcopy(stored)
    extra["data"]["token"] = base64.b64encode(b"x").decode()
    assert check(edited(extra, lambda o: None), alice[1], old=stored, requester=APPLIER) or check(
        _owned(extra, "data", "token"), alice[1], old=stored, requester=APPLIER)


def _owned(obj: JSON, *path: str) -> JSON:
    out = copy.deepcopy(obj)
    fields: JSON = {}
    node = fields
    for part in path:
        node = node.setdefault(f"f:{part}", {})
    out["metadata"]["managedFields"].append({"manager": "m", "operation": "Update", "fieldsV1": fields})
    return out


def test_number_and_int_or_string_encodings_are_not_confused(alice: tuple[Path, str]) -> None:
    dep = copy.deepcopy(DEPLOYMENT)
    dep["spec"]["replicas"] = 1
    dep["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 1}}
    obj = live(signed(dep, alice[0]))
    assert check(obj, alice[1]) == []
    for path, value in ((("spec", "replicas"), "1"), (("spec", "replicas"), True),
                        (("spec", "strategy", "rollingUpdate", "maxSurge"), "100%")):
        bad = copy.deepcopy(obj)
        node = bad
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        assert check(bad, alice[1]), (path, value)


def test_generate_name_owner_references_and_finalizers_are_signed_content(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    for key, value in (("ownerReferences", [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}]),
                       ("finalizers", ["evil/hold"]), ("generateName", "web-")):
        changed = _owned(obj, "metadata", key)  # as the API server records it: owned by the writer
        changed["metadata"][key] = value
        assert check(changed, alice[1], old=obj, requester=APPLIER), key


def test_a_controllers_field_manager_name_does_not_make_a_field_controller_owned(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    for manager in ("kube-controller-manager", "deployment-controller", "system:serviceaccount:ops:scaler"):
        changed = edited(obj, lambda o: o["spec"]["template"]["spec"].update(hostNetwork=True), manager=manager)
        problems = check(changed, alice[1], old=obj, requester=APPLIER)
        assert any("hostNetwork" in p for p in problems), (manager, problems)


# ------------------------------------------------------------------ hostile annotations and bodies


def test_a_decompression_bomb_in_the_annotation_is_bounded(alice: tuple[Path, str]) -> None:
    bomb = base64.b64encode(zlib.compress(b"\0" * (100 * 1024 * 1024), 9)).decode()
    obj = live(signed(DEPLOYMENT, alice[0]))
    obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = f"v1.{bomb}.AAAA"
    assert len(obj["metadata"]["annotations"][ANNOTATION_SIGNATURE]) < ms.MAX_ANNOTATION
    started = time.monotonic()
    problems = check(obj, alice[1])
    assert time.monotonic() - started < 2.0
    assert problems and "larger than" in problems[0], problems


def test_an_oversized_annotation_is_refused_before_decoding(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = "v1." + "A" * (ms.MAX_ANNOTATION + 1) + ".AAAA"
    problems = check(obj, alice[1])
    assert problems and "larger than" in problems[0], problems


def test_hostile_review_bodies_are_answered_not_crashed(alice: tuple[Path, str]) -> None:
    c = client([policy_obj(alice[1])])
    good = signed_cm(alice[0])
    # duplicate keys: Python keeps the last, as Go's decoder does; the last one here is the forged data
    body = json.dumps(review(good))
    dup = body.replace('"data": {"a": "1"}', '"data": {"a": "1"}, "data": {"a": "evil"}', 1)
    assert dup != body
    resp = c.post("/signatures", data=dup, content_type="application/json")
    assert resp.status_code == 200 and resp.get_json()["response"]["allowed"] is False
    deep = "[" * 100_000 + "]" * 100_000
    for raw in ("{", "null", "[]", deep, '{"request": {"uid": "x", "object": ' + deep + "}}"):
        resp = c.post("/signatures", data=raw, content_type="application/json")
        assert resp.status_code in (200, 400), (raw[:20], resp.status_code)
        if resp.status_code == 200:
            assert resp.get_json()["response"]["allowed"] is False, raw[:20]


# ------------------------------------------------------------------ the policies themselves


def test_an_applier_may_not_write_or_delete_trust_policies(alice: tuple[Path, str]) -> None:
    c = client([policy_obj(alice[1])])
    kind = ("kubectl-gitops.dev", "v1alpha1", "TrustPolicy")
    current = policy_obj(alice[1])
    warn = policy_obj(alice[1], mode="warn")
    for op, obj, old in (("UPDATE", warn, current), ("CREATE", policy_obj(alice[1], name="q"), None),
                         ("DELETE", None, current)):
        out = answer(c, review(obj, op=op, old=old, kind=kind, resource="trustpolicies"))
        assert out["allowed"] is False and "applier" in out["status"]["message"], (op, out)
        # an administrator may
        ok = answer(c, review(obj, op=op, old=old, kind=kind, resource="trustpolicies", user="admin"))
        assert ok["allowed"] is True, (op, ok)


def test_unsigned_object_created_before_the_policy_is_refused_on_its_next_write(alice: tuple[Path, str]) -> None:
    before = live(applied(stamped(DEPLOYMENT)))
    again = edited(before, lambda o: o["metadata"]["labels"].update(app="web"))
    assert check(again, alice[1], old=before, requester=APPLIER)


POD: JSON = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
             "spec": {"containers": [{"name": "app", "image": "nginx:1", "resources": {"limits": {"cpu": "1"}}}]}}


def test_pod_subresources_that_change_the_spec_are_judged(alice: tuple[Path, str]) -> None:
    """`pods/ephemeralcontainers` (kubectl debug) and `pods/resize` write a signed Pod's spec."""
    c = client([policy_obj(alice[1])])
    pod = signed_cm(alice[0], POD)
    kind = ("", "v1", "Pod")
    debug = copy.deepcopy(pod)
    debug["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": "evil/miner:1"}]
    debug["metadata"]["managedFields"].append({
        "manager": "kubectl-debug", "operation": "Update", "subresource": "ephemeralcontainers",
        "fieldsV1": {"f:spec": {"f:ephemeralContainers": {'k:{"name":"dbg"}': {".": {}, "f:image": {}}}}}})
    resized = copy.deepcopy(pod)
    resized["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "64"
    for sub, obj in (("ephemeralcontainers", debug), ("resize", resized)):
        out = answer(c, review(obj, op="UPDATE", old=pod, kind=kind, resource="pods", sub=sub))
        assert out["allowed"] is False, (sub, out)
    same = answer(c, review(pod, op="UPDATE", old=pod, kind=kind, resource="pods", sub="resize"))
    assert same["allowed"] is True, same


def test_a_signature_names_exactly_one_group_kind_namespace_and_name(alice: tuple[Path, str]) -> None:
    cm = signed_cm(alice[0])
    text = cm["metadata"]["annotations"][ANNOTATION_SIGNATURE]
    others = [("v1", "ConfigMap", "other-ns", "cfg"), ("v1", "Secret", "team", "cfg"),
              ("example.com/v1", "ConfigMap", "team", "cfg"), ("v1", "ConfigMap", "", "cfg")]
    for api_version, kind, namespace, name in others:
        obj = copy.deepcopy(cm)
        obj.update(apiVersion=api_version, kind=kind)
        obj["metadata"].update(name=name, namespace=namespace)
        obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = text
        pol = _policy("wide", alice[1], namespaces=["team", "other-ns"], syncs=["team/s"])
        problems = ms.check_signature(obj, [pol], keys.verify_manifest, now=NOW)
        assert problems and "the signature is for ConfigMap/team/cfg" in problems[0], (kind, namespace, problems)


def test_content_under_a_signed_empty_map_is_refused(alice: tuple[Path, str]) -> None:
    dep = copy.deepcopy(DEPLOYMENT)
    dep["spec"]["template"]["spec"]["containers"][1]["securityContext"] = {}
    obj = live(signed(dep, alice[0]))
    assert check(obj, alice[1]) == []
    changed = edited(obj, lambda o: o["spec"]["template"]["spec"]["containers"][1]["securityContext"].update(
        privileged=True))
    problems = check(changed, alice[1], old=obj, requester=APPLIER)
    assert any("privileged" in p for p in problems), problems
