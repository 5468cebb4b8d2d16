"""What every build of a tool from Go modules shares: one lock per cache and the same environment.

The dev control plane, kubectl, helm, Flux's controllers and the registry are all compiled here
from pinned modules (no release downloads are reachable), by several processes at once when tests
run in parallel. Each cache directory has one lock, so two processes never build the same binary
twice or see half of one; and every build runs with cgo off (static binaries, no C toolchain) and
without VCS stamping (module builds have no repository to stamp).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(root: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on `root/name` (created with `root`) for the duration."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / name, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def go_env() -> dict[str, str]:
    """The environment for `go`: the caller's, with cgo off and no VCS stamping unless GOFLAGS says."""
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    env["CGO_ENABLED"] = "0"
    return env
