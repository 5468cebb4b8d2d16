"""`kubectl gitops drift [NAME | -A]`: fields Git owns that someone else changed, and who.

Reads the objects only (applies and fetches nothing): a field Git declares that the applier's
field manager no longer owns was changed by another manager, named with its operation and time
from managedFields. Deleted objects and objects stripped of the Sync's labels are drift too.
Exit 0 = no drift, 1 = drift, 2 = error.
"""

from __future__ import annotations

import json
from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option
from kubectl_gitops.cli.inspect_common import errors_exit
from kubectl_gitops.cli.render_table import table

JSON = dict[str, Any]
VALUE_WIDTH = 40


@click.command()
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Every Sync in every namespace.")
@kube_options
@output_option("json", "yaml")
@click.pass_context
def drift(ctx: click.Context, name: str | None, all_namespaces: bool, kubeconfig_: str | None,
          context_: str | None, namespace_: str | None, output: str | None) -> None:
    """List what drifted from Git in Sync NAME (or every Sync): exit 0 none, 1 drift, 2 error."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.inspection import printable
    from kubectl_gitops.engine.provenance import Provenance

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    with errors_exit():
        if name and all_namespaces:
            raise UsageError("give a Sync NAME or -A, not both")
        kube = connect(opts)
        prov = Provenance(kube)
        namespace = namespace_of(opts, kube)
        syncs = [prov.sync(namespace, name)] if name else prov.syncs(None if all_namespaces else namespace)
        reports = [prov.drift(s) for s in syncs]
    rows = [row for r in reports for row in _rows(r)]
    data = {"drifted": bool(rows), "syncs": [{"sync": r.sync, "objects": r.checked,
                                              "drift": [_item(o) for o in r.objects]} for r in reports]}
    if not emit(data, output):
        if rows:
            click.echo(table(["SYNC", "OBJECT", "FIELD", "VALUE", "CHANGED BY"],
                             [[printable(cell) for cell in row] for row in rows]))
        checked = sum(r.checked for r in reports)
        drifted = sum(len(r.objects) for r in reports)
        click.echo(f"{drifted} of {checked} object(s) in {len(reports)} Sync(s) drifted from Git", err=True)
    ctx.exit(1 if rows else 0)


def _item(drift: Any) -> JSON:
    return {"object": drift.ref.display, "state": drift.state,
            "fields": [{"path": f.path, "value": f.value,
                        "changedBy": [{"manager": c.manager, "operation": c.operation, "time": c.time,
                                       **({"subresource": c.subresource} if c.subresource else {})}
                                      for c in f.changers]} for f in drift.fields]}


def _rows(report: Any) -> list[list[str]]:
    rows = []
    for drift in report.objects:
        if drift.state != "drifted":
            what = "(deleted)" if drift.state == "deleted" else "(ownership labels removed)"
            rows.append([report.sync, drift.ref.display, what, "", ""])
            continue
        for f in drift.fields:
            who = ", ".join(c.describe() for c in f.changers) or "unknown (no manager owns it now)"
            rows.append([report.sync, drift.ref.display, f.path, _short(f.value), who])
    return rows


def _short(value: Any) -> str:
    text = "<removed>" if value is None else json.dumps(value) if not isinstance(value, str) else value
    text = text.replace("\n", "\\n")
    return text if len(text) <= VALUE_WIDTH else text[:VALUE_WIDTH - 1] + "…"
