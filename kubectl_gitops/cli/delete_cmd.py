"""`kubectl gitops delete sync|source NAME`: a Sync's objects are pruned first, unless --keep.

With the controller running, a Sync carries its finalizer: the Sync is then pruned (or, with
--keep/--orphan, marked to orphan) here first, deleted, and the finalizer removed, so deleting
never waits on a controller and never hangs on one that is gone. On a Sync already stuck deleting
(its controller stopped, its inventory unreadable) `delete sync NAME --keep` is the escape: it
drops the finalizer without pruning (docs/controller.md).
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_gitops.cli.common import kube_options, merged


@click.command()
@click.argument("what", type=click.Choice(["sync", "source", "tenant"]))
@click.argument("name")
@click.option("--keep", "--orphan", "keep", is_flag=True,
              help="Keep the Sync's objects in the cluster (orphan them); also releases a Sync stuck deleting.")
@click.option("--cascade", is_flag=True, help="tenant: also prune and delete its Syncs and its namespaces.")
@kube_options
@click.pass_context
def delete(ctx: click.Context, what: str, name: str, keep: bool, cascade: bool, kubeconfig_: str | None,
           context_: str | None, namespace_: str | None) -> None:
    """Delete a Sync (pruning what it applied, unless --keep), a GitSource or a Tenant."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import GitOpsError, PruneFailed
    from kubectl_gitops.engine.prune_all import prune_everything
    from kubectl_gitops.engine.record import SOURCES, SYNCS

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    if what == "tenant":  # refuses while it has Syncs, unless --cascade: cli/tenant_cmd.py
        from kubectl_gitops.cli.tenant_cmd import delete_tenant

        delete_tenant(opts, name, cascade)
        return
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    info = SYNCS if what == "sync" else SOURCES
    obj = kube.get(info, name, namespace)
    if obj is None:
        raise GitOpsError(f"{info.kind} {namespace}/{name} not found")
    if what == "sync" and keep:
        from kubectl_gitops.constants import ANNOTATION_ORPHAN

        # First, so a controller acting on the deletion orphans too (it never prunes a Sync marked so).
        kube.merge_patch(info, name, namespace, {"metadata": {"annotations": {ANNOTATION_ORPHAN: "true"}}})
    if what == "sync" and not keep:
        results = prune_everything(kube, obj)
        for r in results:
            click.echo(f"  {r.action:<10} {r.ref.display}{'  ' + r.message if r.message else ''}")
        failed = [r for r in results if r.action == "failed"]
        if failed:
            raise PruneFailed(f"{len(failed)} object(s) could not be deleted; the Sync is kept so its "
                              "inventory still lists them: fix and run the delete again")
    kube.delete(info, name, namespace)
    if what == "sync":
        _release(kube, info, name, namespace)
    click.echo(f"{what} {namespace}/{name} deleted")


def _release(kube: Any, info: Any, name: str, namespace: str) -> None:
    """Drop the controller's finalizer: the objects were pruned (or are kept) above."""
    from kubectl_gitops.controller.manager import remove_finalizer

    current = kube.get(info, name, namespace)
    if current is not None:
        remove_finalizer(kube, current)
