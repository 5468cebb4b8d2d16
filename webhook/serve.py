"""Serve the webhook with gunicorn over TLS, reloading the certificate when it changes on disk.

The API server only talks TLS to webhooks and reuses connections, so: gthread workers (threads
handle concurrent reviews, keep-alive connections wait in the poller, not in a thread), a
keep-alive longer than the API server's idle pool timeout is pointless but shorter forces
needless handshakes, hence 75 s.

Certificate rotation (cert-manager, or `kubectl gitops install` re-issuing) rewrites the mounted
Secret files; restarting the pod for that would drop admission for a moment. gunicorn asks its
`ssl_context` hook for a context on every new connection, so `ReloadingSSLContext` keeps one
context per worker and rebuilds it when the files' (mtime, size, inode) change, checked at most
once per `check_interval` seconds. A half-written pair (new cert, old key) fails to load; the old
context keeps serving and the next check tries again.

Caller authentication (`client_ca_file`): /validate and /mutate answer the API server only. The
context asks every client for a certificate signed by the client CA without requiring one
(CERT_OPTIONAL, so probes and scrapers of /healthz, /readyz and /metrics need none), and
`auth.require_client_certificate` refuses the review endpoints per request when the connection
presented none (or not one of the expected names). One port, one context: a second port just for
probes would need a second Service port, probe and NetworkPolicy for no gain. The CA file is
watched and reloaded with the serving pair. The handshake verifies a certificate once per
connection; the API server keeps its connections alive, so reviews pay nothing per request but a
dict lookup.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from kubectl_gitops.constants import BREAK_GLASS_GROUP
from kubectl_gitops.core.admission import AdmissionRequest

from .app import create_app
from .auth import policy_from, require_client_certificate
from .lookup import ParentFetcher, SyncLookup, from_cluster
from .tenants import shared
from .trust import shared as shared_trust

log = logging.getLogger("kubectl_gitops_webhook")

FileSignature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class ServeOptions:
    certfile: str
    keyfile: str
    bind: str = "0.0.0.0:9443"
    workers: int = 1
    threads: int = 8
    keepalive: int = 75
    timeout: int = 30
    graceful_timeout: int = 10
    cert_check_interval: float = 1.0
    loglevel: str = "info"
    accesslog: str | None = None
    client_ca_file: str | None = None
    """PEM CA(s) the API server's client certificate must chain to; None: any caller may send reviews."""
    client_names: tuple[str, ...] = ()
    """If set, the client certificate's CN or a DNS SAN must be one of these."""


