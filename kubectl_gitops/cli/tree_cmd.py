"""`kubectl gitops tree NAME`: a Sync's inventory by namespace and kind, nested Syncs expanded."""

from __future__ import annotations

from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option

JSON = dict[str, Any]


@click.command()
@click.argument("name")
@kube_options
@output_option("json", "yaml")
@click.pass_context
def tree(ctx: click.Context, name: str, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
         output: str | None) -> None:
    """Show what the Sync NAME applied, grouped by namespace and kind, Syncs it applies nested."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.inspection import printable, tree_lines
    from kubectl_gitops.engine.provenance import Provenance

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    prov = Provenance(kube)
    data = prov.tree(prov.sync(namespace_of(opts, kube), name))
    if not emit(data, output):
        root = as_node(data)
        click.echo(printable(root["label"]))
        for line in tree_lines(root):
            click.echo(printable(line))


def as_node(sync: JSON) -> JSON:
    """A Sync's tree (Provenance.tree) as labelled nodes: namespace, then kind, then objects."""
    from kubectl_gitops.core.inspection import grouped
    from kubectl_gitops.core.objects import ObjectRef, split_api_version

    label = str(sync["object"])
    if sync.get("problem"):
        return {"label": f"{label}  ({sync['problem']})", "children": []}
    label += f"  {sync.get('revision') or '(never applied)'}  Ready={sync.get('ready', '')}"
    entries = {}
    for entry in sync.get("inventory") or []:
        group, version = split_api_version(str(entry["apiVersion"]))
        ref = ObjectRef(group, version, str(entry["kind"]), str(entry["namespace"]), str(entry["name"]))
        entries[ref.key] = (ref, entry)
    children = []
    for namespace, kinds in grouped(ref for ref, _ in entries.values()):
        kind_nodes = []
        for kind, refs in kinds:
            leaves = []
            for ref in refs:
                nested = entries[ref.key][1].get("sync")
                leaves.append({"label": ref.name, "children": [as_node(nested)] if nested else []})
            kind_nodes.append({"label": kind, "children": leaves})
        children.append({"label": f"Namespace {namespace}" if namespace else "(cluster-scoped)",
                         "children": kind_nodes})
    return {"label": label, "children": children}
