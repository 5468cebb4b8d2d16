"""`kubectl gitops suspend|resume sync|source NAME`: stop or restart reconciliation (and the drift guard)."""

from __future__ import annotations

import click

from kubectl_gitops.cli.common import GlobalOptions, kube_options, merged


def _set_suspend(opts: GlobalOptions, what: str, name: str, value: bool) -> None:
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.engine import queries

    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    queries.set_suspend(kube, queries.KINDS[f"{what}s"], namespace, name, value)
    click.echo(f"{what} {namespace}/{name} {'suspended' if value else 'resumed'}")


def _command(value: bool, doc: str) -> click.Command:
    """`suspend` and `resume` differ only in the value they write."""

    @click.command(help=doc)
    @click.argument("what", type=click.Choice(["sync", "source"]))
    @click.argument("name")
    @kube_options
    @click.pass_context
    def command(ctx: click.Context, what: str, name: str, kubeconfig_: str | None, context_: str | None,
                namespace_: str | None) -> None:
        _set_suspend(merged(ctx, kubeconfig_, context_, namespace_), what, name, value)

    return command


suspend = _command(True, "Suspend a Sync (no reconciles; the drift guard lets edits through) or a GitSource.")
resume = _command(False, "Resume a suspended Sync or GitSource.")
