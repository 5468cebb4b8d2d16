"""`kubectl gitops create tenant`, `get tenants`, `delete tenant`: a team's slice of the cluster.

The objects come from core/tenant_objects.py (pure); this module only reads discovery and the
Tenants already there, sends them with server-side apply (idempotent: run it again to change a
tenant or to pick up newly served kinds) and renders what `get` finds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import click

from kubectl_gitops.cli.common import GlobalOptions, emit, merged
from kubectl_gitops.cli.render_table import age, echo_table
from kubectl_gitops.constants import FIELD_MANAGER, LABEL_TENANT

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube
    from kubectl_gitops.core.discovery import ResourceInfo
    from kubectl_gitops.core.tenant import Tenant

JSON = dict[str, Any]
VIOLATION = "TenantViolation"


# ------------------------------------------------------------------ create


@click.command("tenant")
@click.argument("name")
@click.option("--namespace", "-n", "namespaces", multiple=True, required=True,
              help="A namespace of the tenant (created, labelled); repeatable.")
@click.option("--user", "users", multiple=True, help="A person of the tenant (gets edit there); repeatable.")
@click.option("--group", "groups", multiple=True, help="A group of the tenant's people; repeatable.")
@click.option("--allow-kind", "allow", multiple=True, help="GROUP/KIND glob the tenant may hold (default *).")
@click.option("--deny-kind", "deny", multiple=True, help="GROUP/KIND glob refused (wins over allow).")
@click.option("--cluster-kind", "cluster", multiple=True, help="Cluster-scoped GROUP/KIND glob allowed (default none).")
@click.option("--source-url", "urls", multiple=True, help="Glob of the Git URLs its GitSources may pull.")
@click.option("--role", "roles", multiple=True, help="ClusterRole its RoleBindings may grant (default edit, view).")
@click.option("--export", is_flag=True, help="Print the objects as YAML instead of applying them.")
@click.option("--kubeconfig", "kubeconfig_", help="Path to the kubeconfig file.")
@click.option("--context", "context_", help="The kubeconfig context to use.")
@click.pass_context
def create_tenant(ctx: click.Context, name: str, namespaces: tuple[str, ...], users: tuple[str, ...],
                  groups: tuple[str, ...], allow: tuple[str, ...], deny: tuple[str, ...], cluster: tuple[str, ...],
                  urls: tuple[str, ...], roles: tuple[str, ...], export: bool, kubeconfig_: str | None,
                  context_: str | None) -> None:
    """Create or update a Tenant: its namespaces, locked-down applier, RBAC and people."""
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.core.discovery import ResourceMap
    from kubectl_gitops.core.tenant_objects import TenantRequest, tenant_object, tenant_objects
    from kubectl_gitops.engine.record import require_installed

    opts = merged(ctx, kubeconfig_, context_, None)
    req = TenantRequest(name, _unique(namespaces), _unique(users), _unique(groups), _unique(allow), _unique(deny),
                        _unique(cluster), _unique(urls), _unique(roles))
    tenant_object(req)  # a usage error before connecting
    kube = connect(opts)
    require_installed(kube)
    _refuse_overlap(kube, req.name, tenant_object(req))
    served = _served(kube)
    resources = ResourceMap(served)
    objs = tenant_objects(req, served)
    if export:
        import yaml

        click.echo("---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs).rstrip())
        return
    for obj in objs:
        info = resources.get(str(obj["apiVersion"]), str(obj["kind"]))
        if info is None:
            from kubectl_gitops.core.errors import GitOpsError

            raise GitOpsError(f"{obj['kind']} in {obj['apiVersion']} is not served: is kubectl-gitops installed?")
        kube.apply(info, obj, field_manager=FIELD_MANAGER + "-cli", force=True)
        click.echo(f"{_display(obj)} applied")


def _served(kube: Kube) -> list[ResourceInfo]:
    """Every served kind (aggregated discovery), for the applier's Roles."""
    from kubectl_gitops.core.discovery import DISCOVERY_ACCEPT, parse_aggregated

    infos: list[ResourceInfo] = []
    for path in ("/api", "/apis"):
        infos += parse_aggregated(kube.request("GET", path, accept=DISCOVERY_ACCEPT))
    return infos


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _display(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{str(obj.get('kind')).lower()}/{ns + '/' if ns else ''}{meta.get('name')}"


def _refuse_overlap(kube: Kube, name: str, obj: JSON) -> None:
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.tenant import overlaps, parse_tenant
    from kubectl_gitops.engine.tenants import load_tenants

    taken = overlaps(parse_tenant(obj), load_tenants(kube))
    if taken:
        raise UsageError(f"tenant {name}: {', '.join(taken)}; a namespace belongs to one tenant only")


# ------------------------------------------------------------------ get


def tenant_summary(tenant: Tenant, namespaces: list[str], syncs: list[JSON]) -> JSON:
    """What `get tenants` shows of one Tenant, from its namespaces and the Syncs in them."""
    ready = [s for s in syncs if _ready(s)[0] == "True"]
    violations = [s for s in syncs if _ready(s)[1] == VIOLATION]
    last = violations[-1] if violations else None
    return {
        "namespaces": ",".join(namespaces),
        "syncs": len(syncs),
        "ready": len(ready),
        "violations": len(violations),
        "lastViolation": {"sync": f"{last['metadata']['namespace']}/{last['metadata']['name']}",
                          "message": _ready(last)[2]} if last else None,
        "applier": tenant.applier,
        "people": ",".join([*tenant.users, *(f"group:{g}" for g in tenant.groups)]),
        "sourceURLs": ",".join(tenant.source_urls),
    }


def _ready(obj: JSON) -> tuple[str, str, str]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return str(cond.get("status", "Unknown")), str(cond.get("reason", "")), str(cond.get("message", ""))
    return "Unknown", "", ""


def summaries(kube: Kube, name: str | None) -> list[tuple[JSON, JSON]]:
    """(Tenant object, summary) for every Tenant, or the one named."""
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.core.tenant import parse_tenant
    from kubectl_gitops.engine.record import SYNCS
    from kubectl_gitops.engine.tenants import NAMESPACES, TENANTS

    if name:
        found = kube.get(TENANTS, name)
        if found is None:
            raise GitOpsError(f"Tenant {name} not found")
        objs = [found]
    else:
        objs = sorted(kube.list(TENANTS), key=lambda o: str(o["metadata"]["name"]))
    live_ns = {str(n["metadata"]["name"]): (n["metadata"].get("labels") or {}) for n in kube.list(NAMESPACES)}
    syncs = kube.list(SYNCS)
    out = []
    for obj in objs:
        tenant = parse_tenant(obj)
        owned = sorted({*tenant.namespaces, *(ns for ns, labels in live_ns.items() if tenant.claims(ns, labels))})
        mine = [s for s in syncs if s["metadata"].get("namespace") in owned]
        out.append((obj, tenant_summary(tenant, owned, mine)))
    return out


def get_tenants(opts: GlobalOptions, name: str | None, output: str | None) -> None:
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.engine.record import require_installed

    kube = connect(opts)
    require_installed(kube)
    found = summaries(kube, name)
    if output in ("json", "yaml"):
        items = [{**obj, "summary": summary} for obj, summary in found]
        emit(items[0] if name else {"apiVersion": "v1", "kind": "List", "items": items}, output)
        return
    wide = output == "wide"
    headers = ["NAME", "NAMESPACES", "SYNCS", "READY", "VIOLATIONS", "AGE"]
    if wide:
        headers += ["APPLIER", "PEOPLE", "SOURCE-URLS", "LAST-VIOLATION"]
    rows = []
    for obj, s in found:
        row = [str(obj["metadata"]["name"]), s["namespaces"], str(s["syncs"]), f"{s['ready']}/{s['syncs']}",
               str(s["violations"]), age(obj["metadata"].get("creationTimestamp"))]
        if wide:
            last = s["lastViolation"]
            row += [s["applier"], s["people"], s["sourceURLs"],
                    f"{last['sync']}: {last['message'][:120]}" if last else ""]
        rows.append(row)
    echo_table(headers, rows, "No Tenant resources found.")


# ------------------------------------------------------------------ delete


def delete_tenant(opts: GlobalOptions, name: str, cascade: bool) -> None:
    """Refuse while Syncs exist in its namespaces (unless --cascade: prune and delete them, and the
    namespaces created for it); then its people's and applier's RBAC, the applier, the Tenant last."""
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine.record import require_installed

    kube = connect(opts)
    require_installed(kube)
    _obj, summary = summaries(kube, name)[0]
    namespaces = [ns for ns in summary["namespaces"].split(",") if ns]
    syncs = _syncs_in(kube, namespaces)
    if syncs and not cascade:
        keys = ", ".join(f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in syncs[:10])
        raise UsageError(f"tenant {name} still has {len(syncs)} Sync(s) ({keys}); delete them first, or use "
                         f"--cascade to prune what they applied and delete them with the tenant's namespaces")
    if cascade:
        _delete_syncs(kube, syncs)
        _delete_labelled(kube, name, ("", "v1", "Namespace", "namespaces", False), None)
    _delete_rbac(kube, name, namespaces)
    from kubectl_gitops.engine.tenants import TENANTS

    kube.delete(TENANTS, name)
    click.echo(f"tenant/{name} deleted")


def _syncs_in(kube: Kube, namespaces: list[str]) -> list[JSON]:
    from kubectl_gitops.engine.record import SYNCS

    return [s for ns in namespaces for s in kube.list(SYNCS, namespace=ns)]


def _delete_syncs(kube: Kube, syncs: list[JSON]) -> None:
    from kubectl_gitops.core.errors import PruneFailed
    from kubectl_gitops.engine.prune_all import prune_everything
    from kubectl_gitops.engine.record import SYNCS

    for sync in syncs:
        meta = sync["metadata"]
        results = prune_everything(kube, sync)
        failed = [r for r in results if r.action == "failed"]
        if failed:
            raise PruneFailed(f"Sync {meta['namespace']}/{meta['name']}: {len(failed)} object(s) could not be "
                              f"deleted ({failed[0].message}); the tenant is kept: fix and run the delete again")
        kube.delete(SYNCS, str(meta["name"]), str(meta["namespace"]))
        click.echo(f"sync/{meta['namespace']}/{meta['name']} deleted ({len(results)} object(s) pruned)")


def _delete_rbac(kube: Kube, name: str, namespaces: list[str]) -> None:
    from kubectl_gitops.constants import SYSTEM_NAMESPACE

    rbac = "rbac.authorization.k8s.io"
    for kind, plural in (("RoleBinding", "rolebindings"), ("Role", "roles")):
        for ns in namespaces:
            _delete_labelled(kube, name, (rbac, "v1", kind, plural, True), ns)
    for kind, plural in (("ClusterRoleBinding", "clusterrolebindings"), ("ClusterRole", "clusterroles")):
        _delete_labelled(kube, name, (rbac, "v1", kind, plural, False), None)
    _delete_labelled(kube, name, ("", "v1", "ServiceAccount", "serviceaccounts", True), SYSTEM_NAMESPACE)


def _delete_labelled(kube: Kube, tenant: str, kind: tuple[str, str, str, str, bool], namespace: str | None) -> None:
    """Delete what `create tenant` made of this kind (labelled with the tenant's name)."""
    from kubectl_gitops.core.discovery import ResourceInfo

    info = ResourceInfo(*kind)
    for obj in kube.list(info, namespace=namespace, label_selector=f"{LABEL_TENANT}={tenant}"):
        if kube.delete(info, str(obj["metadata"]["name"]), namespace):
            click.echo(f"{_display(obj)} deleted")
