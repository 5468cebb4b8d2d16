"""Attacks on manifest signatures at admission, on the real dev control plane with the webhook
(issue 9, second round): each was run before its fix and must stay refused with a clear message.

The cluster, the signed namespace and the helpers are those of test_manifest_signatures.py (a
namespace a TrustPolicy covers, synced from a repository with signed commits and manifests). The
attacker holds the default applier's token (impersonated by the admin) or is `bob`, with `edit`
in the namespace. Pure variants are in tests/unit/test_signature_attacks.py.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
import zlib
from collections.abc import Callable

import pytest

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import ANNOTATION_SIGNATURE, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import manifest_sig as ms
from tests.e2e.test_manifest_signatures import (
    Signed,
    _retry,
    containers,
    desired,
    keygen,
    refused,
    signed,
    trust_policy,
    wh,
)
from tests.e2e.webhookworld import denial
from tests.helpers import Run

__all__ = ["signed", "wh"]  # the fixtures, shared
JSON = dict[str, object]
EVIL = "evil/miner:1"


def _image(world: Signed) -> str:
    image: str = containers(world.get("deployment", "web"))[0]["image"]
    return image


# ------------------------------------------------------------------ scope games


@pytest.mark.parametrize("scope", ["namespace", "sync"])
def test_ownership_labels_cannot_be_dropped_to_escape_judgement(signed: Signed, scope: str) -> None:
    """Step 1 drops the ownership labels (the signature still verifies, so this used to pass); step 2,
    no longer labelled, is not even sent to the webhook: bob (edit) could then change the image."""
    if scope == "sync":
        policy = trust_policy(signed.ns, signed.ns, signed.public)
        policy["spec"]["scope"] = {"syncs": [f"{signed.ns}/s"]}
        signed.admin("apply", "-f", "-", input=json.dumps(policy))
        time.sleep(1.0)  # the webhook's watch sees the new scope
    unlabel = json.dumps({"metadata": {"labels": {LABEL_SYNC: None, LABEL_SYNC_NAMESPACE: None}}})
    refused(signed.as_applier("patch", "deployment", "web", "--type=merge", "-p", unlabel), "ownership labels")
    relabel = json.dumps({"metadata": {"labels": {LABEL_SYNC: "elsewhere"}}})
    refused(signed.as_applier("patch", "deployment", "web", "--type=merge", "-p", relabel), "ownership labels")
    labels = signed.get("deployment", "web")["metadata"]["labels"]
    assert labels[LABEL_SYNC] == "s" and labels[LABEL_SYNC_NAMESPACE] == signed.ns, labels
    # and so bob's image change stays judged (and refused)
    out = signed.as_user("bob", "set", "image", "deployment/web", f"web={EVIL}")
    assert "denied the request" in out.stderr, out.output
    assert _image(signed) == "nginx:1"


def test_a_warn_policy_does_not_lend_its_key_to_an_enforcing_one(signed: Signed) -> None:
    """Whoever may add a TrustPolicy "in warn mode, to try it" must not add a trusted key to the
    enforcing policy over the same namespace."""
    eve, eve_public = keygen(signed.tmp, "eve")
    trial = trust_policy(f"{signed.ns}-trial", signed.ns, eve_public)
    probe_ns = f"{signed.ns[:50]}-probe"
    trial["spec"].update(mode="warn", scope={"namespaces": [signed.ns, probe_ns]})
    signed.admin("create", "namespace", probe_ns)
    signed.admin("apply", "-f", "-", input=json.dumps(trial))
    try:
        probe = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"},
                 "metadata": {"name": "probe", "labels": {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: probe_ns}}}
        seen = _retry(lambda: signed.as_applier("-n", probe_ns, "apply", "--server-side", "-f", "-",
                                                input=json.dumps(probe)),
                      lambda r: "not validly signed" in r.stderr)
        assert "not validly signed" in seen.stderr, seen.output  # the webhook has the trial policy now
        obj = desired(signed)
        containers(obj)[0]["image"] = EVIL
        data = ms.canonical(obj)
        ms.with_annotation(obj, ms.encode_annotation(data, keys.sign(data, eve, ms.SSHSIG_NAMESPACE)))
        refused(signed.apply_as_applier(obj), "its signature is refused", "which is not trusted")
        assert _image(signed) == "nginx:1"
    finally:
        signed.admin("delete", "trustpolicy", trial["metadata"]["name"], "--ignore-not-found", check=False)
        signed.admin("delete", "namespace", probe_ns, "--wait=false", check=False)


def test_the_applier_cannot_weaken_or_delete_the_trust_policy(signed: Signed) -> None:
    for args, verb in ((("patch", "trustpolicy", signed.ns, "--type=merge", "-p", '{"spec":{"mode":"warn"}}'),
                        "update"),
                       (("patch", "trustpolicy", signed.ns, "--type=json", "-p",
                         '[{"op":"replace","path":"/spec/scope","value":{"namespaces":["elsewhere"]}}]'), "update"),
                       (("delete", "trustpolicy", signed.ns), "delete")):
        message = denial(signed.as_applier(*args))
        assert f"may not {verb} TrustPolicies" in message, message
    live = signed.get("trustpolicy", signed.ns)
    assert live["spec"]["scope"] == {"namespaces": [signed.ns]} and live["spec"].get("mode", "enforce") == "enforce"
    # a person with `edit` in the namespace has no RBAC on TrustPolicies (cluster-scoped, not aggregated)
    for args in (("delete", "trustpolicy", signed.ns), ("patch", "trustpolicy", signed.ns, "--type=merge", "-p",
                                                         '{"spec":{"mode":"warn"}}')):
        out = signed.as_user("bob", *args)
        assert out.returncode != 0 and "forbidden" in out.stderr.lower(), out.output
    # an administrator still may
    assert signed.admin("label", "trustpolicy", signed.ns, "reviewed=yes").returncode == 0


# ------------------------------------------------------------------ every write path


def _evil_patch(kind: str) -> str:
    if kind == "json":
        return json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": EVIL}])
    return json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": EVIL}]}}}})


def _replace(world: Signed) -> Run:
    obj = desired(world)
    containers(obj)[0]["image"] = EVIL
    return world.as_applier("replace", "-f", "-", input=json.dumps(obj))


def _apply_as_other_manager(world: Signed) -> Run:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {"containers": [{"name": "web", "image": EVIL}]}}}}
    return world.as_applier("apply", "--server-side", "--field-manager=deployment-controller", "--force-conflicts",
                            "-f", "-", input=json.dumps(obj))


WRITES: dict[str, Callable[[Signed], Run]] = {
    "merge-patch": lambda w: w.as_applier("patch", "deployment", "web", "--type=merge", "-p", _evil_patch("merge")),
    "strategic-patch": lambda w: w.as_applier("patch", "deployment", "web", "-p", _evil_patch("strategic")),
    "json-patch": lambda w: w.as_applier("patch", "deployment", "web", "--type=json", "-p", _evil_patch("json")),
    "replace": _replace,
    "apply-as-a-controller-manager-name": _apply_as_other_manager,
    "set-image": lambda w: w.as_applier("set", "image", "deployment/web", f"web={EVIL}"),
}


@pytest.mark.parametrize("how", sorted(WRITES))
def test_every_write_verb_is_judged(signed: Signed, how: str) -> None:
    refused(WRITES[how](signed), "spec.template.spec.containers")  # a merge patch replaces the whole list
    assert _image(signed) == "nginx:1"


def test_delete_then_create_is_judged_as_a_create(signed: Signed) -> None:
    cm = desired(signed, "cfg", "configmap")
    assert signed.as_applier("delete", "configmap", "cfg").returncode == 0  # deletes are the drift guard's
    forged = json.loads(json.dumps(cm))
    forged["data"] = {"a": "owned"}
    refused(signed.as_applier("create", "-f", "-", input=json.dumps(forged)), "data.a differs from the signed")
    bare = {k: v for k, v in forged.items() if k != "metadata"}
    bare["metadata"] = {"name": "cfg"}
    refused(signed.as_applier("create", "-f", "-", input=json.dumps(bare)), "it is not signed")
    # even the signed one, created by hand, lacks the applier's apply entry; the sync puts it back
    refused(signed.as_applier("create", "-f", "-", input=json.dumps(cm)), "no server-side apply entry")
    assert signed.sync().returncode == 0
    assert signed.get("configmap", "cfg")["data"] == {"a": "1"}


# ------------------------------------------------------------------ hostile annotations


def test_a_decompression_bomb_is_refused_promptly(signed: Signed) -> None:
    bomb = base64.b64encode(zlib.compress(b"\0" * (100 * 1024 * 1024), 9)).decode()
    obj = desired(signed)
    obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = f"v1.{bomb}.AAAA"
    started = time.monotonic()
    message = refused(signed.apply_as_applier(obj), "larger than")
    assert time.monotonic() - started < 5.0, message  # well inside the webhook's 5 s timeout (failurePolicy)
    assert signed.sync().returncode == 0  # and the webhook still answers the legitimate path


def test_a_garbage_annotation_on_a_fresh_object_is_refused(signed: Signed) -> None:
    name = f"junk-{uuid.uuid4().hex[:5]}"
    junk = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"},
            "metadata": {"name": name, "annotations": {ANNOTATION_SIGNATURE: "v1.!!!.???"}}}
    refused(signed.apply_as_applier(junk), "malformed")
    assert signed.admin("get", "configmap", name, check=False).returncode != 0


POD = """\
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  containers:
    - name: app
      image: nginx:1
      resources: {requests: {cpu: 100m}, limits: {cpu: 100m}}
