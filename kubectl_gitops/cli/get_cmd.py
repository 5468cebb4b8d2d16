"""`kubectl gitops get sources|syncs [NAME] [-A] [-l SEL] [--status-selector C=S] [-o json|yaml|wide|name]
[--no-headers] [--watch]`: what kubectl users expect to see.

The objects come from engine.queries (a LIST, then a real watch from its resourceVersion); this
module only prints them, with kubectl's conventions: `-o name` prints `sync.kubectl-gitops.dev/x`,
`--no-headers` drops the header line, `--watch` prints the table and then one row per change until
interrupted or until `--request-timeout` has passed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged
from kubectl_gitops.cli.render_table import age, table

JSON = dict[str, Any]


def _ready(obj: JSON) -> tuple[str, str]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown")), str(cond.get("message", ""))
    return "Unknown", "not reconciled yet"


def source_row(obj: JSON, wide: bool) -> list[str]:
    ready, message = _ready(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    revision = str((status.get("artifact") or {}).get("revision") or "")
    row = [obj["metadata"]["name"], ready, revision, age(obj["metadata"].get("creationTimestamp"))]
    if wide:
        ref = spec.get("ref") or {}
        refs = ", ".join(f"{k}={v}" for k, v in ref.items())
        verification = (status.get("artifact") or {}).get("verification") or {}
        signed = str(verification.get("fingerprint") or "") if verification else (
            "unverified" if spec.get("verify") else "-")
        row += [str(spec.get("url", "")), refs, "True" if spec.get("suspend") else "False", signed]
    return [*row, message]


def sync_row(obj: JSON, wide: bool) -> list[str]:
    ready, message = _ready(obj)
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    pin = " (pinned)" if spec.get("revision") else ""  # a rollback pin: cli/rollback_cmd.py
    row = [obj["metadata"]["name"], ready, str(status.get("lastAppliedRevision") or "") + pin,
           age(obj["metadata"].get("creationTimestamp"))]
    if wide:
        entries = (status.get("inventory") or {}).get("entries") or []
        row += [str((spec.get("sourceRef") or {}).get("name", "")), str(spec.get("path", "")),
                str(len(entries)), "True" if spec.get("suspend") else "False", str(spec.get("driftGuard", "enforce"))]
    return [*row, message]


HEADERS = {
    "sources": (["NAME", "READY", "REVISION", "AGE"], ["URL", "REF", "SUSPENDED", "SIGNED-BY"]),
    "syncs": (["NAME", "READY", "REVISION", "AGE"], ["SOURCE", "PATH", "OBJECTS", "SUSPENDED", "DRIFTGUARD"]),
}
ALIASES = {"tenant": "tenants", "tenants": "tenants",
           "source": "sources", "sources": "sources", "gitsources": "sources", "gitsource": "sources",
           "sync": "syncs", "syncs": "syncs"}


@click.command()
@click.argument("what", type=click.Choice(sorted(ALIASES)))
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="List across all namespaces.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "wide", "name"]), default=None,
              help="Output format.")
@click.option("-l", "--selector", default="", metavar="SELECTOR",
              help="Label selector, as kubectl takes it (e.g. -l team=a,tier!=web).")
@click.option("--status-selector", default="", metavar="CONDITION=STATUS",
              help="Only objects whose condition has this status, e.g. ready=false (true|false|unknown).")
@click.option("-w", "--watch", is_flag=True,
              help="After listing, print each change (a real watch; --request-timeout ends it).")
@click.option("--no-headers", is_flag=True, help="Print the table without its header line.")
@kube_options
@click.pass_context
def get(ctx: click.Context, what: str, name: str | None, all_namespaces: bool, output: str | None, selector: str,
        status_selector: str, watch: bool, no_headers: bool, kubeconfig_: str | None, context_: str | None,
        namespace_: str | None) -> None:
    """List GitSources, Syncs (readiness, revision) or Tenants (namespaces, Syncs, violations)."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.selectors import parse_label_selector, parse_status_selector
    from kubectl_gitops.engine import queries

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kind = ALIASES[what]
    if kind == "tenants":  # cluster-scoped, with a summary of their Syncs: cli/tenant_cmd.py
        from kubectl_gitops.cli.tenant_cmd import get_tenants

        if selector or status_selector or watch or no_headers or output == "name":
            raise UsageError("get tenants takes -o json|yaml|wide only (no -l, --status-selector, --watch, "
                             "--no-headers or -o name)")
        get_tenants(opts, name, output)
        return
    kube = connect(opts)
    query = queries.Query(queries.KINDS[kind], None if all_namespaces else namespace_of(opts, kube), name,
                          selector, parse_label_selector(selector), parse_status_selector(status_selector))
    listing = queries.list_objects(kube, query)
    view = _View(kind, all_namespaces, output, no_headers, watch)
    view.initial(listing.items, query, name)
    if watch:
        until = None
        if opts.request_timeout:
            from kubectl_gitops.core.spec import parse_duration

            until = time.monotonic() + parse_duration(opts.request_timeout, 30.0, "--request-timeout")
        for change in queries.watch(kube, query, listing, until=until):
            view.change(change.type, change.obj)


