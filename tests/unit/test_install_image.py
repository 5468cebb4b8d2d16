"""`install --image`: the in-cluster parts run an image pinned by digest, never a tag that doesn't exist.

manifests/install's kustomize `images:` transformer writes a placeholder that can't resolve
(image-not-set.invalid, zero digest); `install --image REPOSITORY@sha256:DIGEST` replaces it, and a
real in-cluster install without one is refused (docs/install.md).
"""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gitops.cli.main import cli
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.install import IMAGE_PLACEHOLDER, check_image, with_image
from kubectl_gitops.engine.install import rendered

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")
DIGEST = "sha256:" + "ab" * 32
REF = f"registry.example:5000/team/kubectl-gitops@{DIGEST}"


def _images(objs: list[dict[str, Any]]) -> set[str]:
    return {c["image"] for o in objs if o.get("kind") == "Deployment"
            for c in o["spec"]["template"]["spec"]["containers"]}


def test_the_kustomization_never_names_a_tag() -> None:
    images = _images(rendered(webhook=True, webhook_url=None))
    assert images == {f"{IMAGE_PLACEHOLDER}@sha256:{'0' * 64}"}


def test_install_image_replaces_the_placeholder_in_every_workload() -> None:
    assert _images(rendered(webhook=True, webhook_url=None, image=REF)) == {REF}


def test_with_image_leaves_other_images_alone() -> None:
    other = {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"image": "nginx:1"}]}}}}
    assert with_image([other], REF) == [other]


@pytest.mark.parametrize("ref", ["kubectl-gitops:0.1.0", "registry.example/kubectl-gitops",
                                 f"kubectl-gitops@{DIGEST[:20]}", f"{IMAGE_PLACEHOLDER}@sha256:{'0' * 64}",
                                 f"Upper/x@{DIGEST}", f"x @{DIGEST}"])
def test_refs_not_pinned_by_digest_are_refused(ref: str) -> None:
    assert check_image(ref) is not None


@pytest.mark.parametrize("ref", [REF, f"kubectl-gitops@{DIGEST}", f"ghcr.io/o/kubectl-gitops:0.1.0@{DIGEST}"])
def test_digest_refs_are_accepted(ref: str) -> None:
    assert check_image(ref) is None


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["install", *args])
    if isinstance(result.exception, GitOpsError):
        return result.exception.exit_code, f"error: {result.exception}"
    return result.exit_code, result.output


def test_dry_run_with_image_shows_it() -> None:
    code, out = _invoke("--dry-run", "--image", REF)
    assert code == 0, out
    assert _images(list(yaml.safe_load(out)["items"])) == {REF}


def test_a_tag_is_refused_before_anything_happens() -> None:
    code, out = _invoke("--dry-run", "--image", "kubectl-gitops:0.1.0")
    assert code == 2
    assert "not pinned by digest" in out


def test_a_real_in_cluster_install_without_image_is_refused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused after connecting (the dev control plane's own refusal comes first), before applying."""
    from kubectl_gitops.cli import context

    class FakeKube:
        context = "prod"

    monkeypatch.setattr(context, "connect", lambda opts: FakeKube())
    monkeypatch.delenv("KUBECTL_GITOPS_IMAGE", raising=False)
    code, out = _invoke()
    assert code == 2
    assert "needs its image: pass --image REPOSITORY@sha256:DIGEST" in out
