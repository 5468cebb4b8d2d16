"""`kubectl gitops delete sync|source|tenant NAME`: a Sync's objects are pruned first, unless --keep.

Careful by default where it matters: on a terminal, `delete sync` says how many objects it will
prune and asks first (`--yes` skips the question; without a terminal it proceeds, as kubectl
delete does). `--dry-run` prints exactly what would be deleted, decided as the prune decides
(objects no longer this Sync's, or opted out by Git, are listed as left alone, with why), and
changes nothing. The data comes from engine.queries; this module asks and prints.

With the controller running, a Sync carries its finalizer: the Sync is then pruned (or, with
--keep/--orphan, marked to orphan) here first, deleted, and the finalizer removed, so deleting
never waits on a controller and never hangs on one that is gone. On a Sync already stuck deleting
(its controller stopped, its inventory unreadable) `delete sync NAME --keep` is the escape: it
drops the finalizer without pruning (docs/controller.md).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from kubectl_gitops.cli.common import kube_options, merged
from kubectl_gitops.cli.render_results import echo_results

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube


def on_terminal() -> bool:
    return sys.stdin.isatty()


def asking(yes: bool) -> bool:
    """Ask first? On a terminal, unless --yes (kubectl delete never asks: scripts keep working)."""
    return not yes and on_terminal()


def confirm(question: str) -> None:
    """Ask; abort on anything but yes."""
    if not click.confirm(question, default=False, err=True):
        raise click.exceptions.Abort()


@click.command()
@click.argument("what", type=click.Choice(["sync", "source", "tenant"]))
@click.argument("name")
@click.option("--keep", "--orphan", "keep", is_flag=True,
              help="Keep the Sync's objects in the cluster (orphan them); also releases a Sync stuck deleting.")
@click.option("--cascade", is_flag=True, help="tenant: also prune and delete its Syncs and its namespaces.")
@click.option("--dry-run", is_flag=True, help="Print what would be deleted (and pruned); change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@kube_options
@click.pass_context
def delete(ctx: click.Context, what: str, name: str, keep: bool, cascade: bool, dry_run: bool, yes: bool,
           kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Delete a Sync (pruning what it applied, unless --keep), a GitSource or a Tenant."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine import queries

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    if what == "tenant":  # refuses while it has Syncs, unless --cascade: cli/tenant_cmd.py
        from kubectl_gitops.cli.tenant_cmd import delete_tenant

        if dry_run:
            raise UsageError("delete tenant has no --dry-run yet: `kubectl gitops get tenant NAME -o wide` "
                             "shows its namespaces and Syncs")
        delete_tenant(opts, name, cascade)
        return
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    if what == "source":
        queries.get_one(kube, queries.KINDS["sources"], namespace, name)
        if dry_run:
            click.echo(f"source {namespace}/{name} would be deleted (dry run)")
            return
        queries.delete_source(kube, namespace, name)
        click.echo(f"source {namespace}/{name} deleted")
        return
    _delete_sync(kube, namespace, name, keep=keep, dry_run=dry_run, yes=yes)


def _delete_sync(kube: Kube, namespace: str, name: str, *, keep: bool, dry_run: bool, yes: bool) -> None:
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.engine import queries

    if dry_run or asking(yes):
        plan = queries.plan_delete_sync(kube, namespace, name, keep=keep)
        if dry_run:
            echo_results(plan.results, unchanged_listed=None)
            what = "and its objects kept" if keep else f"after pruning {len(plan.deletes)} object(s)"
            click.echo(f"sync {namespace}/{name} would be deleted {what} (dry run)")
            return
        prune = "keeping its objects" if keep else f"pruning the {len(plan.deletes)} object(s) it applied"
        confirm(f"Delete Sync {namespace}/{name}, {prune}?")
    if keep:
        _mark_orphan(kube, namespace, name)
    try:
        report = queries.delete_sync(kube, namespace, name, keep=keep)
    except queries.DeleteFailed as err:
        echo_results(err.results, unchanged_listed=None)
        raise
    except GitOpsError:
        if keep and _gone(kube, namespace, name):  # a controller released the marked Sync meanwhile
            click.echo(f"sync {namespace}/{name} deleted (its objects kept; the controller released it)")
            return
        raise
    echo_results(report.results, unchanged_listed=None)
    _release(kube, namespace, name)
    click.echo(f"sync {namespace}/{name} deleted")


def _mark_orphan(kube: Kube, namespace: str, name: str) -> None:
    """Mark the Sync to orphan its objects, first, so a controller acting on a deletion already under
    way orphans too (it never prunes a Sync marked so, and may release it at once)."""
    from kubectl_gitops.constants import ANNOTATION_ORPHAN
    from kubectl_gitops.engine.record import SYNCS

    kube.merge_patch(SYNCS, name, namespace, {"metadata": {"annotations": {ANNOTATION_ORPHAN: "true"}}})


def _gone(kube: Kube, namespace: str, name: str) -> bool:
    from kubectl_gitops.engine.record import SYNCS

    return kube.get(SYNCS, name, namespace) is None


def _release(kube: Kube, namespace: str, name: str) -> None:
    """Drop the controller's finalizer: the objects were pruned (or are kept) above."""
    from kubectl_gitops.controller.manager import remove_finalizer
    from kubectl_gitops.engine.record import SYNCS

    current = kube.get(SYNCS, name, namespace)
    if current is not None:
        remove_finalizer(kube, current)
