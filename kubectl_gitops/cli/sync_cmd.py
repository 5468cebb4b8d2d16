"""`kubectl gitops sync NAME`: reconcile a Sync now, from this machine.

A progress bar on a terminal while objects are applied, then one line per object that changed
(created / configured / pruned / failed) and a summary; exit 0 when the Sync is Ready, 1 when
the run failed (the reason and message say which step and why).
"""

from __future__ import annotations

import sys
import threading
import traceback
from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option
from kubectl_gitops.cli.render_results import echo_results, result_data


class _Bar:
    """A progress line on a TTY (silent otherwise); thread-safe because applies run concurrently."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0
        self.done = 0
        self.lock = threading.Lock()

    def begin(self, total: int) -> None:
        self.total = total

    def tick(self, action: str, ref: Any) -> None:
        with self.lock:
            self.done += 1
            if self.enabled and (self.done % 10 == 0 or self.done >= self.total):
                width = 30
                filled = int(width * self.done / max(self.total, 1))
                sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} objects")
                sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\n")


@click.command()
@click.argument("name")
@kube_options
@output_option("json", "yaml")
@click.option("--concurrency", default=16, show_default=True, help="Concurrent writes.")
@click.option("--reset-inventory", is_flag=True,
              help="Rebuild a damaged status.inventory from the objects that carry the Sync's labels and "
                   "were applied by kubectl-gitops (see docs/engine-guarantees.md).")
@click.option("--remote", is_flag=True,
              help="Ask the in-cluster controller to reconcile now and wait for its result (docs/controller.md).")
@click.option("--timeout", "remote_timeout", default="5m", show_default=True,
              help="With --remote: how long to wait for the controller.")
@click.pass_context
def sync(ctx: click.Context, name: str, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
         output: str | None, concurrency: int, reset_inventory: bool, remote: bool, remote_timeout: str) -> None:
    """Reconcile the Sync NAME now: fetch, build, apply, prune, wait, record."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.engine.reconcile import Engine

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    bar = _Bar(sys.stderr.isatty() and output is None)
    engine = Engine(kube, tick=bar.tick, on_total=bar.begin, concurrency=concurrency)
    if output is None:
        click.echo(f"► syncing {namespace}/{name}{' (by the controller)' if remote else ''}", err=True)
    if remote:
        from kubectl_gitops.controller.remote import sync_remote
        from kubectl_gitops.core.spec import parse_duration

        report = sync_remote(kube, namespace, name, parse_duration(remote_timeout, 300.0, "--timeout"))
    else:
        report = engine.reconcile(namespace, name, reset_inventory=reset_inventory)
    bar.end()
    if report.error is not None and opts.debug:
        traceback.print_exception(report.error, file=sys.stderr)
    data = {"sync": report.key, "revision": report.revision, "ready": report.ready, "reason": report.reason,
            "message": report.message, "durationSeconds": round(report.duration, 3), "counts": report.counts,
            "objects": result_data(report.results)}
    if not emit(data, output):
        echo_results(report.results)
        counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
        mark = "✔" if report.ready else "✗"
        click.echo(f"{mark} {report.key} {report.reason} at {report.revision or '(no revision)'} "
                   f"in {report.duration:.1f}s: {counts or 'nothing to do'}")
        if not report.ready:
            click.echo(f"  {report.message}", err=True)
    if not report.ready and report.reason != "Suspended":
        ctx.exit(1)
