"""Single Go tools the shipping work needs, built from pinned Go modules once per version.

The image renders kustomizations with a standalone `kustomize` (no kubectl in the image); the
shipping tests push the image to a local `distribution` registry and check the krew manifest with
krew's own validator. None of these is downloadable here as a release binary, but all of them are
Go modules: like the dev control plane (build.py), each is compiled once into a wrapper module of
our own and cached under <cache>/bin/<name>-<version>/, moved into place only when it built.

    python -m kubectl_gitops.devcluster.gotools kustomize   # prints the cached binary's path
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.errors import DevClusterError
from kubectl_gitops.devcluster.build import Progress, _build_lock, _find_go, _install, _run_go, _workdir


@dataclass(frozen=True)
class GoTool:
    """One binary: the package to build, the module version pinned, extra link flags."""

    name: str
    package: str
    version: str
    ldflags: str = "-s -w"


# kubectl v1.37.2 embeds kustomize v5.8.1: the image renders exactly what `kubectl kustomize` does.
KUSTOMIZE_VERSION: Final = "v5.8.1"
# v3.1.2 is the newest whose go.mod builds with Go 1.26 (its go directive is 1.26.0).
REGISTRY_VERSION: Final = "v3.1.2"
KREW_VERSION: Final = "v0.4.3"

TOOLS: Final = {
    "kustomize": GoTool("kustomize", "sigs.k8s.io/kustomize/kustomize/v5", KUSTOMIZE_VERSION,
                        f"-s -w -X sigs.k8s.io/kustomize/api/provenance.version={KUSTOMIZE_VERSION}"),
    "registry": GoTool("registry", "github.com/distribution/distribution/v3/cmd/registry", REGISTRY_VERSION),
    "krew": GoTool("krew", "sigs.k8s.io/krew/cmd/krew", KREW_VERSION),
    "validate-krew-manifest": GoTool("validate-krew-manifest", "sigs.k8s.io/krew/cmd/validate-krew-manifest",
                                     KREW_VERSION),
}


def tool_path(name: str, root: Path | None = None) -> Path:
    """Where the tool's binary is cached (it may not exist yet)."""
    tool = TOOLS[name]
    return (root or cache_root()) / "bin" / f"{tool.name}-{tool.version}" / tool.name


def ensure_tool(name: str, progress: Progress, root: Path | None = None) -> Path:
    """The cached binary, built first if missing (a no-op, no `go` needed, when warm)."""
    if name not in TOOLS:
        raise DevClusterError(f"unknown Go tool {name!r}; known: {', '.join(sorted(TOOLS))}")
    path = tool_path(name, root)
    if path.is_file():
        return path
    go = _find_go()
    with _build_lock((root or cache_root()) / "bin"):
        if not path.is_file():
            _build(go, TOOLS[name], path.parent, progress)
    return path


def _build(go: str, tool: GoTool, dest: Path, progress: Progress) -> None:
    progress(f"building {tool.name} {tool.version} from Go modules (first use only)")
    work = _workdir(dest, f"{tool.name}-{tool.version}")
    (work / "go.mod").write_text(f"module kubectl-gitops.dev/devbuild/{tool.name}\n\ngo 1.26.0\n")
    _run_go(go, ["get", "-tool", f"{tool.package}@{tool.version}"], work, progress,
            f"resolving {tool.name} modules")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run_go(go, ["build", "-p", "1", "-trimpath", "-ldflags", tool.ldflags, "-o", f"{tmp}/{tool.name}",
                     tool.package], work, progress, f"compiling {tool.name}")
        _install(Path(tmp), dest, (tool.name,))


def main(argv: list[str]) -> int:
    """Print the path of each named tool, building what is missing; errors are one line, exit 1."""
    try:
        for name in argv or sorted(TOOLS):
            print(ensure_tool(name, lambda m: print(m, file=sys.stderr, flush=True)))
    except DevClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - used by packaging/ scripts and tests
    sys.exit(main(sys.argv[1:]))
