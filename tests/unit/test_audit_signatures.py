"""The audit's signature rules (`signature/missing`, `signature/invalid`): live objects in a
TrustPolicy's signed scope, judged by the very `check_signature` admission calls. Signatures are
real (adapters/keys.sign over ssh-keygen keys), as in tests/unit/test_manifest_sig.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import ANNOTATION_SIGNATURE
from kubectl_gitops.core.audit import signature_rules as sr
from kubectl_gitops.core.audit.context import AuditContext, Facts
from kubectl_gitops.core.audit.model import Severity
from kubectl_gitops.core.audit.registry import by_id, run_object
from tests.unit.audit_world import NOW, configmap, context, sync
from tests.unit.test_manifest_sig import DEPLOYMENT, edited, keygen, live, signed

JSON = dict[str, Any]


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keygen(tmp_path_factory.mktemp("keys"), "alice")


@pytest.fixture(scope="module")
def eve(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return keygen(tmp_path_factory.mktemp("keys"), "eve")


def policy(public: str, mode: str = "enforce", **scope: list[str]) -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "TrustPolicy", "metadata": {"name": "p"},
            "spec": {"keys": [{"name": "alice", "type": "ssh", "publicKey": public}], "mode": mode,
                     "scope": scope or {"namespaces": ["team"]}}}


def ctx(public: str, mode: str = "enforce", **scope: list[str]) -> AuditContext:
    return AuditContext.build(Facts(trust_policies=[policy(public, mode, **scope)],
                                    syncs=[sync("s", "team", inventory=["team_web_apps_Deployment"])]),
                              now=NOW, verify=keys.verify_manifest)


def found(obj: JSON, public: str, mode: str = "enforce", **scope: list[str]) -> list[tuple[str, str, str]]:
    return [(f.rule, f.severity.value, f.message) for f in run_object(obj, ctx(public, mode, **scope))
            if f.rule.startswith("signature/")]


def unsigned(obj: JSON) -> JSON:
    """`obj` as an unsigned sync applies it (stamped, no signature annotation)."""
    out = copy.deepcopy(obj)
    out["metadata"]["annotations"].pop(ANNOTATION_SIGNATURE)
    return out


def test_a_valid_signature_is_no_finding(alice: tuple[Path, str]) -> None:
    key, public = alice
    assert found(live(signed(DEPLOYMENT, key)), public) == []


def test_an_unsigned_managed_object_is_signature_missing_once(alice: tuple[Path, str]) -> None:
    key, public = alice
    obj = unsigned(live(signed(DEPLOYMENT, key)))
    result = found(obj, public)
    assert [(rule, sev) for rule, sev, _ in result] == [("signature/missing", "error")], result
    assert "TrustPolicy p (enforce)" in result[0][2] and "not signed" in result[0][2]


def test_signed_by_an_untrusted_key_is_signature_invalid(alice: tuple[Path, str], eve: tuple[Path, str]) -> None:
    _, public = alice
    result = found(live(signed(DEPLOYMENT, eve[0])), public)
    assert [(rule, sev) for rule, sev, _ in result] == [("signature/invalid", "error")], result
    assert "signature is refused" in result[0][2]


def test_content_changed_after_signing_is_signature_invalid(alice: tuple[Path, str]) -> None:
    key, public = alice

    def image(obj: JSON) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"

    result = found(edited(live(signed(DEPLOYMENT, key)), image), public)
    assert [rule for rule, _, _ in result] == ["signature/invalid"], result
    assert "image" in result[0][2], result


def test_a_field_added_by_another_manager_is_signature_invalid(alice: tuple[Path, str]) -> None:
    key, public = alice

    def env(obj: JSON) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EVIL", "value": "1"})

    result = found(edited(live(signed(DEPLOYMENT, key)), env), public)
    assert [rule for rule, _, _ in result] == ["signature/invalid"], result


def test_the_control_plane_scaling_is_not_a_finding(alice: tuple[Path, str]) -> None:
    key, public = alice

    def scaled(manager: str) -> JSON:
        obj = live(signed(DEPLOYMENT, key))
        obj["spec"]["replicas"] = 4
        obj["metadata"]["managedFields"].append({"manager": manager, "operation": "Update", "apiVersion": "apps/v1",
                                                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}})
        return obj

    assert found(scaled("kube-controller-manager"), public) == []
    result = found(scaled("kubectl-scale"), public)
    assert [r for r, _, _ in result] == ["signature/invalid"] and "spec.replicas" in result[0][2], result


def test_warn_mode_makes_warnings(alice: tuple[Path, str]) -> None:
    key, public = alice
    result = found(unsigned(live(signed(DEPLOYMENT, key))), public, "warn")
    assert [(rule, sev) for rule, sev, _ in result] == [("signature/missing", "warning")], result
    assert "(warn)" in result[0][2]


def test_outside_every_scope_or_unmanaged_is_not_judged(alice: tuple[Path, str]) -> None:
    key, public = alice
    obj = unsigned(live(signed(DEPLOYMENT, key)))
    assert found(obj, public, namespaces=["elsewhere"]) == []
    assert found(configmap("hand-made", "team"), public) == []  # nobody's: orphan/unowned's business
    assert not sr.managed(configmap("hand-made", "team"))


def test_a_sync_scope_covers_its_objects(alice: tuple[Path, str]) -> None:
    key, public = alice
    obj = unsigned(live(signed(DEPLOYMENT, key)))
    assert [r for r, _, _ in found(obj, public, syncs=["team/s"])] == ["signature/missing"]
    assert found(obj, public, syncs=["team/other"]) == []


def test_without_a_verifier_the_rules_find_nothing(alice: tuple[Path, str]) -> None:
    key, public = alice
    bare = context(trust_policies=[policy(public)])
    assert [f for f in run_object(unsigned(live(signed(DEPLOYMENT, key))), bare) if f.rule.startswith("sig")] == []


def test_the_registry_has_both_rules_with_error_severity() -> None:
    rules = by_id()
    assert rules["signature/missing"].severity is Severity.ERROR
    assert rules["signature/invalid"].severity is Severity.ERROR
