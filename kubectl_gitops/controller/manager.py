"""The controller: watches in, a work queue through, the engine out.

Two informers (Syncs of this shard, GitSources) feed a `WorkQueue` of keys `Sync:ns/name` and
`GitSource:ns/name`; `--concurrency` workers take keys one at a time (the queue never hands out a
key twice at once, so one Sync never has two runs). A Sync is run:
* on a spec change, an unhandled `requestedAt` annotation, deletion, or a missing finalizer (now);
* when a dependency turns Ready (now), when its GitSource's fetch finds a revision the Sync has
  not attempted (now), and otherwise every `spec.interval` shortened by up to 10% jitter;
* after a failure, again after 1, 2, 4, ... seconds, at most `spec.retryInterval`.
A GitSource referenced by this controller's Syncs is fetched every GitSource `spec.interval` (with
jitter); the Syncs' own runs reuse that fetch while it is fresh (controller/fetchcache.py).

With `--leader-elect` the informers run on every replica (a standby is warm) and only the leader's
workers take keys. SIGTERM: no new keys; runs in flight get `grace` seconds to finish, then are
abandoned (the engine records its inventory before each write, so a run cut short loses nothing);
the Lease is released; exit.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube, object_path
from kubectl_gitops.constants import (
    ANNOTATION_ORPHAN,
    API_VERSION,
    FINALIZER,
    LABEL_SHARD,
    PLURAL_SOURCE,
    PLURAL_SYNC,
)
from kubectl_gitops.controller import triggers
from kubectl_gitops.controller.informer import Informer, from_kube, key_of
from kubectl_gitops.controller.leader import Elector, LeaseStore
from kubectl_gitops.controller.logs import current_sync
from kubectl_gitops.controller.metrics import Metrics
from kubectl_gitops.controller.queue import WorkQueue, backoff_delay, jittered
from kubectl_gitops.controller.runner import EngineRunner
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.spec import InvalidSpec, parse_duration, parse_source, parse_sync
from kubectl_gitops.engine import record

JSON = dict[str, Any]
log = logging.getLogger("kubectl_gitops.controller")
SYNC, SOURCE = "Sync:", "GitSource:"
DEFAULT_INTERVAL = 600.0


@dataclass(frozen=True)
class Options:
    concurrency: int = 4
    leader_elect: bool = False
    shard: str = ""
    lease_namespace: str = "kubectl-gitops-system"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    grace: float = 25.0
    backoff_base: float = 1.0
    identity: str = ""

    @property
    def selector(self) -> str:
        """The Syncs of this shard: labelled with its key, or (no shard) those without the label."""
        return f"{LABEL_SHARD}={self.shard}" if self.shard else f"!{LABEL_SHARD}"

    @property
    def lease_name(self) -> str:
        return "kubectl-gitops-controller" + (f"-{self.shard}" if self.shard else "")


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


class Controller:
    def __init__(self, kube: Kube, runner: EngineRunner, options: Options, metrics: Metrics | None = None,
                 *, rand: Callable[[], float] = random.random) -> None:
        self.kube = kube
        self.runner = runner
        self.options = options
        self.metrics = metrics or Metrics()
        self.rand = rand
        self.queue = WorkQueue()
        self.metrics.queue_depth.set_function(self.queue.depth)
        self.syncs: Informer = from_kube(kube, "Syncs", object_path(API_VERSION, PLURAL_SYNC, None), options.selector)
        self.sources: Informer = from_kube(kube, "GitSources", object_path(API_VERSION, PLURAL_SOURCE, None))
        self.syncs.on_event(self._on_sync)
        self.sources.on_event(self._on_source)
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._workers: list[threading.Thread] = []
        self.elector: Elector | None = None
        self.exit_code = 0
        self.runs = 0
        if options.leader_elect:
            store = LeaseStore(kube, options.lease_namespace, options.lease_name)
            self.elector = Elector(store, options.identity or default_identity(),
                                   lease_duration=options.lease_duration, renew_deadline=options.renew_deadline,
                                   retry_period=options.retry_period, on_lost=self._lost_lease,
                                   on_start=lambda: self.metrics.leader.set(1))

    # ------------------------------------------------------------ life cycle

    @property
    def leading(self) -> bool:
        return self.elector is None or self.elector.leading.is_set()

    @property
    def ready(self) -> bool:
        return self.syncs.synced and self.sources.synced and not self._stopping.is_set()

    def start(self) -> Controller:
        self.sources.start()
        self.syncs.start()
        if self.elector is not None:
            self.elector.start()
        else:
            self.metrics.leader.set(1)
        for i in range(max(1, self.options.concurrency)):
            thread = threading.Thread(target=self._work, name=f"worker-{i}", daemon=True)
            thread.start()
            self._workers.append(thread)
        log.info("controller started: %d workers, shard %s, leader election %s", len(self._workers),
                 self.options.selector, "on" if self.elector else "off", extra={"reason": "Started"})
        return self

    def stop(self) -> None:
        """Take no new work, give in-flight runs `grace` seconds, release the Lease."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self.queue.shutdown()
        busy = self.queue.processing()
        log.info("stopping: %d run(s) in flight, %.0fs grace", len(busy), self.options.grace,
                 extra={"reason": "Stopping"})
        deadline = time.monotonic() + self.options.grace
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        left = self.queue.processing()
        if left:
            log.warning("abandoned %d run(s) after the grace period: %s (their recorded inventory covers "
                        "every object they wrote)", len(left), ", ".join(sorted(left)), extra={"reason": "Abandoned"})
        if self.elector is not None:
            self.elector.stop(release=True)
            self.metrics.leader.set(0)
        self.syncs.stop()
        self.sources.stop()
        self.runner.shared.close()
        log.info("stopped", extra={"reason": "Stopped"})
        self._stopped.set()

    def wait(self) -> int:
        """Block until `stop` has finished; the exit code (1 after losing the Lease)."""
        while not self._stopped.wait(0.5):
            pass
        return self.exit_code

    def _lost_lease(self) -> None:
        self.metrics.leader.set(0)
        self.exit_code = 1
        threading.Thread(target=self.stop, name="stop", daemon=True).start()

    # ------------------------------------------------------------ events -> queue

    def _on_sync(self, kind: str, obj: JSON, old: JSON | None) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.queue.forget(SYNC + key)
            ns, name = key.split("/", 1)
            self.metrics.forget_sync(ns, name)
            self.failures.pop(SYNC + key, None)
            return
        if triggers.sync_needs_run(obj, old):
            self.queue.add(SYNC + key)
        elif old is None:  # first sight (start-up): spread the runs over one interval
            self.queue.add(SYNC + key, _interval(obj) * self.rand())
        if triggers.became_ready(obj, old):
            for other in self.syncs.items():
                if key in triggers.depends_on(other):
                    self.queue.add(SYNC + key_of(other))
        source = SOURCE + triggers.source_key(obj)
        if self.queue.due_in(source) is None and source[len(SOURCE):] in self._source_keys():
            self.queue.add(source, self._source_interval(triggers.source_key(obj)))

    def _on_source(self, kind: str, obj: JSON, old: JSON | None) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.queue.forget(SOURCE + key)
            ns, name = key.split("/", 1)
            self.runner.shared.forget(ns, name)
            return
        if (old is None or triggers.generation(obj) != triggers.generation(old)) and key in self._source_keys():
            self.queue.add(SOURCE + key)

    def _source_keys(self) -> set[str]:
        return {triggers.source_key(s) for s in self.syncs.items()}

    def _source_interval(self, key: str) -> float:
        obj = self.sources.get(key)
        try:
            return jittered(parse_source(obj).interval, rand=self.rand) if obj else DEFAULT_INTERVAL
        except InvalidSpec:
            return DEFAULT_INTERVAL

    # ------------------------------------------------------------ workers

    def _work(self) -> None:
        while not self._stopping.is_set():
            if not self.leading:
                self._stopping.wait(0.2)
                continue
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                if not self.leading:
                    self.queue.add(key)
                    continue
                self.process(key)
            except Exception:  # a bug in one key must not kill the worker
                log.exception("processing %s failed", key, extra={"reason": "ControllerError"})
                self._failed(key, DEFAULT_INTERVAL)
            finally:
                self.queue.done(key)

    def process(self, key: str) -> None:
        if key.startswith(SYNC):
            self._process_sync(key[len(SYNC):])
        elif key.startswith(SOURCE):
            self._process_source(key[len(SOURCE):])

    def _failed(self, qkey: str, cap: float) -> float:
        with self._lock:
            n = self.failures[qkey] = self.failures.get(qkey, 0) + 1
        delay = backoff_delay(n, cap, self.options.backoff_base)
        self.queue.add(qkey, delay)
        return delay

    def _succeeded(self, qkey: str, interval: float) -> None:
        with self._lock:
            self.failures.pop(qkey, None)
        self.queue.add(qkey, jittered(interval, rand=self.rand))

    # ------------------------------------------------------------ a Sync

    def _process_sync(self, key: str) -> None:
        obj = self.syncs.get(key)
        if obj is None:
            return
        ns, name = key.split("/", 1)
        token = current_sync.set(key)
        try:
            if triggers.deleting(obj):
                self._finalize(obj)
                return
            if not triggers.has_finalizer(obj) and not self._add_finalizer(obj):
                self.queue.add(SYNC + key, 1.0)
                return
            self._run(obj, ns, name)
        finally:
            current_sync.reset(token)

    def _run(self, obj: JSON, ns: str, name: str) -> None:
        qkey = SYNC + f"{ns}/{name}"
        interval, retry = _intervals(obj)
        requested = triggers.requested_at(obj) if triggers.request_pending(obj) else ""
        if requested:  # "sync now" means from Git as it is now, not from the last fetch
            self.runner.shared.forget(*triggers.source_key(obj).split("/", 1))
        started = time.monotonic()
        try:
            report = self.runner.reconcile(ns, name)
        except GitOpsError as err:  # the status could not even be read or written
            delay = self._failed(qkey, retry)
            self.metrics.reconcile_duration.labels("StatusNotRecorded").observe(time.monotonic() - started)
            log.error("reconcile failed: %s (retry in %.0fs)", err, extra={"reason": err.reason})
            return
        self.runs += 1
        self.metrics.reconcile_duration.labels(report.reason).observe(report.duration)
        if report.reason != "Suspended":
            self.metrics.ready.labels(ns, name).set(1 if report.ready else 0)
        if requested:
            self._mark_handled(ns, name, requested)
        extra = {"revision": report.revision, "reason": report.reason, "duration": round(report.duration, 3),
                 "counts": {k: v for k, v in report.counts.items() if v}}
        if report.reason == "Suspended":
            log.info("suspended: nothing done", extra=extra)
            return  # a resume changes the spec (generation): that event queues the next run
        if report.ready:
            self._succeeded(qkey, interval)
            self.metrics.failures.labels(ns, name).set(0)
            log.info("reconciled", extra=extra)
        else:
            delay = self._failed(qkey, retry)
            self.metrics.failures.labels(ns, name).set(self.failures.get(qkey, 0))
            log.warning("reconcile failed: %s (retry in %.0fs)", report.message[:500], delay, extra=extra)

    def _mark_handled(self, ns: str, name: str, requested: str) -> None:
        try:
            self.kube.merge_patch(record.SYNCS, name, ns, {"status": {"lastHandledReconcileAt": requested}},
                                  subresource="status")
        except GitOpsError as err:
            log.warning("could not record the handled request %s: %s", requested, err,
                        extra={"reason": "StatusNotRecorded"})

    def _add_finalizer(self, obj: JSON) -> bool:
        meta = obj.get("metadata") or {}
        finalizers = [*(meta.get("finalizers") or []), FINALIZER]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
        try:
            self.kube.merge_patch(record.SYNCS, str(meta.get("name")), str(meta.get("namespace")), patch)
            return True
        except ApiError as err:
            if err.status in (404, 409):
                return False
            raise

    def _finalize(self, obj: JSON) -> None:
        """The Sync is being deleted: prune what it owns (unless Orphan), then let it go."""
        if not triggers.has_finalizer(obj):
            return
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        orphan = (str((meta.get("annotations") or {}).get(ANNOTATION_ORPHAN) or "").lower() == "true"
                  or (obj.get("spec") or {}).get("deletionPolicy") == "Orphan")
        if not orphan:
            try:
                results = self.runner.prune_all(obj)
            except GitOpsError as err:
                delay = self._failed(SYNC + f"{ns}/{name}", _intervals(obj)[1])
                log.error("cannot prune the deleted Sync: %s (retry in %.0fs; to let it go without pruning: "
                          "kubectl gitops delete sync %s -n %s --keep)", err, delay, name, ns,
                          extra={"reason": err.reason})
                return
            failed = [r for r in results if r.action == "failed"]
            if failed:
                delay = self._failed(SYNC + f"{ns}/{name}", _intervals(obj)[1])
                log.error("prune of the deleted Sync failed for %d object(s): %s (retry in %.0fs)", len(failed),
                          "; ".join(r.message for r in failed[:3]), delay, extra={"reason": "PruneFailed"})
                return
            log.info("pruned %d object(s) of the deleted Sync", len([r for r in results if r.action == "pruned"]),
                     extra={"reason": "Pruned"})
        remove_finalizer(self.kube, obj)
        log.info("finalizer removed (%s)", "orphaned" if orphan else "pruned", extra={"reason": "Finalized"})

    # ------------------------------------------------------------ a GitSource

    def _process_source(self, key: str) -> None:
        obj = self.sources.get(key)
        if obj is None or key not in self._source_keys():
            return
        try:
            spec = parse_source(obj)
        except InvalidSpec as err:
            log.warning("GitSource %s: %s", key, err, extra={"reason": err.reason})
            return
        if spec.suspend:
            return  # a resume changes the spec: that event queues it
        qkey = SOURCE + key
        try:
            revision = self.runner.fetch(obj)
        except GitOpsError as err:
            delay = self._failed(qkey, spec.interval)
            log.warning("GitSource %s: %s (retry in %.0fs)", key, str(err)[:300], delay,
                        extra={"reason": err.reason})
            return
        self._succeeded(qkey, spec.interval)
        for sync in self.syncs.items():
            if triggers.source_key(sync) == key and triggers.last_attempted(sync) != revision:
                self.queue.add(SYNC + key_of(sync))
                log.info("new revision of GitSource %s", key, extra={"sync": key_of(sync), "revision": revision,
                                                                      "reason": "NewRevision"})


