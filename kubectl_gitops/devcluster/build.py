"""Build the dev control plane's binaries from pinned Go modules, once per version.

No release downloads are reachable from the machines this project targets, but the Go
module proxy is; so, like envtest, we run real binaries, compiled here. kube-apiserver
cannot be `go install`ed (k8s.io/kubernetes has replace directives for its staging
modules), so each component gets a tiny wrapper module of our own whose go.mod pins
every staging module to the matching v0.X.Y. The result is cached under the user's cache
directory keyed by version; later runs and fresh clones reuse it in milliseconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from kubectl_gitops.adapters.gobuild import file_lock, go_env
from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.errors import DevClusterError
from kubectl_gitops.devcluster import versions

Progress = Callable[[str], None]

KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat/node-heartbeat.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml",
    "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


@dataclass(frozen=True)
class Binaries:
    """Paths of the built executables and the kwok stage config."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwok_stages: Path

    def all(self) -> tuple[Path, ...]:
        return (self.etcd, self.kube_apiserver, self.kube_controller_manager,
                self.kube_scheduler, self.kwok)


def binaries(root: Path | None = None) -> Binaries:
    """The cache paths for the pinned versions (they may not exist yet)."""
    base = (root or cache_root()) / "bin"
    kube = base / f"kubernetes-{versions.KUBE_VERSION}"
    kwok = base / f"kwok-{versions.KWOK_VERSION}"
    return Binaries(
        etcd=base / f"etcd-{versions.ETCD_VERSION}" / "etcd",
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kwok=kwok / "kwok",
        kwok_stages=kwok / "stages.yaml",
    )


def is_built(bins: Binaries) -> bool:
    return all(p.is_file() and os.access(p, os.X_OK) for p in bins.all()) and bins.kwok_stages.is_file()


def ensure_built(progress: Progress, root: Path | None = None) -> Binaries:
    """Build whatever is missing; a no-op (no `go` needed) when the cache is warm."""
    bins = binaries(root)
    if is_built(bins):
        return bins
    go = _find_go()
    with _build_lock(root or cache_root()):
        if not bins.etcd.is_file():
            _build_etcd(go, bins.etcd.parent, progress)
        if not bins.kube_apiserver.is_file() or not bins.kube_scheduler.is_file() \
                or not bins.kube_controller_manager.is_file():
            _build_kubernetes(go, bins.kube_apiserver.parent, progress)
        if not bins.kwok.is_file() or not bins.kwok_stages.is_file():
            _build_kwok(go, bins.kwok.parent, progress)
    return bins


def kubectl_path(root: Path | None = None) -> Path:
    """Where the kubectl matching the dev API server's version is cached (it may not exist yet)."""
    return (root or cache_root()) / "bin" / f"kubectl-{versions.KUBE_VERSION}" / "kubectl"


def ensure_kubectl(progress: Progress, root: Path | None = None) -> Path:
    """kubectl at the dev API server's version, built once from the same pinned modules.

    A kubectl outside the version-skew policy is many times slower at server-side apply (it
    re-parses the OpenAPI document per request), so tests and benchmarks use this one.
    """
    path = kubectl_path(root)
    if path.is_file() and os.access(path, os.X_OK):
        return path
    go = _find_go()
    with _build_lock((root or cache_root()) / "bin"):
        if not path.is_file():
            _build_kubectl(go, path.parent, progress)
    return path


def _find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise DevClusterError(
            "the dev control plane is built from Go modules on first use, and `go` is not on PATH: "
            "install Go 1.26 or newer (e.g. `apt-get install golang-go`, or the tarball's bin/ on PATH) "
            "and run again")
    return go


def _build_lock(root: Path) -> AbstractContextManager[None]:
    return file_lock(root, ".build.lock")


_go_env = go_env


def _run_go(go: str, args: list[str], cwd: Path, progress: Progress, what: str,
            env: dict[str, str] | None = None) -> None:
    """Run one go command, reporting elapsed time every 30 s so a cold build shows life."""
    started = time.monotonic()
    done = threading.Event()

    def tick() -> None:
        while not done.wait(30):
            progress(f"  ... still {what} ({time.monotonic() - started:.0f}s)")

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        proc = subprocess.run([go, *args], check=False, cwd=cwd, env=env or _go_env(), capture_output=True,
                              text=True)
    finally:
        done.set()
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise DevClusterError(
            f"{what} failed (`go {' '.join(args[:3])} ...` in {cwd}, exit {proc.returncode}):\n{tail}\n"
            "check that the Go module proxy is reachable (GOPROXY) and that the disk has a few GB free, "
            "then run again; finished parts are cached")


def _workdir(dest: Path, name: str) -> Path:
    work = dest.parent.parent / "build" / name
    work.mkdir(parents=True, exist_ok=True)
    return work


