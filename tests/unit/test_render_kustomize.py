"""Rendering without kubectl: the image has a standalone kustomize and no kubectl.

adapters.render builds with `kubectl kustomize` when kubectl is on PATH, else with `kustomize build`
(or the binary $KUBECTL_GITOPS_KUSTOMIZE names). Both are real here: kustomize v5.8.1 (the version
kubectl v1.37 embeds) is built from Go modules once and cached (devcluster/gotools.py).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from kubectl_gitops.adapters.render import KUSTOMIZE_ENV, kustomize_command, render
from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.devcluster.gotools import ensure_tool

OVERLAY = {
    "base/kustomization.yaml": "resources: [cm.yaml]\n",
    "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: base\n",
    "prod/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\nlabels:\n  - pairs: {tier: web}\n",
}


@pytest.fixture(scope="module")
def kustomize() -> Path:
    return ensure_tool("kustomize", lambda m: print(m, file=sys.stderr))


def _repo(tmp_path: Path) -> Path:
    for rel, text in OVERLAY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def _path_with(tmp_path: Path, **tools: Path) -> str:
    """A PATH holding only the named tools (and git, which kustomize may look up)."""
    bin_dir = tmp_path / "path-bin"
    bin_dir.mkdir()
    for name, target in tools.items():
        (bin_dir / name).symlink_to(target)
    return str(bin_dir)


def test_without_kubectl_the_standalone_kustomize_builds_the_same(tmp_path: Path, kustomize: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repo(tmp_path / "repo")
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "the unit tests compare with the real kubectl kustomize"
    with_kubectl = [m.obj for m in render(repo, "prod")]
    monkeypatch.setenv("PATH", _path_with(tmp_path, kustomize=kustomize))
    monkeypatch.delenv(KUSTOMIZE_ENV, raising=False)
    assert kustomize_command() == [str(monkeypatch_path(tmp_path) / "kustomize"), "build"]
    standalone = [m.obj for m in render(repo, "prod")]
    assert standalone == with_kubectl
    assert standalone[0]["metadata"] == {"name": "prod-app", "labels": {"tier": "web"}}


def monkeypatch_path(tmp_path: Path) -> Path:
    return tmp_path / "path-bin"


def test_kubectl_is_preferred_when_both_are_on_path(tmp_path: Path, kustomize: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    monkeypatch.setenv("PATH", _path_with(tmp_path, kustomize=kustomize, kubectl=Path(kubectl)))
    monkeypatch.delenv(KUSTOMIZE_ENV, raising=False)
    assert kustomize_command() == [str(monkeypatch_path(tmp_path) / "kubectl"), "kustomize"]


def test_the_environment_names_the_kustomize_binary(tmp_path: Path, kustomize: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    monkeypatch.setenv("PATH", _path_with(tmp_path, kubectl=Path(kubectl)))
    monkeypatch.setenv(KUSTOMIZE_ENV, str(kustomize))
    assert kustomize_command() == [str(kustomize), "build"]
    assert [m.obj["metadata"]["name"] for m in render(_repo(tmp_path / "repo"), "prod")] == ["prod-app"]


def test_a_missing_binary_in_the_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KUSTOMIZE_ENV, str(tmp_path / "nope"))
    with pytest.raises(BuildFailed, match=f"{KUSTOMIZE_ENV}=.*nope: no such executable"):
        render(_repo(tmp_path / "repo"), "prod")


def test_neither_on_path_names_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path))
    monkeypatch.delenv(KUSTOMIZE_ENV, raising=False)
    with pytest.raises(BuildFailed, match="neither kubectl nor kustomize is on PATH"):
        render(_repo(tmp_path / "repo"), "prod")
