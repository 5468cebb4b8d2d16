"""A work queue with per-key dedupe and delayed adds, plus the backoff and jitter rules.

The controller's one promise about concurrency lives here: a key (a Sync or a GitSource) is
handed to at most one worker at a time. Adding a key that is queued keeps the earlier of the two
due times; adding one that is being processed marks it dirty, and it is queued again when the
worker calls `done` (so no trigger is lost and no two runs of one Sync overlap). The clock is
injected: the unit tests drive it by hand.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def backoff_delay(failures: int, cap: float, base: float = 1.0) -> float:
    """Seconds to wait after the `failures`-th failure in a row: base * 2^(n-1), at most `cap`."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * (2 ** min(failures - 1, 62))))


def jittered(interval: float, fraction: float = 0.1, rand: Callable[[], float] = random.random) -> float:
    """`interval` shortened by up to `fraction` of itself, at random: Syncs created together drift
    apart instead of hitting the API server in one burst, and a run is never later than one interval."""
    return interval * (1.0 - fraction * rand())


@dataclass(order=True)
class _Entry:
    due: float
    seq: int
    key: str = field(compare=False)


class WorkQueue:
    """Keys due at a time; `get` hands out the earliest due key not being processed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[_Entry] = []
        self._due: dict[str, float] = {}  # queued keys -> due time (heap entries with another due are stale)
        self._processing: set[str] = set()
        self._dirty: dict[str, float] = {}  # processing keys added again -> due time
        self._seq = 0
        self._closed = False

    # ------------------------------------------------------------ add

    def add(self, key: str, delay: float = 0.0) -> None:
        """Queue `key` after `delay` seconds (an earlier due time already set wins)."""
        with self._cond:
            if self._closed:
                return
            due = self._clock() + max(0.0, delay)
            if key in self._processing:
                self._dirty[key] = min(due, self._dirty.get(key, due))
                return
            self._push(key, due)

    def _push(self, key: str, due: float) -> None:
        current = self._due.get(key)
        if current is not None and current <= due:
            return
        self._due[key] = due
        self._seq += 1
        heapq.heappush(self._heap, _Entry(due, self._seq, key))
        self._cond.notify()

    # ------------------------------------------------------------ take

    def get(self, timeout: float | None = None) -> str | None:
        """The next due key (now processing), waiting up to `timeout` s; None on timeout or shutdown."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                key, wait = self._pop_due()
                if key is not None:
                    return key
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def _pop_due(self) -> tuple[str | None, float | None]:
        """(a due key, None) or (None, seconds until the next one is due, None if empty)."""
        now = self._clock()
        while self._heap:
            top = self._heap[0]
            if self._due.get(top.key) != top.due:
                heapq.heappop(self._heap)  # superseded by an earlier add
                continue
            if top.due > now:
                return None, top.due - now
            heapq.heappop(self._heap)
            del self._due[top.key]
            self._processing.add(top.key)
            return top.key, None
        return None, None

    def done(self, key: str) -> None:
        """The worker finished `key`; a trigger that came in meanwhile queues it again."""
        with self._cond:
            self._processing.discard(key)
            due = self._dirty.pop(key, None)
            if due is not None and not self._closed:
                self._push(key, due)

    def forget(self, key: str) -> None:
        """Drop a queued key (its object is gone)."""
        with self._cond:
            self._due.pop(key, None)
            self._dirty.pop(key, None)

    # ------------------------------------------------------------ state

    def shutdown(self) -> None:
        """Hand out nothing more; workers blocked in `get` return None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def depth(self) -> int:
        """Keys waiting (due or not), not counting those being processed."""
        with self._cond:
            return len(self._due)

    def due_in(self, key: str) -> float | None:
        """Seconds until `key` is due, None if it is not queued (for tests and logs)."""
        with self._cond:
            due = self._due.get(key, self._dirty.get(key))
            return None if due is None else due - self._clock()

    def processing(self) -> set[str]:
        with self._cond:
            return set(self._processing)