class ReloadingSSLContext:
    """A gunicorn `ssl_context(conf, default_factory)` hook that follows certificate rotation."""

    def __init__(self, certfile: str, keyfile: str, *, check_interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, cafile: str | None = None) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self.cafile = cafile
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._context: ssl.SSLContext | None = None
        self._signature: FileSignature | None = None
        self._checked = 0.0
        self.reloads = 0

    def __call__(self, conf: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        now = self._clock()
        with self._lock:
            if self._context is None or now - self._checked >= self.check_interval:
                self._checked = now
                self._maybe_reload(default_factory)
            assert self._context is not None
            return self._context

    def _maybe_reload(self, default_factory: Callable[[], ssl.SSLContext]) -> None:
        try:
            signature = self._stat()
        except OSError as err:  # mid-swap of a Secret volume's symlinks
            if self._context is None:
                raise
            log.warning("serving certificate unreadable, keeping the loaded one: %s", err)
            return
        if self._context is not None and signature == self._signature:
            return
        try:
            context = default_factory()
            context.minimum_version = ssl.TLSVersion.TLSv1_2
        except (ssl.SSLError, OSError, ValueError) as err:
            if self._context is None:
                raise
            log.warning("new serving certificate does not load yet, keeping the old one: %s", err)
            return
        if self._context is not None:
            self.reloads += 1
            log.info("serving certificate reloaded from %s", self.certfile)
        self._context, self._signature = context, signature

    def _stat(self) -> FileSignature:
        stats = [os.stat(p) for p in (self.certfile, self.keyfile, self.cafile) if p]
        return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


class WebhookServer(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn, configured in code: no config file, no command-line parsing of its own."""

    def __init__(self, app: Flask, options: ServeOptions) -> None:
        self.application = app
        self.options = options
        self.ssl_hook = ReloadingSSLContext(options.certfile, options.keyfile,
                                            check_interval=options.cert_check_interval,
                                            cafile=options.client_ca_file)
        super().__init__()

    def load_config(self) -> None:
        o = self.options
        settings: dict[str, Any] = {
            "bind": [o.bind], "workers": o.workers, "threads": o.threads, "worker_class": "gthread",
            "keepalive": o.keepalive, "timeout": o.timeout, "graceful_timeout": o.graceful_timeout,
            "certfile": o.certfile, "keyfile": o.keyfile, "ssl_context": self.ssl_hook,
            "loglevel": o.loglevel, "accesslog": o.accesslog, "proc_name": "kubectl-gitops-webhook",
            "child_exit": _child_exit,
        }
        if o.client_ca_file:
            settings |= {"ca_certs": o.client_ca_file, "cert_reqs": ssl.CERT_OPTIONAL}
        for key, value in settings.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def _child_exit(_server: Any, worker: Any) -> None:
    """A dead worker's live gauges leave the multiprocess metrics with it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def serve(app: Flask, options: ServeOptions) -> None:
    """Run until signalled (SIGTERM drains gracefully)."""
    secure(app, options)
    WebhookServer(app, options).run()


def secure(app: Flask, options: ServeOptions) -> None:
    """Reviews from the API server only, when a client CA is configured; say so loudly when not."""
    if options.client_ca_file:
        require_client_certificate(app, policy_from(options.client_names))
        log.info("reviews only from clients with a certificate from %s%s", options.client_ca_file,
                 f" named {', '.join(options.client_names)}" if options.client_names else "")
    else:
        log.warning("no client CA configured (--client-ca-file): any caller that reaches this port can "
                    "send reviews and read denial messages (Sync names, sources, paths, revisions)")


def _cluster_callables(ttl: float, kubeconfig: str | None = None) -> tuple[
        Callable[[], SyncLookup], ParentFetcher]:
    """Lazy production lookup and fetcher: the API client is built in the worker, after fork."""
    lock = threading.Lock()
    built: list[tuple[SyncLookup, ParentFetcher]] = []

    def pair() -> tuple[SyncLookup, ParentFetcher]:
        with lock:
            if not built:
                built.append(from_cluster(ttl, kubeconfig))
            return built[0]

    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        return pair()[1](req)

    return (lambda: pair()[0]), fetch


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kubectl-gitops-webhook", description=__doc__.splitlines()[0])
    parser.add_argument("--cert-file", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--bind", default=ServeOptions.bind)
    parser.add_argument("--workers", type=int, default=ServeOptions.workers)
    parser.add_argument("--threads", type=int, default=ServeOptions.threads)
    parser.add_argument("--keepalive", type=int, default=ServeOptions.keepalive)
    parser.add_argument("--cache-ttl", type=float, default=None, help=argparse.SUPPRESS)  # deprecated, no effect
    parser.add_argument("--break-glass-group", default=BREAK_GLASS_GROUP)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--client-ca-file", default=None)
    parser.add_argument("--client-name", action="append", default=[])
    parser.add_argument("--trusted-controller", action="append", default=[])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.cache_ttl is not None:
        from .cli import CACHE_TTL_DEPRECATED

        log.warning("%s", CACHE_TTL_DEPRECATED.removeprefix("warning: "))
    lookup_factory, fetch = _cluster_callables(0.0)
    app = create_app(lookup_factory, fetch, break_glass_group=args.break_glass_group,
                     trusted_controllers=args.trusted_controller, tenancy_factory=shared, trust_factory=shared_trust)
    serve(app, ServeOptions(certfile=args.cert_file, keyfile=args.key_file, bind=args.bind,
                            workers=args.workers, threads=args.threads, keepalive=args.keepalive,
                            loglevel=args.log_level, client_ca_file=args.client_ca_file,
                            client_names=tuple(args.client_name)))


if __name__ == "__main__":
    main()
