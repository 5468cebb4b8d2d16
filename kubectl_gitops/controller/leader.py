"""Leader election on a coordination.k8s.io/v1 Lease, so replicas don't fight over the same Syncs.

The rules are client-go's: a Lease is held by `holderIdentity` for `leaseDurationSeconds` after
the holder's last renewal *as observed by us*: each candidate times the lease from when it last
saw the record change on its own monotonic clock, never by comparing the holder's wall-clock
`renewTime` with its own (clocks skew; observations don't). The holder renews every
`retry_period`; if it cannot renew for `renew_deadline` it stops leading (before the lease can
expire for others: renew_deadline < lease_duration). On shutdown the holder releases the Lease
(empty holder), so a standby takes over at its next try rather than after a full lease duration.
Every write carries the resourceVersion read: two candidates never both win one round.

`LeaseState` and `decide` are pure (unit-tested with a fake clock); `Elector` runs them against the
API through `LeaseStore`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube, object_path
from kubectl_gitops.core.errors import GitOpsError

JSON = dict[str, Any]
log = logging.getLogger("kubectl_gitops.controller")


@dataclass(frozen=True)
class LeaseRecord:
    holder: str
    duration: float
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def of(cls, lease: JSON) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(str(spec.get("holderIdentity") or ""), float(spec.get("leaseDurationSeconds") or 0),
                   str(spec.get("acquireTime") or ""), str(spec.get("renewTime") or ""),
                   int(spec.get("leaseTransitions") or 0))

    def spec(self) -> JSON:
        out: JSON = {"holderIdentity": self.holder, "leaseDurationSeconds": max(1, round(self.duration)),
                     "leaseTransitions": self.transitions}
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out


class LeaseState:
    """What a candidate has observed: the last record and when (its own monotonic clock) it changed."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.observed_at = 0.0

    def observe(self, record: LeaseRecord, now: float) -> None:
        if record != self.record:
            self.record = record
            self.observed_at = now

    def held_by_other(self, me: str, now: float) -> bool:
        """Someone else holds the lease and it has not expired by our observation."""
        rec = self.record
        if rec is None or not rec.holder or rec.holder == me:
            return False
        return now - self.observed_at < rec.duration


def decide(state: LeaseState, me: str, now: float, wall: str, duration: float) -> LeaseRecord | None:
    """The record to write to take or keep the lease, or None (someone else holds it)."""
    if state.held_by_other(me, now):
        return None
    rec = state.record
    if rec is None:
        return LeaseRecord(me, duration, wall, wall, 0)
    if rec.holder == me:
        return replace(rec, duration=duration, renew_time=wall)
    return LeaseRecord(me, duration, wall, wall, rec.transitions + 1)


def micro_time(at: dt.datetime | None = None) -> str:
    """A metav1.MicroTime (RFC 3339 with microseconds, UTC)."""
    return (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseStore:
    """GET / create / replace one Lease (the only API calls of the election)."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self._collection = object_path("coordination.k8s.io/v1", "leases", namespace)
        self._path = object_path("coordination.k8s.io/v1", "leases", namespace, name)

    def get(self) -> JSON | None:
        try:
            return self.kube.request("GET", self._path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def write(self, current: JSON | None, record: LeaseRecord) -> JSON | None:
        """Create or replace (with the resourceVersion read); None when another candidate won the race."""
        body: JSON = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                      "metadata": {"name": self.name, "namespace": self.namespace}, "spec": record.spec()}
        try:
            if current is None:
                return self.kube.request("POST", self._collection, body=body)
            body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion")
            return self.kube.request("PUT", self._path, body=body)
        except ApiError as err:
            if err.status in (409, 422):
                return None
            raise


class Elector:
    """Campaign until stopped: `on_start` when this candidate becomes leader, `on_lost` if it stops."""

    def __init__(self, store: LeaseStore, identity: str, *, lease_duration: float = 15.0,
                 renew_deadline: float = 10.0, retry_period: float = 2.0,
                 on_start: Callable[[], None] = lambda: None, on_lost: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise GitOpsError("leader election needs retry period < renew deadline < lease duration")
        self.store = store
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.on_start = on_start
        self.on_lost = on_lost
        self.clock = clock
        self.state = LeaseState()
        self.leading = threading.Event()
        self._stop = threading.Event()
        self._current: JSON | None = None
        self._last_renew = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> Elector:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.retry_period)

    def step(self) -> None:
        """One round: try to acquire or renew; start or stop leading accordingly."""
        now = self.clock()
        try:
            ok = self._try()
        except GitOpsError as err:
            log.warning("leader election: %s", err, extra={"reason": "LeaseError"})
            ok = False
        if ok:
            self._last_renew = now
            if not self.leading.is_set():
                self.leading.set()
                log.info("became leader (lease %s/%s)", self.store.namespace, self.store.name,
                         extra={"reason": "LeaderElected"})
                self.on_start()
        elif self.leading.is_set() and now - self._last_renew >= self.renew_deadline:
            self.leading.clear()
            log.error("lost the lease %s/%s (not renewed for %.0fs)", self.store.namespace, self.store.name,
                      now - self._last_renew, extra={"reason": "LeaderLost"})
            self.on_lost()

    def _try(self) -> bool:
        current = self.store.get()
        now = self.clock()
        if current is not None:
            self.state.observe(LeaseRecord.of(current), now)
        else:
            self.state = LeaseState()
        record = decide(self.state, self.identity, now, micro_time(), self.lease_duration)
        if record is None:
            return False
        written = self.store.write(current, record)
        if written is None:
            return False
        self._current = written
        self.state.observe(LeaseRecord.of(written), now)
        return True

    def stop(self, release: bool = True) -> None:
        """Stop campaigning; the leader hands the Lease back (empty holder) so a standby takes over now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.retry_period + 5)
        if release and self.leading.is_set() and self._current is not None:
            self.leading.clear()
            rec = LeaseRecord.of(self._current)
            try:
                self.store.write(self._current, replace(rec, holder="", duration=1, renew_time=micro_time()))
                log.info("released the lease %s/%s", self.store.namespace, self.store.name,
                         extra={"reason": "LeaseReleased"})
            except GitOpsError as err:
                log.warning("could not release the lease: %s", err, extra={"reason": "LeaseError"})
