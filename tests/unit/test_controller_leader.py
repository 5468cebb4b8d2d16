"""Leader election rules (pure, fake clock) and the Elector against a fake Lease store."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.controller.leader import Elector, LeaseRecord, LeaseState, decide

JSON = dict[str, Any]


def test_free_lease_is_taken() -> None:
    rec = decide(LeaseState(), "me", 0.0, "t0", 15)
    assert rec is not None and rec.holder == "me" and rec.transitions == 0


def test_held_lease_is_not_taken_before_it_expires_by_our_observation() -> None:
    state = LeaseState()
    state.observe(LeaseRecord("other", 15, "t", "t", 3), now=100.0)
    assert decide(state, "me", 114.9, "w", 15) is None
    taken = decide(state, "me", 115.0, "w", 15)
    assert taken is not None and taken.holder == "me" and taken.transitions == 4


def test_a_renewal_restarts_the_observation_clock() -> None:
    state = LeaseState()
    state.observe(LeaseRecord("other", 15, "t", "t1"), now=100.0)
    state.observe(LeaseRecord("other", 15, "t", "t2"), now=110.0)  # renewed
    assert decide(state, "me", 120.0, "w", 15) is None
    state.observe(LeaseRecord("other", 15, "t", "t2"), now=124.0)  # unchanged: not renewed
    assert decide(state, "me", 125.0, "w", 15) is not None


def test_released_lease_is_taken_at_once() -> None:
    state = LeaseState()
    state.observe(LeaseRecord("", 1, "t", "t"), now=100.0)
    assert decide(state, "me", 100.0, "w", 15) is not None


def test_holder_renews_without_a_transition() -> None:
    state = LeaseState()
    state.observe(LeaseRecord("me", 15, "t0", "t1", 2), now=0.0)
    rec = decide(state, "me", 1.0, "t2", 15)
    assert rec == LeaseRecord("me", 15, "t0", "t2", 2)


class FakeStore:
    """One Lease in memory with resourceVersion conflicts, like the API server."""

    namespace = "ns"
    name = "lease"

    def __init__(self) -> None:
        self.lease: JSON | None = None
        self.version = 0
        self.fail = False

    def get(self) -> JSON | None:
        if self.fail:
            from kubectl_gitops.core.errors import ClusterUnreachable

            raise ClusterUnreachable("down")
        return None if self.lease is None else {**self.lease, "metadata": {"resourceVersion": str(self.version)}}

    def write(self, current: JSON | None, record: LeaseRecord) -> JSON | None:
        seen = None if current is None else current["metadata"]["resourceVersion"]
        if (self.lease is None) != (current is None) or (seen is not None and seen != str(self.version)):
            return None  # conflict
        self.version += 1
        self.lease = {"spec": record.spec()}
        return {**self.lease, "metadata": {"resourceVersion": str(self.version)}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def elector(store: FakeStore, me: str, clock: Clock, events: list[str]) -> Elector:
    return Elector(store, me, lease_duration=15, renew_deadline=10, retry_period=2, clock=clock,  # type: ignore[arg-type]
                   on_start=lambda: events.append(f"{me} start"), on_lost=lambda: events.append(f"{me} lost"))


def test_one_of_two_candidates_leads_and_the_other_takes_over_after_the_lease_duration() -> None:
    store, clock, events = FakeStore(), Clock(), []
    a, b = elector(store, "a", clock, events), elector(store, "b", clock, events)
    a.step()
    b.step()
    assert a.leading.is_set() and not b.leading.is_set()
    for _ in range(5):  # a renews, b waits
        clock.now += 2
        a.step()
        b.step()
    assert not b.leading.is_set()
    # a dies (stops renewing): b takes over once the lease has not changed for 15 s.
    start = clock.now
    while not b.leading.is_set():
        clock.now += 2
        b.step()
    assert 15 <= clock.now - start <= 17
    assert events == ["a start", "b start"]
    assert store.lease is not None and store.lease["spec"]["leaseTransitions"] == 1


def test_leader_that_cannot_renew_stops_before_the_lease_expires() -> None:
    store, clock, events = FakeStore(), Clock(), []
    a = elector(store, "a", clock, events)
    a.step()
    store.fail = True
    while a.leading.is_set():
        clock.now += 2
        a.step()
    assert events == ["a start", "a lost"]
    assert clock.now < 15, "it kept leading after others could take over"


def test_release_lets_the_standby_take_over_at_once() -> None:
    store, clock, events = FakeStore(), Clock(), []
    a, b = elector(store, "a", clock, events), elector(store, "b", clock, events)
    a.step()
    b.step()
    a.stop(release=True)
    clock.now += 2
    b.step()
    assert b.leading.is_set()


def test_deadlines_must_be_ordered() -> None:
    from kubectl_gitops.core.errors import GitOpsError

    with pytest.raises(GitOpsError):
        Elector(FakeStore(), "a", lease_duration=10, renew_deadline=10, retry_period=2)  # type: ignore[arg-type]
