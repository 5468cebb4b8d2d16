"""`kubectl gitops events [NAME] [--watch]`: the Events about Syncs and GitSources, like `flux events`.

Read from events.k8s.io/v1 (which also serves core/v1 Events), oldest first, in kubectl's table
(LAST SEEN, TYPE, REASON, OBJECT, MESSAGE) or as JSON/YAML. `--watch` lists, then follows a real
watch from the list's resourceVersion (re-listing when the server says the version is gone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube

HEADERS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
WATCH_WIDTHS = (9, 7, 24, 28)  # fixed columns while watching: rows arrive one at a time


@click.command()
@click.argument("name", required=False)
@click.option("-A", "--all-namespaces", is_flag=True, help="Events in every namespace.")
@click.option("-w", "--watch", is_flag=True, help="After listing, print new Events as they happen.")
@output_option("json", "yaml")
@kube_options
@click.pass_context
def events(ctx: click.Context, name: str | None, all_namespaces: bool, watch: bool, output: str | None,
           kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Show Events about Syncs and GitSources (NAME: only the Sync or GitSource called NAME)."""
    from kubectl_gitops.adapters.kube import object_path
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.inspect import select_events

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    namespace = None if all_namespaces else namespace_of(opts, kube)
    if name:
        _require_named(kube, namespace, name)
    path = object_path("events.k8s.io/v1", "events", namespace)
    items, version = kube.list_page(path)
    for item in items:  # a list's items carry no apiVersion/kind of their own
        item.setdefault("apiVersion", "events.k8s.io/v1")
        item.setdefault("kind", "Event")
    chosen = select_events(items, name or "")
    if output in ("json", "yaml") and not watch:
        emit({"apiVersion": "v1", "kind": "List", "items": chosen}, output)
        return
    if output:
        for event in chosen:
            emit(event, output)
    else:
        _table(chosen, all_namespaces, watch, namespace, name)
    if watch:
        _follow(kube, path, version, name or "", all_namespaces, output)


def _require_named(kube: Kube, namespace: str | None, name: str) -> None:
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.engine.record import SOURCES, SYNCS, require_installed

    if namespace is None or kube.get(SYNCS, name, namespace) or kube.get(SOURCES, name, namespace):
        return
    require_installed(kube)
    raise GitOpsError(f"no Sync or GitSource {namespace}/{name}")


def _age(event: Mapping[str, Any]) -> str:
    from kubectl_gitops.cli.render_table import age
    from kubectl_gitops.core.inspect import event_time

    return age(event_time(event))


def _table(chosen: list[Mapping[str, Any]], all_namespaces: bool, watch: bool, namespace: str | None,
           name: str | None) -> None:
    from kubectl_gitops.cli.render_table import echo_table
    from kubectl_gitops.core.inspect import event_row

    headers = (["NAMESPACE"] if all_namespaces else []) + HEADERS
    rows = [event_row(e, _age(e), all_namespaces) for e in chosen]
    if watch:
        click.echo(_fixed(headers, all_namespaces))
        for row in rows:
            click.echo(_fixed(row, all_namespaces))
        return
    where = "in any namespace" if namespace is None else f"in {namespace} namespace"
    echo_table(headers, rows, f"No events found {where}" + (f" for {name}." if name else "."))


def _fixed(row: list[str], all_namespaces: bool) -> str:
    widths = ((20,) if all_namespaces else ()) + WATCH_WIDTHS
    cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)] + row[len(widths):]
    return "   ".join(cells).rstrip()


def _follow(kube: Kube, path: str, version: str, name: str, all_namespaces: bool, output: str | None) -> None:
    """Print new Events until interrupted: a real watch, resumed where it ended, re-listed on 410."""
    from kubectl_gitops.adapters.kube import ApiError
    from kubectl_gitops.core.inspect import event_row, select_events

    seen: set[tuple[str, str]] = set()
    while True:
        try:
            for change in kube.watch(path, version):
                obj = change.get("object") or {}
                meta = obj.get("metadata") or {}
                version = str(meta.get("resourceVersion") or version)
                key = (str(meta.get("uid")), str(meta.get("resourceVersion")))
                if change.get("type") not in ("ADDED", "MODIFIED") or key in seen or not select_events([obj], name):
                    continue
                seen.add(key)
                if not emit(obj, output):
                    click.echo(_fixed(event_row(obj, _age(obj), all_namespaces), all_namespaces))
        except ApiError as err:
            if err.status != 410:
                raise
            version = kube.list_page(path)[1]  # too old: carry on from now
