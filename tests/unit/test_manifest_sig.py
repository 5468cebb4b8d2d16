"""Manifest signatures, pure rules: the canonical form, the annotation, the signatures file, and
`check_signature` against each attack of issue 9 (unit level; the e2e suite runs them on the real
control plane). Signatures are real: made with adapters/keys.sign from ssh-keygen keys."""

from __future__ import annotations

import base64
import copy
import json
import random
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import (
    ANNOTATION_DIGEST,
    ANNOTATION_FIELDS,
    ANNOTATION_REVISION,
    ANNOTATION_SIGNATURE,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
)
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.errors import BuildFailed, VerificationFailed
from kubectl_gitops.core.trust import parse_trust_policy
from tests.unit.fakefields import applied

JSON = dict[str, Any]
NOW = datetime(2026, 6, 1, tzinfo=UTC)

DEPLOYMENT: JSON = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web"}},
    "spec": {"selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1",
                                                   "env": [{"name": "A", "value": "1"}],
                                                   "securityContext": {"runAsNonRoot": True},
                                                   "resources": {"requests": {"cpu": "1000m"}}},
                                                  {"name": "side", "image": "busybox:1"}]}}},
}


def keygen(tmp: Path, name: str) -> tuple[Path, str]:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def policy(public: str, **key: Any) -> Any:
    return parse_trust_policy({"metadata": {"name": "p"}, "spec": {
        "keys": [{"name": "alice", "type": "ssh", "publicKey": public, **key}],
        "scope": {"namespaces": ["team"]}, "controllers": ["system:serviceaccount:ops:scaler"]}})


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keygen(tmp_path_factory.mktemp("keys"), "alice")


@pytest.fixture(scope="module")
def eve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keygen(tmp_path_factory.mktemp("keys"), "eve")


def stamped(obj: JSON) -> JSON:
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    meta.setdefault("labels", {}).update({LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: "team"})
    meta.setdefault("annotations", {}).update({ANNOTATION_REVISION: "main@sha1:1", ANNOTATION_DIGEST: "sha256:x",
                                               ANNOTATION_FIELDS: "{}"})
    return out


def signed(obj: JSON, key: Path) -> JSON:
    """`obj` as the sync applies it: stamped, carrying its signature, with the applier's managedFields."""
    data = ms.canonical(obj)
    out = stamped(obj)
    ms.with_annotation(out, ms.encode_annotation(data, keys.sign(data, key, ms.SSHSIG_NAMESPACE)))
    return applied(out)


