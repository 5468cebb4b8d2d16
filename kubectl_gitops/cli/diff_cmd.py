"""`kubectl gitops diff NAME [--path DIR]`: what a sync would change, before it does.

A unified diff per object of the fields Git owns (live against a server-side dry run as the
applier), objects that would be created and pruned; Secret values masked. Exit 0 = no
differences, 1 = differences, 2 = error (as `kubectl diff`). Colour on a terminal unless
NO_COLOR is set; `--color always|never` decides otherwise.
"""

from __future__ import annotations

import os
import sys

import click

from kubectl_gitops.cli.build_cmd import load_sync_file
from kubectl_gitops.cli.common import emit, kube_options, merged, output_option
from kubectl_gitops.cli.inspect_common import colour_choice, errors_exit

VERBS = {"create": "created", "configure": "configured", "prune": "pruned"}


@click.command()
@click.argument("name")
@click.option("--path", "local", default=None, help="Diff this local directory (a branch's work tree) instead.")
@click.option("--revision", default=None, help="With --path: the revision to stamp (default: the work tree's).")
@click.option("--sync-file", type=click.Path(dir_okay=False), default=None,
              help="Read the Sync from this YAML file instead of the cluster.")
@colour_choice()
@kube_options
@output_option("json", "yaml")
@click.pass_context
def diff(ctx: click.Context, name: str, local: str | None, revision: str | None, sync_file: str | None,
         color: str, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
         output: str | None) -> None:
    """Show what syncing NAME would change: exit 0 none, 1 differences, 2 error."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.textdiff import colour, use_colour
    from kubectl_gitops.engine.inspect import Inspector
    from kubectl_gitops.engine.record import SYNCS

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    with errors_exit():
        kube = connect(opts)
        namespace = namespace_of(opts, kube)
        inspector = Inspector(kube)
        sync = load_sync_file(sync_file, name, namespace) if sync_file else inspector.sync(namespace, name)
        if sync_file and (sync.get("status") or {}) == {}:
            live = kube.get(SYNCS, name, namespace)  # the inventory (what would be pruned) is the cluster's
            sync["status"] = (live or {}).get("status") or {}
        report = inspector.diff(sync, inspector.render(sync, local, revision))
    data = {"sync": report.sync, "revision": report.revision, "differs": report.differs,
            "counts": {**report.counts(), "unchanged": report.unchanged},
            "keptWithoutPrune": [ref.display for ref in report.kept], "suspended": report.suspended,
            "objects": [{"object": d.ref.display, "action": d.action, "diff": d.text} for d in report.objects]}
    if not emit(data, output):
        painted = use_colour(color, sys.stdout.isatty(), os.environ)
        for item in report.objects:
            click.echo(colour(item.text) if painted else item.text, nl=False, color=painted)
        counts = report.counts()
        summary = ", ".join(f"{counts[a]} to be {VERBS[a]}" for a in VERBS if counts[a]) or "no differences"
        click.echo(f"{report.sync} at {report.revision}: {summary} ({report.unchanged} unchanged)", err=True)
        if report.kept:
            names = ", ".join(ref.display for ref in report.kept[:5]) + (" ..." if len(report.kept) > 5 else "")
            click.echo(f"  {len(report.kept)} object(s) left Git but stay in the cluster (the Sync does not "
                       f"prune): {names}", err=True)
        if report.suspended:
            click.echo("  the Sync is suspended: a sync changes nothing until it is resumed", err=True)
    ctx.exit(1 if report.differs else 0)

