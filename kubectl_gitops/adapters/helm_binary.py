"""The pinned `helm` executable: built once from Go modules, cached by version.

Charts are rendered by the real Helm template engine (sprig, `lookup`-free `helm template`,
`.Capabilities`), not a re-implementation, so that a chart renders here exactly as it does
for Helm users. No release downloads are reachable from the machines this project targets,
but the Go module proxy is; helm.sh/helm/v3 has no replace directives, so a tiny wrapper
module of our own pins it as a tool and `go build` compiles it. The result lands in
`<cache>/bin/helm-<version>/helm` only when the build finished (no half caches), under a
lock so concurrent first uses build once. `KUBECTL_GITOPS_HELM` points at another binary.

This lives in adapters (not devcluster) because the engine needs it at sync time and the
layer contract keeps the engine from importing the dev cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from kubectl_gitops.adapters.gobuild import file_lock, go_env
from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.errors import BuildFailed

HELM_VERSION: Final = os.environ.get("KUBECTL_GITOPS_HELM_VERSION", "v3.22.0")
HELM_MODULE: Final = f"helm.sh/helm/{HELM_VERSION.split('.')[0]}"  # v3.x.y -> helm.sh/helm/v3, v4 -> /v4
BUILD_TIMEOUT_S: Final = 3600

Progress = Callable[[str], None]


def helm_path(root: Path | None = None) -> Path:
    """Where the pinned helm is cached (it may not exist yet)."""
    return (root or cache_root()) / "bin" / f"helm-{HELM_VERSION}" / "helm"


def ensure_helm(progress: Progress | None = None, root: Path | None = None) -> Path:
    """The helm to run: $KUBECTL_GITOPS_HELM, else the cached build, built on first use."""
    explicit = os.environ.get("KUBECTL_GITOPS_HELM")
    if explicit:
        return Path(explicit)
    path = helm_path(root)
    if _usable(path):
        return path
    go = shutil.which("go")
    if go is None:
        raise BuildFailed(
            f"charts are rendered with helm {HELM_VERSION}, built from Go modules on first use, and `go` "
            "is not on PATH: install Go 1.26 or newer, or set KUBECTL_GITOPS_HELM to a helm binary")
    with _lock(path.parent.parent):
        if not _usable(path):
            _build(go, path, progress or (lambda _m: None))
    return path


def _usable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _lock(root: Path) -> AbstractContextManager[None]:
    return file_lock(root, ".helm-build.lock")


_go_env = go_env


def _go(go: str, args: list[str], cwd: Path, what: str) -> None:
    try:
        proc = subprocess.run([go, *args], check=False, cwd=cwd, env=_go_env(), capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"{what} timed out after {BUILD_TIMEOUT_S}s in {cwd}") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BuildFailed(f"{what} failed (`go {' '.join(args[:3])} ...` in {cwd}, exit {proc.returncode}):\n"
                          f"{tail}\ncheck that the Go module proxy is reachable (GOPROXY), then run again")


def _build(go: str, dest: Path, progress: Progress) -> None:
    progress(f"building helm {HELM_VERSION} from Go modules (first use only; a few minutes on 2 cores)")
    work = dest.parent.parent.parent / "build" / f"helm-{HELM_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "go.mod").write_text("module kubectl-gitops.dev/devbuild/helm\n\ngo 1.26.0\n")
    _go(go, ["get", "-tool", f"{HELM_MODULE}/cmd/helm@{HELM_VERSION}"], work, "resolving helm modules")
    flags = f"-s -w -X {HELM_MODULE}/internal/version.version={HELM_VERSION}"
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _go(go, ["build", "-p", os.environ.get("KUBECTL_GITOPS_GO_PARALLEL", "1"), "-trimpath", "-ldflags", flags,
                 "-o", f"{tmp}/helm", f"{HELM_MODULE}/cmd/helm"], work, "compiling helm")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(Path(tmp) / "helm", dest)