def _install(tmp: Path, dest: Path, names: tuple[str, ...]) -> None:
    """Move finished binaries into place only when all of them built (no half caches)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(tmp / name, dest / name)


def _build_etcd(go: str, dest: Path, progress: Progress) -> None:
    v = versions.ETCD_VERSION
    progress(f"building etcd {v} from Go modules (first use only)")
    work = _workdir(dest, f"etcd-{v}")
    (work / "go.mod").write_text("module kubectl-gitops.dev/devbuild/etcd\n\ngo 1.26.0\n")
    _run_go(go, ["get", "-tool", f"go.etcd.io/etcd/server/v3@{v}"], work, progress, "resolving etcd modules")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run_go(go, ["build", "-p", "2", "-trimpath", "-ldflags", "-s -w", "-o", f"{tmp}/etcd",
                     "go.etcd.io/etcd/server/v3"], work, progress, "compiling etcd")
        _install(Path(tmp), dest, ("etcd",))


def _staging_replaces(go: str, work: Path, kube: str) -> list[str]:
    """Every `k8s.io/<m> => ./staging/...` of the release go.mod, pinned to v0.X.Y instead."""
    out = subprocess.run(check=False, args=[go, "mod", "download", "-json", f"k8s.io/kubernetes@{kube}"], cwd=work,
                         env=_go_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise DevClusterError(f"cannot download k8s.io/kubernetes@{kube}: {out.stdout or out.stderr}")
    gomod = Path(json.loads(out.stdout)["GoMod"]).read_text()
    staging_version = "v0." + kube.split(".", 1)[1]
    mods = []
    for line in gomod.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            mods.append(f"\t{parts[0]} => {parts[0]} {staging_version}")
    godebug = [line for line in gomod.splitlines() if line.startswith("godebug ")]
    return [*godebug, "replace (", *mods, ")"]


def _version_ldflags(kube: str) -> str:
    major, minor = kube.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {pkg}.gitVersion={kube}", f"-X {pkg}.gitMajor={major}",
                  f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]
    return " ".join(flags)


def _build_kubernetes(go: str, dest: Path, progress: Progress) -> None:
    kube = versions.KUBE_VERSION
    progress(f"building kube-apiserver, kube-controller-manager, kube-scheduler {kube} from Go modules "
             "(first use only; a cold build takes tens of minutes on 2 cores)")
    work = _workdir(dest, f"kubernetes-{kube}")
    header = ["module kubectl-gitops.dev/devbuild/kubernetes", "", "go 1.26.0", ""]
    (work / "go.mod").write_text("\n".join(header + _staging_replaces(go, work, kube)) + "\n")
    tools = [f"k8s.io/kubernetes/cmd/{b}@{kube}" for b in versions.KUBE_BINARIES]
    _run_go(go, ["get", "-tool", *tools, f"google.golang.org/protobuf@{versions.PROTOBUF_MIN}"],
            work, progress, "resolving Kubernetes modules (several hundred MB on first use)")
    pkgs = [f"k8s.io/kubernetes/cmd/{b}" for b in versions.KUBE_BINARIES]
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run_go(go, ["build", "-p", "2", "-trimpath", "-tags", "grpcnotrace",
                     "-ldflags", _version_ldflags(kube), "-o", tmp + "/", *pkgs],
                work, progress, "compiling Kubernetes")
        _install(Path(tmp), dest, versions.KUBE_BINARIES)


def _build_kubectl(go: str, dest: Path, progress: Progress) -> None:
    kube = versions.KUBE_VERSION
    progress(f"building kubectl {kube} from Go modules (first use only; a few minutes on 2 cores)")
    work = _workdir(dest, f"kubectl-{kube}")
    header = ["module kubectl-gitops.dev/devbuild/kubectl", "", "go 1.26.0", ""]
    (work / "go.mod").write_text("\n".join(header + _staging_replaces(go, work, kube)) + "\n")
    _run_go(go, ["get", "-tool", f"k8s.io/kubernetes/cmd/kubectl@{kube}",
                 f"google.golang.org/protobuf@{versions.PROTOBUF_MIN}"], work, progress, "resolving kubectl modules")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        _run_go(go, ["build", "-p", "2", "-trimpath", "-ldflags", _version_ldflags(kube), "-o", tmp + "/kubectl",
                     "k8s.io/kubernetes/cmd/kubectl"], work, progress, "compiling kubectl")
        _install(Path(tmp), dest, ("kubectl",))


def _build_kwok(go: str, dest: Path, progress: Progress) -> None:
    v = versions.KWOK_VERSION
    progress(f"building kwok {v} from Go modules (first use only)")
    work = _workdir(dest, f"kwok-{v}")
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        env_bin = ["-ldflags", "-s -w", "-trimpath"]
        _run_go(go, ["install", *env_bin, f"sigs.k8s.io/kwok/cmd/kwok@{v}"], work, progress, "compiling kwok")
        gobin = Path(_go_value(go, "GOPATH").split(os.pathsep)[0]) / "bin" / "kwok"
        shutil.copy2(gobin, Path(tmp) / "kwok")
        modcache = Path(_go_value(go, "GOMODCACHE")) / f"sigs.k8s.io/kwok@{v}"
        stages = [(modcache / s).read_text() for s in KWOK_STAGES]
        (Path(tmp) / "stages.yaml").write_text("\n---\n".join(s.strip() for s in stages) + "\n")
        _install(Path(tmp), dest, ("kwok", "stages.yaml"))


def _go_value(go: str, name: str) -> str:
    out = subprocess.run([go, "env", name], check=False, capture_output=True, text=True, env=_go_env())
    return out.stdout.strip()


def disk_usage(root: Path | None = None) -> dict[str, int]:
    """Bytes per built binary, for `dev status` and the build report."""
    return {p.name: p.stat().st_size for p in binaries(root).all() if p.is_file()}


if __name__ == "__main__":  # pragma: no cover - manual warm-up: python -m kubectl_gitops.devcluster.build
    t0 = time.monotonic()
    ensure_built(lambda m: print(m, file=sys.stderr, flush=True))
    print(f"built in {time.monotonic() - t0:.0f}s: {disk_usage()}")
