"""Start, watch and stop the dev control plane's processes.

Processes are started in their own session so they outlive the `kubectl gitops dev up` that
started them, and their pids are recorded with the binary path: a pid is only "ours" while
/proc says it still runs that binary, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    """A started component: name, pid, the binary it runs and its log file."""

    name: str
    pid: int
    binary: str
    log: str
    args: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "pid": self.pid, "binary": self.binary, "log": self.log,
                "args": list(self.args)}

    @staticmethod
    def from_json(data: dict[str, object]) -> Proc:
        raw_args = data.get("args")
        args = tuple(str(a) for a in raw_args) if isinstance(raw_args, list) else ()
        return Proc(str(data["name"]), int(str(data["pid"])), str(data["binary"]), str(data["log"]), args)


def start(name: str, args: list[str], log: Path) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        popen = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    return Proc(name, popen.pid, args[0], str(log), tuple(args))


def alive(proc: Proc) -> bool:
    """True while the pid runs our binary and is not a zombie."""
    try:
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        _reap(proc.pid)
        return False
    if not cmdline:
        # Right after exec the kernel has closed Popen's pipe but not yet set the new argv:
        # an empty cmdline is our process mid-exec, not a stranger.
        return True
    return cmdline == proc.binary


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(procs: list[Proc], timeout: float = 10.0) -> list[str]:
    """SIGTERM every live process (last started first), SIGKILL what outlives `timeout`.

    Returns the names of processes that had to be killed.
    """
    live = [p for p in reversed(procs) if alive(p)]
    for p in live:
        _signal(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in live):
        time.sleep(0.1)
    killed = [p for p in live if alive(p)]
    for p in killed:
        _signal(p, signal.SIGKILL)
    for p in killed:
        _wait_gone(p, 5.0)
    return [p.name for p in killed]


def _signal(proc: Proc, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def _wait_gone(proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive(proc):
        time.sleep(0.05)


def log_tail(path: str, lines: int = 12) -> str:
    """The log's errors (klog `E` lines, panics, fatal) if any, else its last lines."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.strip().splitlines()
    errors = [line for line in all_lines if line[:1] in ("E", "F") or "panic" in line or "fatal" in line.lower()]
    chosen = errors[-lines:] if errors else all_lines[-lines:]
    return "\n".join("    " + line[:400] for line in chosen)
