"""The controller's Prometheus metrics, in a registry of its own (served on --metrics-addr).

Names follow Prometheus conventions with a `gitops_` prefix; API requests are counted where they
are sent (adapters/kube.py calls `observe_requests` observers), so every request of the engine,
the watches and the election is in `gitops_api_requests_total`.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconcile_duration = Histogram(
            "gitops_reconcile_duration_seconds", "Duration of Sync reconciles by result (the reason recorded).",
            ["result"], buckets=BUCKETS, registry=r)
        self.ready = Gauge("gitops_sync_ready", "1 when the Sync is Ready, 0 otherwise.",
                           ["namespace", "name"], registry=r)
        self.queue_depth = Gauge("gitops_queue_depth", "Keys waiting in the work queue (due or not).", registry=r)
        self.fetch_duration = Histogram(
            "gitops_git_fetch_duration_seconds", "Duration of Git fetches by outcome.", ["result"],
            buckets=BUCKETS, registry=r)
        self.api_requests = Counter("gitops_api_requests_total", "Requests sent to the API server by verb.",
                                    ["verb", "code"], registry=r)
        self.failures = Gauge("gitops_sync_consecutive_failures", "Failed reconciles in a row (backoff grows).",
                              ["namespace", "name"], registry=r)
        self.leader = Gauge("gitops_leader", "1 while this replica holds the lease (or runs without election).",
                            registry=r)

    def observe_request(self, verb: str, status: int) -> None:
        self.api_requests.labels(verb, str(status)).inc()

    def observe_fetch(self, _source: str, seconds: float, ok: bool) -> None:
        self.fetch_duration.labels("success" if ok else "failure").observe(seconds)

    def forget_sync(self, namespace: str, name: str) -> None:
        for gauge in (self.ready, self.failures):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, name)
