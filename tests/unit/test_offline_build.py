"""`build --offline`: the engine's own build path, with no cluster behind it."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_gitops.core import resources
from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.engine.inspect import offline_render


def write(tmp_path: Path, text: str) -> str:
    (tmp_path / "apps").mkdir(exist_ok=True)
    (tmp_path / "apps" / "a.yaml").write_text(text)
    return str(tmp_path / "apps")


def test_an_offline_build_namespaces_and_stamps_like_a_sync(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {v: '${V}'}\n---\n"
                           "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
                           "metadata: {name: r, namespace: ignored}\n")
    sync = resources.sync("app", "team", "offline", path, substitute={"V": "x"})
    out = offline_render(sync, path, "main@sha1:abc")
    cm, role = out.objects
    assert out.revision == "main@sha1:abc"
    assert cm["metadata"]["namespace"] == "team" and cm["data"] == {"v": "x"}
    assert cm["metadata"]["labels"] == {"kubectl-gitops.dev/sync": "app", "kubectl-gitops.dev/sync-namespace": "team"}
    assert cm["metadata"]["annotations"]["kubectl-gitops.dev/revision"] == "main@sha1:abc"
    assert "namespace" not in role["metadata"]


def test_an_unknown_kind_offline_fails_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    with pytest.raises(BuildFailed, match="unknown kind Widget"):
        offline_render(resources.sync("app", "team", "offline", path), path)


def test_substitute_from_offline_fails_naming_what_it_cannot_read(tmp_path: Path) -> None:
    path = write(tmp_path, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    sync = resources.sync("app", "team", "offline", path)
    sync["spec"]["substituteFrom"] = [{"kind": "ConfigMap", "name": "vars"}]
    with pytest.raises(BuildFailed, match="substituteFrom ConfigMap/vars: --offline: there is no cluster"):
        offline_render(sync, path)
