"""`make image` on bad input: a missing Debian tool names its package; unreachable package sources fail
naming the step; neither leaves anything under the output directory nor a temporary directory behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.image.conftest import ROOT


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run(["bash", str(ROOT / "packaging" / "image.sh")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path / "tmp"),
                               "KUBECTL_GITOPS_IMAGE_OUT": str(tmp_path / "out"), **env},
                          check=False, timeout=600)


def _path_without(tmp_path: Path, tool: str) -> str:
    """Every executable of this machine's PATH, except `tool`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        for entry in Path(directory).glob("*") if Path(directory).is_dir() else ():
            link = bin_dir / entry.name
            if entry.name != tool and not link.exists() and os.access(entry, os.X_OK):
                link.symlink_to(entry)
    return str(bin_dir)


def test_a_missing_debian_tool_names_its_package(tmp_path: Path) -> None:
    done = _run(tmp_path, PATH=_path_without(tmp_path, "umoci"))
    assert done.returncode == 1
    assert "umoci is not installed: apt-get install umoci" in done.stderr
    assert "failed at step: checking tools" in done.stderr
    assert not (tmp_path / "out").exists()


def test_unreachable_package_sources_fail_naming_the_step(tmp_path: Path) -> None:
    # A fresh cache, so the Debian base is built; a mirror on a closed port of this machine.
    done = _run(tmp_path, KUBECTL_GITOPS_CACHE=str(tmp_path / "cache"),
                KUBECTL_GITOPS_IMAGE_MIRROR="http://127.0.0.1:9/debian")
    assert done.returncode == 1
    assert "mmdebstrap could not build the Debian base" in done.stderr
    assert "failed at step: debian base" in done.stderr
    assert not (tmp_path / "out").exists()
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not list((tmp_path / "cache" / "image").glob("base-*"))