"""


def test_a_debug_container_on_a_signed_pod_is_refused(signed: Signed) -> None:
    """`kubectl debug` writes a signed Pod's spec through pods/ephemeralcontainers, a subresource the
    webhook was not sent."""
    signed.repo.write("apps/pod.yaml", POD)
    signed.sign_and_commit("signed pod")
    out = signed.sync()
    assert out.returncode == 0, out.output
    refused(signed.as_applier("debug", "pod/solo", f"--image={EVIL}", "-c", "dbg"), "ephemeralContainers")
    assert not signed.get("pod", "solo")["spec"].get("ephemeralContainers")
    # pods/resize is judged the same way (tests/unit/test_signature_attacks.py); on the dev control
    # plane the API server itself refuses it first: kwok's nodes don't support in-place resize.


def test_managed_fields_sent_with_the_write_do_not_hide_an_added_field(signed: Signed) -> None:
    """A replace carrying managedFields copied from the live object (an added field owned by nobody,
    it hopes): the API server still records the change as the writer's, and the status subresource
    can't carry spec changes at all."""
    live = json.loads(signed.admin("get", "deployment", "web", "-o", "json", "--show-managed-fields").stdout)
    live["spec"]["template"]["spec"]["hostNetwork"] = True
    refused(signed.as_applier("replace", "-f", "-", input=json.dumps(live)), "hostNetwork")
    for entry in live["metadata"]["managedFields"]:
        entry["manager"] = "kube-controller-manager"  # and every entry renamed to a controller's
    refused(signed.as_applier("replace", "-f", "-", input=json.dumps(live)), "hostNetwork")
    status = signed.as_applier("patch", "deployment", "web", "--subresource=status", "--type=merge",
                               "-p", json.dumps({"spec": {"template": {"spec": {"hostNetwork": True}}}}))
    assert status.returncode == 0, status.output  # admitted, but the API server drops spec from a status write
    assert not signed.get("deployment", "web")["spec"]["template"]["spec"].get("hostNetwork")
