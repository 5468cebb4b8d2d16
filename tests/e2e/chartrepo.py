"""Chart repositories made in a test: charts written as files, packaged with the pinned `helm package`,
indexed with `helm repo index`, served by a Python http.server thread; or pushed to a local OCI
registry (the distribution registry built from Go modules) with `helm push`.

Shared by tests/e2e/test_helm.py and benchmarks/helm_bench.py.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubectl_gitops.adapters.helm_binary import ensure_helm


def helm(*args: str, cwd: Path | None = None, home: Path) -> str:
    """The pinned helm with its own HOME (no repositories or registries of this machine)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"),
           "HELM_CONFIG_HOME": str(home / "config"), "HELM_DATA_HOME": str(home / "data"),
           "KUBECONFIG": os.devnull}
    proc = subprocess.run([str(ensure_helm()), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          check=False, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc.stdout


@dataclass
class Chart:
    """A chart as files: templates (name -> text), values, crds (name -> text)."""

    name: str
    version: str
    templates: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    crds: dict[str, str] = field(default_factory=dict)

    def write(self, directory: Path) -> Path:
        root = directory / self.name
        if root.exists():
            shutil.rmtree(root)
        (root / "templates").mkdir(parents=True)
        (root / "Chart.yaml").write_text(yaml.safe_dump(
            {"apiVersion": "v2", "name": self.name, "version": self.version, "type": "application"}))
        (root / "values.yaml").write_text(yaml.safe_dump(self.values))
        for name, text in self.templates.items():
            (root / "templates" / name).write_text(text)
        if self.crds:
            (root / "crds").mkdir()
            for name, text in self.crds.items():
                (root / "crds" / name).write_text(text)
        return root


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class HttpChartRepo:
    """An HTTP chart repository: `publish` packages a chart into it and re-indexes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.served = root / "served"
        self.served.mkdir(parents=True, exist_ok=True)
        self.home = root / "helm-home"
        self.home.mkdir(exist_ok=True)
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0

    def start(self) -> HttpChartRepo:
        handler = functools.partial(_Quiet, directory=str(self.served))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, chart: Chart) -> Path:
        src = chart.write(self.root / "src")
        helm("package", str(src), "--destination", str(self.served), home=self.home)
        helm("repo", "index", str(self.served), home=self.home)
        return self.served / f"{chart.name}-{chart.version}.tgz"


class OciChartRepo:
    """Charts pushed to a registry at `host` (plain HTTP) under `charts/`."""

    def __init__(self, root: Path, host: str) -> None:
        self.root = root
        self.host = host
        self.home = root / "helm-home"
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"oci://{self.host}/charts"

    def publish(self, chart: Chart) -> None:
        src = chart.write(self.root / "src")
        helm("package", str(src), "--destination", str(self.root / "pkg"), home=self.home)
        helm("push", str(self.root / "pkg" / f"{chart.name}-{chart.version}.tgz"), self.url, "--plain-http",
             home=self.home)
