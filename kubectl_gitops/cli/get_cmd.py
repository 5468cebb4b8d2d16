"""`kubectl gitops get sources|syncs [-A] [-o json|yaml|wide]`: what kubectl users expect to see."""

from __future__ import annotations

from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged
from kubectl_gitops.cli.render_table import age, echo_table

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
@click.option("-o", "--output", type=click.Choice(["json", "yaml", "wide"]), default=None, help="Output format.")
@kube_options
@click.pass_context
def get(ctx: click.Context, what: str, name: str | None, all_namespaces: bool, output: str | None,
        kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """List GitSources, Syncs (readiness, revision) or Tenants (namespaces, Syncs, violations)."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.engine import record
    from kubectl_gitops.engine.record import SOURCES, SYNCS

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kind = ALIASES[what]
    if kind == "tenants":  # cluster-scoped, with a summary of their Syncs: cli/tenant_cmd.py
        from kubectl_gitops.cli.tenant_cmd import get_tenants

        get_tenants(opts, name, output)
        return
    info = SOURCES if kind == "sources" else SYNCS
    kube = connect(opts)
    record.require_installed(kube)
    namespace = None if all_namespaces else namespace_of(opts, kube)
    if name:
        found = kube.get(info, name, namespace)
        if found is None:
            raise GitOpsError(f"{info.kind} {namespace}/{name} not found")
        items = [found]
    else:
        items = kube.list(info, namespace=namespace)
    if output in ("json", "yaml"):
        emit(items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}, output)
        return
    wide = output == "wide"
    base, extra = HEADERS[kind]
    headers = (["NAMESPACE"] if all_namespaces else []) + base + (extra if wide else []) + ["MESSAGE"]
    row = source_row if kind == "sources" else sync_row
    rows = [([o["metadata"]["namespace"]] if all_namespaces else []) + row(o, wide)
            for o in sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))]
    where = "in any namespace" if all_namespaces else f"in {namespace} namespace"
    echo_table(headers, rows, f"No {info.kind} resources found {where}.")
