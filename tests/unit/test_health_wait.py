"""engine.health.wait_healthy with an injected fetch, clock and sleep: polling, failure, timeout."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pytest

from kubectl_gitops.core.errors import HealthCheckFailed
from kubectl_gitops.core.health import HealthStatus
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of
from kubectl_gitops.engine.health import wait_healthy

JSON = dict[str, Any]


def deployment(name: str, *, ready: int, want: int = 2, generation: int = 2, observed: int = 2) -> JSON:
    available = ready >= want
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "prod", "generation": generation, "uid": f"uid-{name}"},
        "spec": {"replicas": want, "progressDeadlineSeconds": 600,
                 "selector": {"matchLabels": {"app": name}}},
        "status": {
            "observedGeneration": observed, "replicas": want, "updatedReplicas": want,
            "readyReplicas": ready, "availableReplicas": ready,
            "conditions": [
                {"type": "Available", "status": "True" if available else "False",
                 "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable"},
                {"type": "Progressing", "status": "True",
                 "reason": "NewReplicaSetAvailable" if available else "ReplicaSetUpdated",
                 "message": f'ReplicaSet "{name}-7d9f8c6b5" is progressing.'},
            ],
        },
    }


def stuck_deployment(name: str) -> JSON:
    obj = deployment(name, ready=0)
    obj["status"]["conditions"][1] = {
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": f'ReplicaSet "{name}-7d9f8c6b5" has timed out progressing.'}
    return obj


CONFIGMAP: JSON = {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "settings", "namespace": "prod"}, "data": {"LOG_LEVEL": "info"}}


class Clock:
    """A fake monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Cluster:
    """fetch(): returns the objects of poll N from a script (the last one repeats)."""

    def __init__(self, *polls: list[JSON]) -> None:
        self.polls = list(polls)
        self.calls: list[list[ObjectRef]] = []

    def __call__(self, refs: Iterable[ObjectRef]) -> dict[IdentityKey, JSON]:
        asked = list(refs)
        self.calls.append(asked)
        objs = self.polls[min(len(self.calls), len(self.polls)) - 1]
        return {ref_of(o).key: copy.deepcopy(o) for o in objs}


WEB = ref_of(deployment("web", ready=0))
API = ref_of(deployment("api", ready=0))
CM = ref_of(CONFIGMAP)


def test_already_healthy_returns_after_one_poll_without_sleeping() -> None:
    clock = Clock()
    fetch = Cluster([deployment("web", ready=2), CONFIGMAP])
    verdicts = wait_healthy([WEB, CM], fetch, 60, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 1
    assert clock.sleeps == []
    assert verdicts[WEB].status is HealthStatus.CURRENT
    assert verdicts[CM].status is HealthStatus.CURRENT


def test_becomes_current_after_n_polls_and_only_asks_for_pending_objects() -> None:
    clock = Clock()
    fetch = Cluster(
        [deployment("web", ready=0), deployment("api", ready=0), CONFIGMAP],
        [deployment("web", ready=1), deployment("api", ready=2), CONFIGMAP],
        [deployment("web", ready=2), deployment("api", ready=2), CONFIGMAP],
    )
    verdicts = wait_healthy([WEB, API, CM], fetch, 60, interval=2.0, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 3
    assert fetch.calls[0] == [WEB, API, CM]
    assert fetch.calls[1] == [WEB, API]  # the ConfigMap was Current at once
    assert fetch.calls[2] == [WEB]
    assert clock.sleeps == [2.0, 2.0]
    assert {r: v.status for r, v in verdicts.items()} == dict.fromkeys([WEB, API, CM], HealthStatus.CURRENT)


def test_old_generation_is_not_yet_healthy() -> None:
    clock = Clock()
    fetch = Cluster([deployment("web", ready=2, generation=3, observed=2)], [deployment("web", ready=2)])
    verdicts = wait_healthy([WEB], fetch, 60, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 2
    assert verdicts[WEB].status is HealthStatus.CURRENT


def test_failed_stops_at_once_naming_the_object() -> None:
    clock = Clock()
    fetch = Cluster([deployment("api", ready=0), stuck_deployment("web")])
    with pytest.raises(HealthCheckFailed) as err:
        wait_healthy([API, WEB], fetch, 600, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 1
    assert clock.sleeps == []
    message = str(err.value)
    assert message.startswith("Deployment/prod/web failed: ")
    assert "ProgressDeadlineExceeded" in message
    assert "timed out progressing" in message


def test_failure_seen_on_a_later_poll_also_stops() -> None:
    clock = Clock()
    fetch = Cluster([deployment("web", ready=0)], [stuck_deployment("web")], [deployment("web", ready=2)])
    with pytest.raises(HealthCheckFailed, match=r"^Deployment/prod/web failed"):
        wait_healthy([WEB], fetch, 600, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 2


def test_timeout_lists_pending_objects_with_their_status() -> None:
    clock = Clock()
    fetch = Cluster([deployment("web", ready=1), CONFIGMAP])
    with pytest.raises(HealthCheckFailed) as err:
        wait_healthy([WEB, CM], fetch, 10, interval=3.0, clock=clock, sleep=clock.sleep)
    message = str(err.value)
    assert message.startswith("timeout after 10s waiting for 1 object(s): ")
    assert "Deployment/prod/web: InProgress (available: 1/2)" in message
    assert "ConfigMap" not in message
    assert clock.now >= 1010.0
    assert sum(clock.sleeps) == pytest.approx(10.0)  # never sleeps past the deadline
    assert clock.sleeps[-1] == pytest.approx(1.0)
    assert len(fetch.calls) == 5  # t=0, 3, 6, 9, 10


def test_missing_object_counts_as_in_progress_until_it_appears() -> None:
    clock = Clock()
    fetch = Cluster([], [CONFIGMAP])
    verdicts = wait_healthy([CM], fetch, 30, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 2
    assert verdicts[CM].status is HealthStatus.CURRENT


def test_missing_object_at_timeout_is_reported_as_not_found() -> None:
    clock = Clock()
    fetch = Cluster([])
    with pytest.raises(HealthCheckFailed) as err:
        wait_healthy([CM], fetch, 5, clock=clock, sleep=clock.sleep)
    assert "ConfigMap/prod/settings: InProgress (not found yet)" in str(err.value)


def test_timeout_message_shows_three_and_counts_the_rest() -> None:
    names = ["a", "b", "c", "d", "e"]
    refs = [ref_of(deployment(n, ready=0)) for n in names]
    clock = Clock()
    fetch = Cluster([deployment(n, ready=0) for n in names])
    with pytest.raises(HealthCheckFailed) as err:
        wait_healthy(refs, fetch, 2, clock=clock, sleep=clock.sleep)
    message = str(err.value)
    assert "waiting for 5 object(s)" in message
    assert "Deployment/prod/a" in message
    assert "Deployment/prod/c" in message
    assert "Deployment/prod/d" not in message
    assert message.endswith(" and 2 more")


def test_zero_timeout_polls_once() -> None:
    clock = Clock()
    fetch = Cluster([deployment("web", ready=0)])
    with pytest.raises(HealthCheckFailed, match="timeout after 0s"):
        wait_healthy([WEB], fetch, 0, clock=clock, sleep=clock.sleep)
    assert len(fetch.calls) == 1
    assert clock.sleeps == []


def test_nothing_to_wait_for() -> None:
    clock = Clock()
    fetch = Cluster([])
    assert wait_healthy([], fetch, 60, clock=clock, sleep=clock.sleep) == {}
    assert fetch.calls == []
