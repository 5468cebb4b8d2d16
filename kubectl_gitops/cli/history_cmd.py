"""`kubectl gitops history NAME`: the Sync's recent runs, newest first, from `status.history`.

Each run says which revision it applied (or tried), when, for how long, with what result, what it
changed and who ran it; a run that applied a rollback pin is marked. The engine keeps the last 10.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option

HEADERS = ["REVISION", "STARTED", "DURATION", "RESULT", "CHANGES", "BY"]


def rows(history: list[Any]) -> list[list[str]]:
    """One table row per run (RunRecords, newest first); a run that applied a pin is marked."""
    from kubectl_gitops.core.history import changes, short
    from kubectl_gitops.core.spec import format_duration

    return [[(short(run.revision) or "-") + (" (pinned)" if run.pinned else ""), run.started or "-",
             format_duration(run.duration), run.result, changes(run.counts), run.by or "-"]
            for run in history]


@click.command()
@click.argument("name")
@output_option("json", "yaml")
@kube_options
@click.pass_context
def history(ctx: click.Context, name: str, output: str | None, kubeconfig_: str | None, context_: str | None,
            namespace_: str | None) -> None:
    """Show the recent runs of the Sync NAME: revision, time, duration, result, changes, who ran it."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.cli.render_table import echo_table
    from kubectl_gitops.core.history import pinned, records
    from kubectl_gitops.engine.history import load_sync

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    sync = load_sync(kube, namespace, name)
    runs = records(sync)
    status = sync.get("status") or {}
    data = {"sync": f"{namespace}/{name}", "pinned": pinned(sync) or None,
            "lastAppliedRevision": status.get("lastAppliedRevision"),
            "history": [run.to_dict() for run in runs]}
    if emit(data, output):
        return
    echo_table(HEADERS, rows(runs), f"No runs recorded for Sync {namespace}/{name}.")
    if pinned(sync):
        click.echo(f"Sync {namespace}/{name} is pinned to {pinned(sync)} (`kubectl gitops rollback {name} "
                   "--cancel` tracks its ref again)", err=True)
