"""Helpers to run the real `kubectl` and the plugin (through kubectl's plugin discovery) as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent  # the environment's bin: holds the kubectl-gitops console script


def plugin_env(kubeconfig: str | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    env.update(extra)
    return env


@dataclass(frozen=True)
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(args: list[str], *, kubeconfig: str | None = None, input: str | None = None,
        check: bool = True, timeout: float = 300, cwd: str | None = None, **env: str) -> Run:
    proc = subprocess.run(args, check=False, input=input, capture_output=True, text=True, timeout=timeout,
                          env=plugin_env(kubeconfig, **env), cwd=cwd)
    result = Run(args, proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return result


def kubectl(*args: str, kubeconfig: str | None = None, input: str | None = None, check: bool = True,
            timeout: float = 120) -> Run:
    """The real kubectl on PATH."""
    return run(["kubectl", *args], kubeconfig=kubeconfig, input=input, check=check, timeout=timeout)


def gitops(*args: str, kubeconfig: str | None = None, input: str | None = None, check: bool = True,
           timeout: float = 300, cwd: str | None = None, **env: str) -> Run:
    """`kubectl gitops ...`, discovered by the real kubectl from PATH."""
    return run(["kubectl", "gitops", *args], kubeconfig=kubeconfig, input=input, check=check,
               timeout=timeout, cwd=cwd, **env)
