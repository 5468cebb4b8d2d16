"""`kubectl gitops install|uninstall`: CRDs, namespace, RBAC, the applier account and the webhook."""

from __future__ import annotations

from pathlib import Path

import click

from kubectl_gitops.cli.common import emit, kube_options, merged


@click.command()
@click.option("--webhook/--no-webhook", default=True, show_default=True,
              help="Install the admission webhook (drift guard, stamps).")
@click.option("--webhook-url", default=None,
              help="Webhook outside the cluster at this base URL (e.g. https://127.0.0.1:9443); "
                   "no in-cluster Deployment is installed.")
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the webhook's serving certificate here (for --webhook-url).")
@click.option("--dry-run", is_flag=True, help="Print what would be applied; change nothing.")
@kube_options
@click.pass_context
def install(ctx: click.Context, webhook: bool, webhook_url: str | None, cert_dir: Path | None, dry_run: bool,
            kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Install kubectl-gitops into the cluster (idempotent: run it again to upgrade)."""
    from kubectl_gitops.engine import install as engine

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    if dry_run:
        objs = engine.rendered(webhook=webhook, webhook_url=webhook_url)
        emit({"apiVersion": "v1", "kind": "List", "items": objs}, "yaml")
        return
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.core.errors import UsageError

    kube = connect(opts)
    if webhook and not webhook_url and kube.context.startswith("kubectl-gitops-"):
        # The dev control plane has fake nodes and no Pod network: an in-cluster webhook Service
        # would never answer, so the API server would only time out calling it.
        raise UsageError("this is a kubectl-gitops dev control plane (fake nodes, no Pod network): run "
                         "`kubectl gitops dev up --webhook` for a local webhook, or install with "
                         "--webhook-url URL or --no-webhook")
    results = engine.install(kube, webhook=webhook, webhook_url=webhook_url, cert_dir=cert_dir)
    for r in results:
        click.echo(f"  {r.action:<10} {r.ref.display}")
    click.echo(f"✔ kubectl-gitops installed ({len(results)} objects)"
               + ("" if webhook else "; admission webhook not installed"))


@click.command()
@click.option("--dry-run", is_flag=True, help="Print what would be deleted; change nothing.")
@kube_options
@click.pass_context
def uninstall(ctx: click.Context, dry_run: bool, kubeconfig_: str | None, context_: str | None,
              namespace_: str | None) -> None:
    """Remove kubectl-gitops: webhook configurations first, then the rest (CRDs and their objects too)."""
    from kubectl_gitops.engine import install as engine

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    if dry_run:
        for obj in engine.rendered(webhook=True, webhook_url=None):
            click.echo(f"  would delete {obj['kind']}/{obj['metadata']['name']}")
        return
    from kubectl_gitops.cli.context import connect

    for r in engine.uninstall(connect(opts)):
        click.echo(f"  {r.action:<10} {r.ref.display}")
    click.echo("✔ kubectl-gitops uninstalled")
