"""Wait until applied objects are healthy (kstatus rules from the core), bounded by a timeout.

Polls with one LIST per kind (label-selected), not one GET per object, so waiting on a
thousand objects costs as many requests as there are kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kubectl_gitops.core.errors import HealthCheckFailed
from kubectl_gitops.core.health import Health, HealthStatus, assess
from kubectl_gitops.core.objects import IdentityKey, ObjectRef
from kubectl_gitops.engine.apply import JSON

Fetch = Callable[[Iterable[ObjectRef]], dict[IdentityKey, JSON]]


def wait_healthy(refs: list[ObjectRef], fetch: Fetch, timeout: float, *, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> dict[ObjectRef, Health]:
    """Poll until every ref is Current; HealthCheckFailed at a Failed object or at the timeout."""
    deadline = clock() + timeout
    pending = list(refs)
    verdicts: dict[ObjectRef, Health] = {}
    while pending:
        live = fetch(pending)
        still: list[ObjectRef] = []
        for ref in pending:
            obj = live.get(ref.key)
            health = assess(obj) if obj is not None else Health(HealthStatus.IN_PROGRESS, "not found yet")
            verdicts[ref] = health
            if health.status is HealthStatus.FAILED:
                raise HealthCheckFailed(f"{ref.display} failed: {health.message}")
            if health.status is not HealthStatus.CURRENT:
                still.append(ref)
        pending = still
        if pending and clock() >= deadline:
            raise HealthCheckFailed(_timeout_message(pending, verdicts, timeout))
        if pending:
            sleep(min(interval, max(0.0, deadline - clock())))
    return verdicts


def _timeout_message(pending: list[ObjectRef], verdicts: dict[ObjectRef, Health], timeout: float) -> str:
    shown = "; ".join(f"{r.display}: {verdicts[r].status.value} ({verdicts[r].message})" for r in pending[:3])
    more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
    return f"timeout after {timeout:.0f}s waiting for {len(pending)} object(s): {shown}{more}"
