"""`kubectl gitops install|uninstall`: CRDs, namespace, RBAC, the applier account and the webhook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubectl_gitops.cli.common import emit, kube_options, merged

if TYPE_CHECKING:
    from kubectl_gitops.engine.install import Hardening


@click.command()
@click.option("--webhook/--no-webhook", default=True, show_default=True,
              help="Install the admission webhook (drift guard, stamps).")
@click.option("--webhook-url", default=None,
              help="Webhook outside the cluster at this base URL (e.g. https://127.0.0.1:9443); "
                   "no in-cluster Deployment is installed.")
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the webhook's serving certificate here (for --webhook-url).")
@click.option("--fail-closed", is_flag=True,
              help="failurePolicy Fail on the main drift-guard entry, the three tenancy entries and the "
                   "signatures entries (their scale writes split off, Ignore): no out-of-band edits or unsigned "
                   "managed objects even while the webhook is down (the default applier, garbage collector, "
                   "namespace deletion and scaling still pass). See docs/webhook.md before using it.")
@click.option("--client-ca-configmap", default=None, metavar="NAME",
              help="ConfigMap in kubectl-gitops-system whose ca.crt signs the API server's client certificate "
                   "for webhooks: the webhook then answers reviews from the API server only. The API server "
                   "must be configured to present it (docs/webhook.md).")
@click.option("--client-ca-file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Like --client-ca-configmap, from a PEM file: install writes it to the ConfigMap "
                   "kubectl-gitops-webhook-client-ca (or the one --client-ca-configmap names).")
@click.option("--client-name", "client_names", multiple=True, metavar="NAME",
              help="With --client-ca-configmap: the CN or DNS SAN the API server's client certificate has.")
@click.option("--dry-run", is_flag=True, help="Print what would be applied; change nothing.")
@kube_options
@click.pass_context
def install(ctx: click.Context, webhook: bool, webhook_url: str | None, cert_dir: Path | None, fail_closed: bool,
            client_ca_configmap: str | None, client_ca_file: Path | None, client_names: tuple[str, ...],
            dry_run: bool,
            kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Install kubectl-gitops into the cluster (idempotent: run it again to upgrade)."""
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine import install as engine

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    hardening = _hardening(webhook, webhook_url, fail_closed, client_ca_configmap, client_ca_file, client_names)
    if dry_run:
        objs = engine.rendered(webhook=webhook, webhook_url=webhook_url, hardening=hardening)
        emit({"apiVersion": "v1", "kind": "List", "items": objs}, "yaml")
        return
    from kubectl_gitops.cli.context import connect

    kube = connect(opts)
    if webhook and not webhook_url and kube.context.startswith("kubectl-gitops-"):
        # The dev control plane has fake nodes and no Pod network: an in-cluster webhook Service
        # would never answer, so the API server would only time out calling it.
        raise UsageError("this is a kubectl-gitops dev control plane (fake nodes, no Pod network): run "
                         "`kubectl gitops dev up --webhook` for a local webhook, or install with "
                         "--webhook-url URL or --no-webhook")
    results = engine.install(kube, webhook=webhook, webhook_url=webhook_url, cert_dir=cert_dir, hardening=hardening)
    for r in results:
        click.echo(f"  {r.action:<10} {r.ref.display}")
    click.echo(f"✔ kubectl-gitops installed ({len(results)} objects)"
               + ("" if webhook else "; admission webhook not installed")
               + ("; drift guard, tenancy and signatures: admission fails closed (failurePolicy Fail)"
                  if fail_closed else ""))
    if webhook and not webhook_url and not hardening.client_ca_configmap:
        click.echo("  note: the webhook answers reviews from any caller that reaches it; to accept the API "
                   "server only, see --client-ca-configmap and docs/webhook.md", err=True)


def _hardening(webhook: bool, webhook_url: str | None, fail_closed: bool, configmap: str | None,
               ca_file: Path | None, names: tuple[str, ...]) -> Hardening:
    from kubectl_gitops.core import install as shape
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine.install import Hardening

    if (configmap or ca_file or names) and (webhook_url or not webhook):
        raise UsageError("--client-ca-configmap/--client-ca-file/--client-name configure the in-cluster webhook: "
                         "not with --webhook-url (pass --client-ca-file to `kubectl gitops webhook serve`) "
                         "or --no-webhook")
    if names and not (configmap or ca_file):
        raise UsageError("--client-name needs --client-ca-configmap or --client-ca-file")
    if fail_closed and not webhook:
        raise UsageError("--fail-closed needs the webhook (drop --no-webhook)")
    if ca_file is not None:
        pem = ca_file.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise UsageError(f"{ca_file} holds no PEM certificate (--client-ca-file: the CA of the API server's "
                             "client certificate for webhooks)")
        return Hardening(fail_closed, configmap or shape.CLIENT_CA_CONFIGMAP, names, pem)
    return Hardening(fail_closed, configmap, names)


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
