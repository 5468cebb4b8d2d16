"""`kubectl gitops rollback NAME [--to REVISION] | --cancel`: pin a Sync to an earlier applied revision.

The pin is `spec.revision` (core/history.py); the source step then checks that commit out instead
of the ref's tip, after the usual fetch and verification, and only if the commit is in the ref's
history. The target must be a revision that a run recorded in `status.history` applied
successfully; without --to it is the newest such revision other than the one applied now.
`--cancel` (or `kubectl gitops resume sync NAME`) clears the pin, so the Sync tracks its ref again.
Both sync right away unless --no-sync, printing what `kubectl gitops sync` prints.
"""

from __future__ import annotations

import click

from kubectl_gitops.cli.common import kube_options, merged


@click.command()
@click.argument("name")
@click.option("--to", "to", default="", metavar="REVISION",
              help="The revision to pin: main@sha1:<sha>, a SHA or a SHA prefix (default: the previous applied one).")
@click.option("--cancel", is_flag=True, help="Clear the pin: track the GitSource's ref again.")
@click.option("--no-sync", is_flag=True, help="Only write the pin; don't sync now.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None,
              help="Output format of the sync that follows.")
@kube_options
@click.pass_context
def rollback(ctx: click.Context, name: str, to: str, cancel: bool, no_sync: bool, output: str | None,
             kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Pin the Sync NAME to an earlier applied revision from its history and sync it."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.history import pinned, records, rollback_target, short
    from kubectl_gitops.engine.history import load_sync, set_pin

    if cancel and to:
        raise UsageError("--cancel and --to exclude each other")
    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    sync = load_sync(kube, namespace, name)
    where = f"Sync {namespace}/{name}"
    if cancel:
        was = pinned(sync)
        set_pin(kube, namespace, name, None)
        click.echo(f"{where} unpinned (was {short(was)}): it tracks its ref again" if was
                   else f"{where} was not pinned: it tracks its ref", err=True)
    else:
        current = str((sync.get("status") or {}).get("lastAppliedRevision") or "")
        target = rollback_target(records(sync), current, to, where)
        set_pin(kube, namespace, name, target.revision)
        click.echo(f"{where} pinned to {short(target.revision)} (applied {target.run.started}; "
                   f"was {short(current) or 'never applied'})", err=True)
    if no_sync:
        return
    from kubectl_gitops.cli.sync_cmd import sync as sync_command

    ctx.invoke(sync_command, name=name, kubeconfig_=kubeconfig_, context_=context_, namespace_=namespace,
               output=output, concurrency=16, reset_inventory=False)
