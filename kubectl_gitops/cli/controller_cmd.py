"""`kubectl gitops controller`: run the engine continuously, in a cluster or against one (docs/controller.md).

Parses flags, connects (the in-cluster ServiceAccount in a pod, else the kubeconfig), starts the
metrics and probe servers and the controller, and turns SIGTERM/SIGINT into a graceful stop.
"""

from __future__ import annotations

import signal
from typing import Any

import click

from kubectl_gitops.cli.common import merged
from kubectl_gitops.core.errors import UsageError


def parse_addr(text: str, flag: str) -> tuple[str, int] | None:
    """`host:port`, `:port` (all interfaces) or `0`/`` (off)."""
    if text in ("", "0"):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"{flag}: {text!r} is not host:port (e.g. :8080 or 127.0.0.1:8080; 0 turns it off)")
    return host or "0.0.0.0", int(port)


@click.command()
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Syncs reconciled at the same time (one run per Sync at a time, always).")
@click.option("--leader-elect", is_flag=True, help="Take work only while holding the coordination.k8s.io Lease.")
@click.option("--leader-election-namespace", default="kubectl-gitops-system", show_default=True,
              help="Namespace of the Lease.")
@click.option("--lease-duration", default=15.0, show_default=True, help="Seconds a Lease is held without renewal.")
@click.option("--renew-deadline", default=10.0, show_default=True,
              help="Seconds the leader tries to renew before it stops.")
@click.option("--retry-period", default=2.0, show_default=True, help="Seconds between election attempts.")
@click.option("--shard", default="", help="Reconcile only Syncs labelled kubectl-gitops.dev/shard=KEY "
                                          "(default: only those without the label).")
@click.option("--metrics-addr", default=":8080", show_default=True, help="Serve /metrics here (0: off).")
@click.option("--health-addr", default=":8081", show_default=True, help="Serve /healthz and /readyz here (0: off).")
@click.option("--log-format", type=click.Choice(["json", "text"]), default="json", show_default=True)
@click.option("--grace-period", default=25.0, show_default=True,
              help="Seconds in-flight runs get to finish after SIGTERM.")
@click.option("--allow-file-urls", is_flag=True,
              help="Let GitSources use file:// URLs (local development only: they read this machine's disk).")
@click.option("--audit-interval", default="0", show_default=True, metavar="DURATION",
              help="Run `kubectl gitops audit -A` every DURATION on the leader and expose gitops_audit_* metrics "
                   "(e.g. 10m; 0: off).")
@click.option("--audit-report", is_flag=True, help="With --audit-interval: also write the AuditReports each run.")
@click.option("--kubeconfig", "kubeconfig_", help="Path to the kubeconfig file (default: in-cluster account).")
@click.pass_context
def controller(ctx: click.Context, concurrency: int, leader_elect: bool, leader_election_namespace: str,
               lease_duration: float, renew_deadline: float, retry_period: float, shard: str, metrics_addr: str,
               health_addr: str, log_format: str, grace_period: float, allow_file_urls: bool,
               audit_interval: str, audit_report: bool, kubeconfig_: str | None) -> None:
    """Reconcile Syncs continuously: on change, on interval, on request (`sync --remote`)."""
    import os
    from dataclasses import replace

    from prometheus_client import start_http_server

    from kubectl_gitops.adapters.git import SourcePolicy
    from kubectl_gitops.adapters.kube import connect_auto, observe_requests
    from kubectl_gitops.adapters.paths import cache_root
    from kubectl_gitops.controller import logs
    from kubectl_gitops.controller.audit_loop import parse_interval
    from kubectl_gitops.controller.fetchcache import FetchCache
    from kubectl_gitops.controller.manager import Controller, Options, serve_health
    from kubectl_gitops.controller.metrics import Metrics
    from kubectl_gitops.controller.runner import EngineRunner

    try:
        audit_every = parse_interval(audit_interval)
    except ValueError as err:
        raise UsageError(f"--audit-interval: {err}") from None
    if audit_report and not audit_every:
        raise UsageError("--audit-report needs --audit-interval (a duration, e.g. 10m)")
    metrics_at = parse_addr(metrics_addr, "--metrics-addr")
    health_at = parse_addr(health_addr, "--health-addr")
    logs.setup(log_format)
    opts = merged(ctx, kubeconfig_, None, None)
    kube = connect_auto(opts.kubeconfig, pool_size=max(16, concurrency * 8))
    metrics = Metrics()
    observe_requests(metrics.observe_request)
    policy = replace(SourcePolicy.from_env(os.environ, (cache_root(),)), allow_file_urls=allow_file_urls)
    runner = EngineRunner(kube, FetchCache(on_fetch=metrics.observe_fetch), policy)
    options = Options(concurrency=concurrency, leader_elect=leader_elect, shard=shard,
                      lease_namespace=leader_election_namespace, lease_duration=lease_duration,
                      renew_deadline=renew_deadline, retry_period=retry_period, grace=grace_period)
    ctl = Controller(kube, runner, options, metrics)
    try:
        if metrics_at is not None:
            start_http_server(metrics_at[1], metrics_at[0], registry=metrics.registry)
        if health_at is not None:
            serve_health(ctl, *health_at)
    except OSError as err:
        raise UsageError(f"cannot serve metrics on {metrics_addr} / probes on {health_addr}: "
                         f"{err.strerror or err}") from None

    auditing = _audit_loop(kube, ctl, metrics.registry, audit_every, audit_report) if audit_every else None

    def on_signal(_signum: int, _frame: Any) -> None:
        ctl.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ctl.start()
    if auditing is not None:
        auditing.start()
    code = ctl.wait()
    if auditing is not None:
        auditing.stop()
    ctx.exit(code)


def _audit_loop(kube: Any, ctl: Any, registry: Any, every: float, report: bool) -> Any:
    """The periodic audit (controller/audit_loop.py): `run_audit` over everything, on the leader only."""
    from kubectl_gitops.controller.audit_loop import AuditLoop, AuditMetrics
    from kubectl_gitops.core.audit.context import Scope
    from kubectl_gitops.engine.audit import run_audit, write_reports

    scope = Scope()
    return AuditLoop(lambda: run_audit(kube, scope), every, lambda: bool(ctl.leading), AuditMetrics(registry),
                     report=(lambda result: write_reports(kube, result, scope)) if report else None)
