"""Flux's controllers, built from pinned Go modules, for the benchmarks that compare us with them.

Benchmarks only: never built by `make test`. Like the control plane, no release download is
reachable here, so source-controller and kustomize-controller are compiled from the Go module
proxy once per version and cached under the user's cache directory. Their go.mod replaces their
own `api` submodule with a relative path, which `go install module@version` refuses; so each is
built from a writable copy of its module with that replace pinned to the published api module.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.errors import DevClusterError
from kubectl_gitops.devcluster.build import Progress, _build_lock, _find_go, _go_env, _install, _run_go

FLUX_VERSION = "v1.9.6"  # the newest source/kustomize-controller whose go.mod says go 1.26
CONTROLLERS = ("source-controller", "kustomize-controller")
# Modules a controller asks for that the proxy here does not serve, and the version that builds instead.
SUBSTITUTES = {"source-controller": {"github.com/fluxcd/pkg/artifact": "v0.18.0"}}


@dataclass(frozen=True)
class Flux:
    """The two controllers and the CRD files that ship in their modules."""

    source_controller: Path
    kustomize_controller: Path
    crds: tuple[Path, ...]


def flux_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "bin" / f"flux-{FLUX_VERSION}"


def ensure_flux(progress: Progress, root: Path | None = None) -> Flux:
    """Build whatever is missing (minutes, first use only) and return the paths."""
    dest = flux_dir(root)
    go = _find_go()
    with _build_lock((root or cache_root()) / "bin"):
        for name in CONTROLLERS:
            if not (dest / name).is_file():
                _build_controller(go, name, dest, progress)
        crds = _copy_crds(go, dest)
    return Flux(dest / "source-controller", dest / "kustomize-controller", crds)


def _module_dir(go: str, module: str, cwd: Path) -> Path:
    out = subprocess.run([go, "mod", "download", "-json", module], check=False, cwd=cwd, env=_go_env(),
                         capture_output=True, text=True)
    info = json.loads(out.stdout or "{}") if out.stdout.strip().startswith("{") else {}
    if out.returncode != 0 or not info.get("Dir"):
        raise DevClusterError(f"cannot download {module} from the Go module proxy: "
                              f"{info.get('Error') or out.stderr.strip()}")
    return Path(info["Dir"])


def _build_controller(go: str, name: str, dest: Path, progress: Progress) -> None:
    progress(f"building Flux {name} {FLUX_VERSION} from Go modules (first use only; a few minutes)")
    work = dest.parent.parent / "build" / f"flux-{FLUX_VERSION}"
    work.mkdir(parents=True, exist_ok=True)
    src = _module_dir(go, f"github.com/fluxcd/{name}@{FLUX_VERSION}", work)
    copy = work / name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(src, copy)
    for path in copy.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)
    copy.chmod(0o755)
    edits = [f"-replace=github.com/fluxcd/{name}/api=github.com/fluxcd/{name}/api@{FLUX_VERSION}"]
    edits += [f"-replace={m}={m}@{v}" for m, v in SUBSTITUTES.get(name, {}).items()]
    _run_go(go, ["mod", "edit", *edits], copy, progress, f"pinning {name}'s modules")
    env = _go_env()
    env["GOFLAGS"] = f"{env['GOFLAGS']} -mod=mod"  # the copy's go.sum lacks the pinned api module's sums
    try:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            _run_go(go, ["build", "-p", "2", "-trimpath", "-ldflags", "-s -w", "-o", f"{tmp}/{name}", "."],
                    copy, progress, f"compiling {name}", env)
            _install(Path(tmp), dest, (name,))
    finally:
        shutil.rmtree(copy, ignore_errors=True)


def _copy_crds(go: str, dest: Path) -> tuple[Path, ...]:
    """Every CRD under config/crd/bases of both modules, copied next to the binaries."""
    out: list[Path] = []
    crd_dir = dest / "crds"
    crd_dir.mkdir(parents=True, exist_ok=True)
    for name in CONTROLLERS:
        for path in sorted((_module_dir(go, f"github.com/fluxcd/{name}@{FLUX_VERSION}", dest)
                            / "config" / "crd" / "bases").glob("*.yaml")):
            target = crd_dir / path.name
            if not target.is_file():
                shutil.copyfile(path, target)
            out.append(target)
    return tuple(out)
