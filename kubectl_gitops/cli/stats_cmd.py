"""`kubectl gitops stats [-A]`: Syncs and GitSources counted by state, like `flux stats`.

A Sync or GitSource is suspended (spec.suspend), else ready or failing by its Ready condition,
else pending (never reconciled); Syncs pinned by a rollback are counted apart as well.
"""

from __future__ import annotations

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option

HEADERS = ["KIND", "TOTAL", "READY", "FAILING", "PENDING", "SUSPENDED", "PINNED"]


@click.command()
@click.option("-A", "--all-namespaces", is_flag=True, help="Count across all namespaces.")
@output_option("json", "yaml")
@kube_options
@click.pass_context
def stats(ctx: click.Context, all_namespaces: bool, output: str | None, kubeconfig_: str | None,
          context_: str | None, namespace_: str | None) -> None:
    """Count Syncs and GitSources by state: ready, failing, pending, suspended, pinned."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.cli.render_table import echo_table
    from kubectl_gitops.core.inspect import tally
    from kubectl_gitops.engine.record import SOURCES, SYNCS, require_installed

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    require_installed(kube)
    namespace = None if all_namespaces else namespace_of(opts, kube)
    counts = [tally("GitSource", kube.list(SOURCES, namespace=namespace)),
              tally("Sync", kube.list(SYNCS, namespace=namespace))]
    if emit({"namespace": namespace or "", "kinds": counts}, output):
        return
    keys = [h.lower() for h in HEADERS]
    rows = [[str(c[k]) if k == "kind" or c["kind"] == "Sync" or k != "pinned" else "-" for k in keys]
            for c in counts]
    echo_table(HEADERS, rows, "")
