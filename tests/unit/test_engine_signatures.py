"""The sync's side of manifest signatures (engine/signatures.py) without a cluster: signatures carried
onto the objects, unsigned or changed objects refused in an enforcing scope before anything is
applied, warn mode and unscoped Syncs untouched, a broken signatures file named."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters import keys
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.errors import BuildFailed, VerificationFailed
from kubectl_gitops.core.spec import parse_sync
from kubectl_gitops.engine.signatures import carry_signatures

JSON = dict[str, Any]
CM: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "apps"},
           "data": {"a": "1"}}
SPEC = parse_sync({"metadata": {"name": "web", "namespace": "apps"},
                   "spec": {"sourceRef": {"kind": "GitSource", "name": "s"}, "path": "deploy"}})


class FakeKube:
    def __init__(self, policies: list[JSON]) -> None:
        self.policies = policies

    def list(self, info: Any, **_: Any) -> list[JSON]:
        assert info.plural == "trustpolicies"
        return self.policies


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("k") / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def policy(public: str, mode: str = "enforce", namespaces: tuple[str, ...] = ("apps",)) -> JSON:
    return {"metadata": {"name": "p"}, "spec": {"mode": mode, "keys": [{"name": "alice", "type": "ssh",
                                                                          "publicKey": public}],
                                                "scope": {"namespaces": list(namespaces)}}}


def repo(tmp: Path, key: Path, *objs: JSON) -> Path:
    (tmp / "deploy").mkdir(parents=True, exist_ok=True)
    entries = []
    for obj in objs:
        data = ms.canonical(obj)
        entries.append(ms.Entry(ms.object_id(obj), "", ms.digest(data), "", keys.sign(data, key, ms.SSHSIG_NAMESPACE)))
    (tmp / "deploy" / ms.SIGNATURES_FILE).write_text(ms.render_file(entries))
    return tmp


def test_signatures_are_carried_onto_the_objects(tmp_path: Path, alice: tuple[Path, str]) -> None:
    root = repo(tmp_path, alice[0], CM)
    desired = [copy.deepcopy(CM)]
    out = carry_signatures(FakeKube([policy(alice[1])]), SPEC, root, desired)  # type: ignore[arg-type]
    data, _ = ms.decode_annotation(ms.annotation_of(out[0]))
    assert data == ms.canonical(CM)


def test_unsigned_and_changed_objects_are_refused_before_applying(tmp_path: Path, alice: tuple[Path, str]) -> None:
    root = repo(tmp_path, alice[0], CM)
    changed = copy.deepcopy(CM)
    changed["data"]["a"] = "2"
    extra = copy.deepcopy(CM)
    extra["metadata"]["name"] = "extra"
    with pytest.raises(VerificationFailed) as err:
        carry_signatures(FakeKube([policy(alice[1])]), SPEC, root, [changed, extra])  # type: ignore[arg-type]
    assert str(err.value).startswith("2 object(s) without a valid manifest signature in a signed scope")
    assert "ConfigMap/apps/cfg: it changed since it was signed" in str(err.value)
    assert "ConfigMap/apps/extra: it has no entry in the signatures file" in str(err.value)


def test_no_signatures_file_in_an_enforcing_scope_is_refused(tmp_path: Path, alice: tuple[Path, str]) -> None:
    (tmp_path / "deploy").mkdir()
    with pytest.raises(VerificationFailed, match=r"the Sync's path has no \.gitops-signatures\.yaml"):
        carry_signatures(FakeKube([policy(alice[1])]), SPEC, tmp_path, [copy.deepcopy(CM)])  # type: ignore[arg-type]


@pytest.mark.parametrize("policies", ["none", "warn", "elsewhere"])
def test_warn_mode_and_unscoped_syncs_are_not_refused(tmp_path: Path, alice: tuple[Path, str], policies: str) -> None:
    (tmp_path / "deploy").mkdir()
    found = {"warn": [policy(alice[1], "warn")], "elsewhere": [policy(alice[1], namespaces=("other",))]}.get(
        policies, [])
    desired = [copy.deepcopy(CM)]
    assert carry_signatures(FakeKube(found), SPEC, tmp_path, desired) == [CM]  # type: ignore[arg-type]


def test_a_broken_signatures_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / ms.SIGNATURES_FILE).write_text("signatures: {a: [\n")
    with pytest.raises(BuildFailed, match=r"^deploy/\.gitops-signatures\.yaml: not valid YAML"):
        carry_signatures(FakeKube([]), SPEC, tmp_path, [copy.deepcopy(CM)])  # type: ignore[arg-type]