def remove_finalizer(kube: Kube, obj: JSON) -> bool:
    """Drop our finalizer (a JSON patch that tests the list first: no other finalizer is lost)."""
    meta = obj.get("metadata") or {}
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER not in finalizers:
        return False
    index = finalizers.index(FINALIZER)
    path = object_path(API_VERSION, PLURAL_SYNC, str(meta.get("namespace")), str(meta.get("name")))
    ops = [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
           {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
    try:
        kube.request("PATCH", path, body=ops, content_type="application/json-patch+json")
    except ApiError as err:
        if err.status == 404:
            return False
        raise
    return True


def _intervals(obj: JSON) -> tuple[float, float]:
    try:
        spec = parse_sync(obj)
        return spec.interval, spec.retry_interval
    except InvalidSpec:
        raw = (obj.get("spec") or {}).get("retryInterval")
        try:
            return DEFAULT_INTERVAL, parse_duration(raw, DEFAULT_INTERVAL)
        except InvalidSpec:
            return DEFAULT_INTERVAL, DEFAULT_INTERVAL


def _interval(obj: JSON) -> float:
    return _intervals(obj)[0]


# ---------------------------------------------------------------- probes

def serve_health(controller: Controller, host: str, port: int) -> ThreadingHTTPServer:
    """/healthz (the process answers and has not stopped) and /readyz (watches listed)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                ok = not controller._stopping.is_set() or controller.exit_code == 0
            elif self.path == "/readyz":
                ok = controller.ready
            else:
                self.send_error(404)
                return
            body = b"ok\n" if ok else b"not ready\n"
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
