"""The work queue's promises (one run per key at a time, no trigger lost), backoff and jitter."""

from __future__ import annotations

import threading

import pytest

from kubectl_gitops.controller.queue import WorkQueue, backoff_delay, jittered


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def take(q: WorkQueue) -> str | None:
    return q.get(timeout=0)


def test_a_key_added_twice_is_handed_out_once(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a")
    q.add("a")
    assert q.depth() == 1
    assert take(q) == "a"
    assert take(q) is None


def test_earlier_due_time_wins(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a", 60)
    q.add("a", 5)
    q.add("a", 30)
    assert q.due_in("a") == 5
    clock.now += 5
    assert take(q) == "a"


def test_not_handed_out_before_due(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a", 10)
    assert take(q) is None
    clock.now += 9.9
    assert take(q) is None
    clock.now += 0.1
    assert take(q) == "a"


def test_a_key_being_processed_is_never_handed_out_again_until_done(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a")
    assert take(q) == "a"
    q.add("a")  # a trigger while the run is in flight
    assert take(q) is None, "two runs of one key at once"
    q.done("a")
    assert take(q) == "a", "the trigger that came during the run was lost"


def test_done_without_new_trigger_does_not_requeue(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a")
    assert take(q) == "a"
    q.done("a")
    assert take(q) is None and q.depth() == 0


def test_order_is_by_due_time(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("late", 3)
    q.add("soon", 1)
    q.add("now")
    clock.now += 3
    assert [take(q), take(q), take(q)] == ["now", "soon", "late"]


def test_forget_drops_a_queued_key(clock: Clock) -> None:
    q = WorkQueue(clock)
    q.add("a")
    q.forget("a")
    assert take(q) is None


def test_shutdown_wakes_blocked_workers() -> None:
    q = WorkQueue()
    got: list[str | None] = []
    worker = threading.Thread(target=lambda: got.append(q.get(timeout=30)))
    worker.start()
    q.shutdown()
    worker.join(5)
    assert not worker.is_alive() and got == [None]
    q.add("a")
    assert q.depth() == 0, "a closed queue takes no work"


def test_concurrent_workers_never_share_a_key() -> None:
    q = WorkQueue()
    running: set[str] = set()
    overlaps: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(200):
            key = q.get(timeout=0.5)
            if key is None:
                return
            with lock:
                if key in running:
                    overlaps.append(key)
                running.add(key)
            q.add(key)  # every run re-triggers itself
            with lock:
                running.discard(key)
            q.done(key)

    for k in "abc":
        q.add(k)
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    q.shutdown()
    assert overlaps == []


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, 30) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(1000, 600) == 600
    assert backoff_delay(3, 60, base=5) == 20


def test_jitter_shortens_by_at_most_the_fraction() -> None:
    assert jittered(100, rand=lambda: 0.0) == 100
    assert jittered(100, rand=lambda: 1.0) == pytest.approx(90)
    values = {round(jittered(60), 6) for _ in range(50)}
    assert len(values) > 1, "no jitter"
    assert all(54 <= v <= 60 for v in values)