class _View:
    """How `get` prints: a table (kubectl's columns), names, or objects; then one entry per change."""

    def __init__(self, kind: str, all_namespaces: bool, output: str | None, no_headers: bool,
                 watching: bool = False) -> None:
        self.kind = kind
        self.watching = watching
        self.all_namespaces = all_namespaces
        self.output = output
        self.no_headers = no_headers
        self.widths: list[int] = []

    def headers(self) -> list[str]:
        base, extra = HEADERS[self.kind]
        return (["NAMESPACE"] if self.all_namespaces else []) + base + (extra if self.output == "wide" else []) \
            + ["MESSAGE"]

    def row(self, obj: JSON) -> list[str]:
        render = source_row if self.kind == "sources" else sync_row
        return ([obj["metadata"]["namespace"]] if self.all_namespaces else []) + render(obj, self.output == "wide")

    def initial(self, items: list[JSON], query: Any, name: str | None) -> None:
        if self.output in ("json", "yaml") and self.watching:  # kubectl get -w: one object at a time
            for obj in items:
                self.change("ADDED", obj)
            return
        if self.output in ("json", "yaml"):
            emit(items[0] if name and len(items) == 1 else {"apiVersion": "v1", "kind": "List", "items": items},
                 self.output)
            return
        if self.output == "name":
            for obj in items:
                click.echo(resource_name(obj))
            return
        headers, rows = self.headers(), [self.row(o) for o in items]
        if not rows:
            where = "in any namespace" if self.all_namespaces else f"in {query.namespace} namespace"
            click.echo(f"No {query.info.kind} resources found {where}.", err=True)
            self.widths = [len(h) for h in headers]
            return
        text = table(headers, rows)
        self.widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        click.echo("\n".join(text.splitlines()[1:]) if self.no_headers else text)

    def change(self, event: str, obj: JSON) -> None:
        """One watch event, as kubectl get --watch prints it (a deletion shows the last state)."""
        if self.output == "json":
            click.echo(json.dumps(obj, indent=2))
        elif self.output == "yaml":
            click.echo("---")
            emit(obj, "yaml")
        elif self.output == "name":
            click.echo(resource_name(obj))
        else:
            cells = self.row(obj)
            widths = self.widths or [len(c) for c in cells]
            click.echo("   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip())


def resource_name(obj: JSON) -> str:
    """kubectl's `-o name`: `<kind>.<group>/<name>` (e.g. sync.kubectl-gitops.dev/app)."""
    group = str(obj.get("apiVersion", "")).rpartition("/")[0]
    kind = str(obj.get("kind", "")).lower()
    return f"{kind}.{group}/{obj['metadata']['name']}" if group else f"{kind}/{obj['metadata']['name']}"