def live(obj: JSON) -> JSON:
    """What the API server stores: defaults (owned by nobody), status, server metadata."""
    out = copy.deepcopy(obj)
    out["metadata"].update({"uid": "u1", "resourceVersion": "7", "generation": 1,
                            "creationTimestamp": "2026-01-01T00:00:00Z"})
    out["spec"].setdefault("replicas", 1)
    out["spec"].update({"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600})
    for container in out["spec"]["template"]["spec"]["containers"]:
        container.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log"})
    out["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    out["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1"  # canonicalised
    out["status"] = {"replicas": 1, "readyReplicas": 1}
    return out


def check(obj: JSON, public: str, **kw: Any) -> list[str]:
    return ms.check_signature(obj, [policy(public)], keys.verify_manifest, now=NOW, **kw)


def edited(obj: JSON, change: Any, manager: str = "kubectl-edit") -> JSON:
    """`obj` after an Update by `manager`: the changed fields are recorded as theirs (as the API server does)."""
    out = copy.deepcopy(obj)
    change(out)
    before = {k: v for k, v in obj.items() if k != "status"}
    after = {k: v for k, v in out.items() if k != "status"}
    added = _diff_fields(keyed_fields(before), keyed_fields(after))
    out["metadata"]["managedFields"] = [*obj["metadata"]["managedFields"],
                                        {"manager": manager, "operation": "Update", "apiVersion": "apps/v1",
                                         "fieldsType": "FieldsV1", "fieldsV1": added}]
    return out


def keyed_fields(value: Any, top: bool = True) -> JSON:
    """fieldsV1 as the API server writes it for lists keyed by name (containers, env): `k:` items."""
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return {f'k:{{"name":{json.dumps(i["name"])}}}': {".": {}, **keyed_fields(i, False)} for i in value}
    if not isinstance(value, dict):
        return {}
    out: JSON = {}
    for key, child in value.items():
        if top and key in ("apiVersion", "kind", "status"):
            continue
        meta = top and key == "metadata"
        kept = {k: v for k, v in child.items() if k in ("labels", "annotations")} if meta else child
        out[f"f:{key}"] = keyed_fields(kept, False)
    return out


def _diff_fields(old: JSON, new: JSON) -> JSON:
    out: JSON = {}
    for key, child in new.items():
        if key not in old:
            out[key] = child
        elif child and isinstance(child, dict):
            sub = _diff_fields(old[key], child)
            if sub:
                out[key] = sub
    return out


# ------------------------------------------------------------------ canonical form and files


def test_canonical_form_leaves_out_status_server_metadata_and_stamps(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    text = ms.canonical(obj).decode()
    assert text.startswith('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"web"},"name"')
    for absent in ("status", "uid", "resourceVersion", "managedFields", LABEL_SYNC, ANNOTATION_REVISION,
                   ANNOTATION_SIGNATURE, "annotations"):
        assert absent not in text, absent
    assert '"namespace":"team"' in text
    assert ms.canonical(stamped(DEPLOYMENT)) == ms.canonical(DEPLOYMENT)
    assert json.loads(text)["spec"]["replicas"] == 1  # a field in the object is content, whoever set it


def test_python_signature_verifies_with_ssh_keygen(tmp_path: Path, alice: tuple[Path, str]) -> None:
    data = ms.canonical(DEPLOYMENT)
    (tmp_path / "obj.sig").write_text(keys.sign(data, alice[0], ms.SSHSIG_NAMESPACE))
    (tmp_path / "allowed").write_text(f"alice {alice[1]}\n")
    command = ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "alice", "-n",
               ms.SSHSIG_NAMESPACE, "-s", str(tmp_path / "obj.sig")]
    out = subprocess.run(command, input=data, capture_output=True, check=False)
    assert out.returncode == 0, out.stderr
    tampered = subprocess.run(command, input=data.replace(b"nginx:1", b"nginx:2"), capture_output=True, check=False)
    assert tampered.returncode != 0


def test_signatures_file_round_trip_and_bad_files_are_named(alice: tuple[Path, str]) -> None:
    data = ms.canonical(DEPLOYMENT)
    entry = ms.Entry(ms.object_id(DEPLOYMENT), "Deployment/team/web", ms.digest(data), "SHA256:x",
                     keys.sign(data, alice[0], ms.SSHSIG_NAMESPACE))
    text = ms.render_file([entry])
    assert "ssh-keygen -Y verify" in text and "-----BEGIN SSH SIGNATURE-----" in text
    assert ms.parse_file(text, "apps/.gitops-signatures.yaml") == {entry.id: entry}
    for bad in ("signatures: [oops", "just text", "signatures: {a: 1}", "version: 2\nsignatures: {}"):
        with pytest.raises(BuildFailed, match=r"apps/\.gitops-signatures\.yaml"):
            ms.parse_file(bad, "apps/.gitops-signatures.yaml")


def test_annotation_round_trip_and_malformed_values(alice: tuple[Path, str]) -> None:
    data = ms.canonical(DEPLOYMENT)
    armored = keys.sign(data, alice[0], ms.SSHSIG_NAMESPACE)
    value = ms.encode_annotation(data, armored)
    assert len(value) < 1200  # a Deployment's signed manifest and signature, compressed
    assert ms.decode_annotation(value) == (data, ms.armor(ms.unarmored(armored)))
    bomb = "v1." + base64.b64encode(zlib.compress(b"0" * (ms.MAX_CANONICAL + 10))).decode() + ".AAAA"
    for bad in ("", "garbage", "v1.", "v1.!!!.AAAA", value[:len(value) // 2] + "." + "AAAA", bomb, 42):
        with pytest.raises(VerificationFailed):
            ms.decode_annotation(bad)


# ------------------------------------------------------------------ legitimate


def test_a_signed_object_with_defaults_and_status_is_admitted(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    assert check(obj, alice[1]) == []
    assert check(obj, alice[1], old=obj, requester="system:serviceaccount:kubectl-gitops-system:x") == []


def test_objects_outside_every_scope_are_not_judged(alice: tuple[Path, str]) -> None:
    other = copy.deepcopy(DEPLOYMENT)
    other["metadata"]["namespace"] = "elsewhere"
    assert check(applied(other), alice[1]) == []


def test_fields_set_earlier_and_controllers_writes_pass(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    scaled = edited(obj, lambda o: o["spec"].update(replicas=5), manager="kube-controller-manager")
    hpa = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
    assert check(scaled, alice[1], old=obj, requester=hpa) == []
    assert check(scaled, alice[1], old=obj, requester="system:serviceaccount:ops:scaler") == []
    # ... and the applier's next write keeps them: unchanged by that request
    assert check(scaled, alice[1], old=scaled, requester="system:serviceaccount:kubectl-gitops-system:x") == []


# ------------------------------------------------------------------ attacks


def test_unsigned_object_is_refused(alice: tuple[Path, str]) -> None:
    problems = check(live(applied(stamped(DEPLOYMENT))), alice[1])
    assert len(problems) == 1 and "not signed" in problems[0] and ANNOTATION_SIGNATURE in problems[0]


def test_signature_copied_onto_another_object_is_refused(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    other = copy.deepcopy(obj)
    other["metadata"]["name"] = "evil"
    problems = check(other, alice[1])
    assert problems == ["the signature is for Deployment/team/web, not for Deployment/team/evil (a signature "
                        "copied from another object)"]


@pytest.mark.parametrize(("change", "field"), [
    (lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil:1"),
     "spec.template.spec.containers[0].image"),
    (lambda o: o["spec"]["template"]["spec"]["containers"].append({"name": "miner", "image": "evil"}),
     "spec.template.spec.containers"),
    (lambda o: o["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "B", "value": "2"}),
     "spec.template.spec.containers[0].env"),
    (lambda o: o["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(runAsNonRoot=False),
     "spec.template.spec.containers[0].securityContext.runAsNonRoot"),
    (lambda o: o["spec"]["template"]["spec"]["containers"][1].update(securityContext={"privileged": True}),
     "spec.template.spec.containers[name=side].securityContext.privileged"),
    (lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("env"), "spec.template.spec.containers[0].env"),
])
def test_a_field_changed_after_signing_is_refused_whoever_wrote_it(alice: tuple[Path, str], change: Any,
                                                                   field: str) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    for manager in ("kubectl-edit", "kubectl-gitops"):
        problems = check(edited(obj, change, manager), alice[1], old=obj,
                         requester="system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier")
        assert problems and problems[0].startswith(field), problems


def test_a_controller_cannot_change_signed_content(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    changed = edited(obj, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="evil:1"))
    problems = check(changed, alice[1], old=obj, requester="system:kube-controller-manager")
    assert problems == ["spec.template.spec.containers[0].image differs from the signed manifest (signed by alice)"]


def test_cleared_managed_fields_are_refused(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    cleared = copy.deepcopy(obj)
    cleared["metadata"].pop("managedFields")
    cleared["spec"]["template"]["spec"]["containers"][1]["securityContext"] = {"privileged": True}
    problems = check(cleared, alice[1], old=obj)
    assert any("managedFields have no server-side apply entry" in p for p in problems), problems


def test_untrusted_key_is_refused(alice: tuple[Path, str], eve: tuple[Path, str]) -> None:
    problems = check(live(signed(DEPLOYMENT, eve[0])), alice[1])
    assert len(problems) == 1 and "which is not trusted" in problems[0], problems


@pytest.mark.parametrize("window", [{"notAfter": "2026-01-01T00:00:00Z"}, {"notBefore": "2027-01-01T00:00:00Z"}])
def test_key_outside_its_validity_window_is_refused(alice: tuple[Path, str], window: dict[str, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    problems = ms.check_signature(obj, [policy(alice[1], **window)], keys.verify_manifest, now=NOW)
    assert len(problems) == 1 and "outside its validity window" in problems[0], problems
    inside = NOW + timedelta(days=400) if "notBefore" in window else NOW - timedelta(days=200)
    assert ms.check_signature(obj, [policy(alice[1], **window)], keys.verify_manifest, now=inside) == []


@pytest.mark.parametrize("mangle", [
    lambda v: v[:-40],  # truncated signature
    lambda v: v.rsplit(".", 1)[0] + "." + base64.b64encode(b"garbage" * 20).decode(),
    lambda v: "v1.garbage",
    lambda v: v.rsplit(".", 1)[0] + ".",
])
def test_truncated_or_garbage_signature_is_refused(alice: tuple[Path, str], mangle: Any) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = mangle(obj["metadata"]["annotations"][ANNOTATION_SIGNATURE])
    problems = check(obj, alice[1])
    assert len(problems) == 1 and problems[0].startswith("its signature is refused"), problems


def test_a_commit_signature_is_not_a_manifest_signature(alice: tuple[Path, str]) -> None:
    data = ms.canonical(DEPLOYMENT)
    obj = live(stamped(DEPLOYMENT))
    ms.with_annotation(obj, ms.encode_annotation(data, keys.sign(data, alice[0], "git")))
    problems = check(applied(obj), alice[1])
    assert "namespace 'git'" in problems[0], problems


def test_scale_rules(alice: tuple[Path, str]) -> None:
    unsigned_replicas = live(signed(DEPLOYMENT, alice[0]))
    with_replicas = copy.deepcopy(DEPLOYMENT)
    with_replicas["spec"]["replicas"] = 2
    signed_replicas = live(signed(with_replicas, alice[0]))
    pol = [policy(alice[1])]
    hpa = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
    assert ms.check_scale(unsigned_replicas, 4, pol, keys.verify_manifest, now=NOW, requester=hpa) == []
    assert "only controllers" in ms.check_scale(unsigned_replicas, 4, pol, keys.verify_manifest, now=NOW,
                                                requester="bob")[0]
    assert "in the signed manifest" in ms.check_scale(signed_replicas, 4, pol, keys.verify_manifest, now=NOW,
                                                      requester=hpa)[0]
    assert ms.check_scale(signed_replicas, 2, pol, keys.verify_manifest, now=NOW, requester="bob") == []


def test_scope_by_namespace_tenant_or_sync(alice: tuple[Path, str]) -> None:
    pol = parse_trust_policy({"metadata": {"name": "p"}, "spec": {
        "keys": [{"name": "alice", "type": "ssh", "publicKey": alice[1]}],
        "scope": {"namespaces": ["a"], "tenants": ["team"], "syncs": ["gitops/web"]}}})
    assert ms.covering([pol], "a") == [pol]
    assert ms.covering([pol], "b", tenant="team") == [pol]
    assert ms.covering([pol], "b", {"gitops/web"}) == [pol]
    assert ms.covering([pol], "b", {"b/web", ""}, tenant="other") == []
    unsigned = live(applied(stamped(DEPLOYMENT)))  # in namespace team, Sync team/s
    assert ms.check_signature(unsigned, [pol], keys.verify_manifest, now=NOW) == []
    assert ms.check_signature(unsigned, [pol], keys.verify_manifest, now=NOW, tenant="team")
    relabelled = copy.deepcopy(unsigned)
    relabelled["metadata"]["labels"][LABEL_SYNC] = "elsewhere"
    sync_scoped = parse_trust_policy({"metadata": {"name": "q"}, "spec": {
        "keys": [{"name": "alice", "type": "ssh", "publicKey": alice[1]}], "scope": {"syncs": ["team/s"]}}})
    # moving an object out of a Sync-scoped policy by relabelling it is judged by its old labels
    assert ms.check_signature(relabelled, [sync_scoped], keys.verify_manifest, now=NOW, old=unsigned)


def test_hostile_managed_fields_are_a_problem_not_a_crash(alice: tuple[Path, str]) -> None:
    obj = live(signed(DEPLOYMENT, alice[0]))
    deep: JSON = {}
    node = deep
    for _ in range(200):
        node = node.setdefault("f:spec", {})
    wide = {f"f:k{i}": {} for i in range(60_000)}
    for fields, expected in ((deep, ""), (wide, "its managedFields can't be judged")):
        hostile = copy.deepcopy(obj)
        hostile["metadata"]["managedFields"].append({"manager": "m", "operation": "Update", "fieldsV1": fields})
        problems = check(hostile, alice[1])  # deep: walked only as deep as the object goes, nothing found
        assert (len(problems) == 1 and problems[0].startswith(expected)) if expected else problems == [], problems


def test_a_manifest_too_large_to_carry_is_refused_when_signing(alice: tuple[Path, str]) -> None:
    noise = base64.b64encode(random.Random(1).randbytes(200_000)).decode()
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": "team"},
           "data": {"blob": noise}}
    data = ms.canonical(big)
    with pytest.raises(VerificationFailed, match="too large to carry"):
        ms.encode_annotation(data, keys.sign(data, alice[0], ms.SSHSIG_NAMESPACE))
