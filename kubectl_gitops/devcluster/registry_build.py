"""The `distribution` OCI registry (cmd/registry), built once from Go modules, for local OCI charts.

The Helm e2e tests push charts to a real OCI registry on localhost; no release downloads are
reachable here, but the Go module proxy is, so like the control plane it is compiled from the pinned
module (no replace directives: a wrapper module pins it as a tool) and cached by version under
`<cache>/bin/registry-<version>/registry`, installed only when the build finished. Other parts of
the project (image publishing) use the same builder (devcluster/gotools), so whoever builds first
saves the others the build.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kubectl_gitops.core.errors import DevClusterError
from kubectl_gitops.devcluster.build import Progress
from kubectl_gitops.devcluster.gotools import ensure_tool, tool_path


def registry_path(root: Path | None = None) -> Path:
    return tool_path("registry", root)


def ensure_registry(progress: Progress, root: Path | None = None) -> Path:
    """The registry binary, built on first use (a few minutes on 2 cores) by devcluster/gotools, the
    one builder of the Go tools the tests and the image use."""
    return ensure_tool("registry", progress, root)


@contextmanager
def running_registry(directory: Path, progress: Progress = lambda _m: None) -> Iterator[str]:
    """A plain-HTTP registry on 127.0.0.1 storing under `directory`; yields `host:port`."""
    binary = ensure_registry(progress)
    port = _free_port()
    config = directory / "config.yml"
    (directory / "storage").mkdir(parents=True, exist_ok=True)
    config.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{directory / 'storage'}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = (directory / "registry.log").open("w")
    proc = subprocess.Popen([str(binary), "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_port(port, proc, directory / "registry.log")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevClusterError(f"the registry exited ({proc.returncode}): {log.read_text()[-1000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise DevClusterError(f"the registry did not listen on 127.0.0.1:{port} within {timeout:.0f}s")
