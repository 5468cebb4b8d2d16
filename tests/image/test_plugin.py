"""The single-file plugin `make plugin` writes, and the krew manifest that installs it.

The zipapp must run from a clean directory with a python3 that has none of the project's
dependencies (Debian's /usr/bin/python3 and the other CPythons on this machine), and the krew
manifest must pass krew's own validator and install offline with krew itself (both v0.4.3, built
from Go modules), checking the archive's sha256.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_gitops import __version__
from kubectl_gitops.devcluster.gotools import ensure_tool
from tests.image.conftest import ROOT

# Pythons that have never seen the project: Debian's, and pyenv's other versions where present.
CANDIDATES = ["/usr/bin/python3", *sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.1[1-9]*/bin/python3"))]


@dataclass(frozen=True)
class Plugin:
    zipapp: Path
    archive: Path
    manifest: Path


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    out = tmp_path_factory.mktemp("plugin")
    manifest = out / "gitops.yaml"
    shutil.copy(ROOT / "plugins" / "gitops.yaml", manifest)
    proc = subprocess.run(["bash", str(ROOT / "packaging" / "plugin.sh")], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, "KUBECTL_GITOPS_PLUGIN_OUT": str(out / "build"),
                               "KUBECTL_GITOPS_KREW_MANIFEST": str(manifest)},
                          check=False, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(proc.stderr)
    return Plugin(out / "build" / "kubectl-gitops", out / "build" / f"kubectl-gitops-{__version__}-linux-amd64.tar.gz",
                  manifest)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_sha256_files_match(plugin: Plugin) -> None:
    for path in (plugin.zipapp, plugin.archive):
        assert Path(f"{path}.sha256").read_text().split() == [_sha256(path), path.name]
    print(f"\nzipapp: {plugin.zipapp.stat().st_size / 2**20:.1f} MiB")


def _pythons_without_the_project() -> list[str]:
    found = []
    for python in CANDIDATES:
        probe = subprocess.run([python, "-I", "-c", "import sys; assert sys.version_info >= (3, 11); import click"],
                               capture_output=True, check=False)
        if probe.returncode != 0 and b"ModuleNotFoundError" in probe.stderr:
            found.append(python)
    return found


def test_runs_from_a_clean_directory_with_a_bare_python(plugin: Plugin, tmp_path: Path) -> None:
    pythons = _pythons_without_the_project()
    assert pythons, f"no python3 >= 3.11 without the project's dependencies among {CANDIDATES}"
    for python in pythons:
        bin_dir = tmp_path / f"bin-{Path(python).parent.parent.name}"
        bin_dir.mkdir()
        (bin_dir / "python3").symlink_to(python)
        home, cwd = tmp_path / f"home-{bin_dir.name}", tmp_path / f"cwd-{bin_dir.name}"
        home.mkdir()
        cwd.mkdir()
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home)}
        for args, expected in ((["version", "--client"], __version__), (["--help"], "Usage: kubectl gitops"),
                               (["webhook", "serve", "--help"], "Usage:")):
            done = subprocess.run([str(plugin.zipapp), *args], cwd=cwd, env=env, capture_output=True, text=True,
                                  check=False, timeout=300)
            assert done.returncode == 0 and expected in done.stdout, (python, args, done.stderr)
        # The native dependencies load for this Python (pydantic-core, cryptography, PyYAML's C loader).
        site = next((home / ".shiv").glob("kubectl-gitops_*/site-packages"))
        done = subprocess.run([python, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); "
                               "import pydantic_core, cryptography.hazmat.bindings._rust, yaml; "
                               "assert yaml.__with_libyaml__; import kubernetes.client"],
                              cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300,
                             stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (python, done.stderr)


def test_install_dry_run_finds_the_manifests_inside_the_zipapp(plugin: Plugin, tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    env = {"PATH": f"{Path(kubectl).parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([str(plugin.zipapp), "install", "--dry-run", "--no-webhook"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "kind: CustomResourceDefinition" in done.stdout


def test_the_krew_manifest_passes_krews_validation(plugin: Plugin) -> None:
    validator = ensure_tool("validate-krew-manifest", print)
    # The install half of the validator downloads `uri` (a release not published from here): krew
    # itself installs the archive offline in the next test instead.
    done = subprocess.run([str(validator), "-manifest", str(plugin.manifest), "-skip-install"],
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "structural validation OK" in done.stderr


def test_krew_installs_the_archive_and_checks_its_sha256(plugin: Plugin, tmp_path: Path) -> None:
    krew = ensure_tool("krew", print)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KREW_ROOT": str(tmp_path / "krew")}
    done = subprocess.run([str(krew), "install", f"--manifest={plugin.manifest}", f"--archive={plugin.archive}"],
                          env=env, capture_output=True, text=True, check=False, timeout=300,
                             stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    installed = tmp_path / "krew" / "bin" / "kubectl-gitops"
    assert installed.exists()
    assert list((tmp_path / "krew" / "store" / "gitops").glob("*/LICENSE"))
    run = subprocess.run([str(installed), "version", "--client"], env=env, capture_output=True, text=True,
                         check=False, timeout=300)
    assert run.returncode == 0 and __version__ in run.stdout, run.stderr
    # A tampered archive is refused: krew checks the manifest's sha256.
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(plugin.archive.read_bytes() + b"\0")
    shutil.rmtree(tmp_path / "krew")
    refused = subprocess.run([str(krew), "install", f"--manifest={plugin.manifest}", f"--archive={bad}"],
                             env=env, capture_output=True, text=True, check=False, timeout=300,
                             stdin=subprocess.DEVNULL)
    assert refused.returncode != 0 and "checksum does not match" in refused.stderr, refused.stderr
