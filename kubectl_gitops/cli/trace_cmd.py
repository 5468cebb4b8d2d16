"""`kubectl gitops trace KIND/NAME [-n NS]`: which Sync applied an object, from where, when, as whom.

Follows the chain up: an object applied by a Sync that was itself applied by another Sync shows
both, the nearest first, each with its source URL, path, revision, time, applier, readiness and
whether the object drifts from Git now.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option

JSON = dict[str, Any]


@click.command()
@click.argument("target", metavar="KIND/NAME")
@click.argument("name", required=False)
@kube_options
@output_option("json", "yaml")
@click.pass_context
def trace(ctx: click.Context, target: str, name: str | None, kubeconfig_: str | None, context_: str | None,
          namespace_: str | None, output: str | None) -> None:
    """Show which Sync owns KIND/NAME (or KIND NAME), from which source and revision, and its drift."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine.provenance import Provenance

    kind, _, obj_name = target.partition("/")
    if name and not obj_name:
        obj_name = name
    if not kind or not obj_name or (name and "/" in target):
        raise UsageError(f"{target!r}: expected KIND/NAME (e.g. deployment/web) or KIND NAME")
    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    links = Provenance(kube).trace(kind, obj_name, namespace_of(opts, kube))
    data = {"object": links[0].object, "chain": [_link(link) for link in links]}
    if emit(data, output):
        return
    for depth, link in enumerate(links):
        _echo(link, depth)


def _link(link: Any) -> JSON:
    out: JSON = dataclasses.asdict(link)
    out["drift"] = [{"path": f.path, "value": f.value,
                     "changedBy": [dataclasses.asdict(c) for c in f.changers]} for f in link.drift]
    return out


def _echo(link: Any, depth: int) -> None:
    from kubectl_gitops.core.inspection import printable

    pad = "  " * depth
    rows = [
        ("Object", link.object),
        ("Sync", link.sync + ("" if link.in_inventory else "  (object NOT in its inventory)")),
        ("Source", f"{link.source}  {link.url}" + (f"  ({link.ref})" if link.ref else "")),
        ("Path", link.path),
        ("Revision", f"{link.revision or 'unknown'}"
                     + (f"  (Sync last applied {link.last_applied_revision})"
                        if link.last_applied_revision and link.last_applied_revision != link.revision else "")),
        ("Applied", f"{link.applied_at or 'unknown'} by {link.applier or 'unknown'}"),
        ("Ready", link.ready),
        ("Drift", _drift(link)),
    ]
    if depth:
        click.echo(f"{'  ' * (depth - 1)}applied by:")
    for key, value in rows:
        if value:
            click.echo(f"{pad}{key + ':':<10} {printable(value)}")
    if link.problem:
        click.echo(f"{pad}{'Warning:':<10} {printable(link.problem)}")


def _drift(link: Any) -> str:
    if not link.drift:
        return "none (every field Git declares is still the applier's)"
    parts = []
    for f in link.drift:
        who = ", ".join(c.describe() for c in f.changers) or "unknown"
        parts.append(f"{f.path} changed by {who}")
    return "; ".join(parts)
