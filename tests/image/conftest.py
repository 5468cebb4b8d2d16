"""The shipping tests (`make test-image`, tox env `image`): the OCI image and the single-file plugin.

Slow (an image build is half a minute warm, several minutes cold) and needing root and Debian tools
(mmdebstrap, umoci, skopeo), so they are not part of `make test`; .ci/run runs them after it,
installing the tools when missing. A missing tool fails the test with the package to install: a
skip would pass as green.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {"mmdebstrap": "mmdebstrap", "umoci": "umoci", "skopeo": "skopeo"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "image: builds the OCI image or the single-file plugin (slow; root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.image)


def need_tools() -> None:
    missing = [f"{tool} (apt-get install {pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    assert not missing, f"the image tests need: {', '.join(missing)}"
    assert os.geteuid() == 0, "the image tests need root (mmdebstrap --mode=root, chroot)"


@dataclass(frozen=True)
class Built:
    """One `make image` run: the archive, its manifest digest, and how long the build took."""

    archive: Path
    digest: str
    seconds: float
    log: str

    @property
    def ref(self) -> str:
        from kubectl_gitops import __version__

        return f"oci-archive:{self.archive}:{__version__}"


def build_image(out: Path) -> Built:
    import time

    need_tools()
    started = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "image.sh")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "KUBECTL_GITOPS_IMAGE_OUT": str(out)},
                          check=False, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from kubectl_gitops import __version__

    archive = out / f"kubectl-gitops-{__version__}.oci.tar"
    return Built(archive, (out / f"{archive.name}.digest").read_text().strip(), time.monotonic() - started,
                 proc.stderr)


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_image(tmp_path_factory.mktemp("image"))
