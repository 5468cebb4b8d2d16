"""`kubectl gitops install|uninstall`: CRDs, namespace, RBAC, the applier account and the webhook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from kubectl_gitops.cli.common import emit, kube_options, merged
from kubectl_gitops.cli.render_results import echo_results

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
@click.option("--image", default=None, metavar="REPOSITORY@sha256:DIGEST", envvar="KUBECTL_GITOPS_IMAGE",
              help="The kubectl-gitops image the in-cluster parts run, pinned by digest (`make image` builds it; "
                   "docs/install.md). Required to install the in-cluster webhook. [env: KUBECTL_GITOPS_IMAGE]")
@click.option("--controller/--no-controller", default=True, show_default=True,
              help="Deploy the in-cluster controller (needs --image; a dev control plane runs it locally instead: "
                   "`kubectl gitops dev up --controller`).")
@click.option("--dry-run", is_flag=True, help="Print what would be applied; change nothing.")
@kube_options
@click.pass_context
def install(ctx: click.Context, webhook: bool, webhook_url: str | None, cert_dir: Path | None, fail_closed: bool,
            client_ca_configmap: str | None, client_ca_file: Path | None, client_names: tuple[str, ...],
            image: str | None, controller: bool, dry_run: bool,
            kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Install kubectl-gitops into the cluster (idempotent: run it again to upgrade)."""
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine import install as engine

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    hardening = _hardening(webhook, webhook_url, fail_closed, client_ca_configmap, client_ca_file, client_names)
    _check_image(image)
    in_cluster = webhook and not webhook_url
    if dry_run:
        objs = engine.rendered(webhook=webhook, webhook_url=webhook_url, hardening=hardening, image=image,
                               controller=controller)
        # Without --image the Deployment shows the placeholder (image-not-set.invalid/...): a real
        # install refuses to apply it.
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
    if controller and image is None and kube.context.startswith("kubectl-gitops-"):
        # Fake nodes: a controller Deployment would only pretend to run. The local process does it.
        controller = False
        click.echo("  note: not deploying the in-cluster controller on a dev control plane (fake nodes); "
                   "`kubectl gitops dev up --controller` runs it as a local process", err=True)
    if controller and image is None:
        raise UsageError("the in-cluster controller needs its image: pass --image REPOSITORY@sha256:DIGEST (or set "
                         "KUBECTL_GITOPS_IMAGE; `make image` builds it, docs/install.md), or install with "
                         "--no-controller and run `kubectl gitops sync` yourself")
    if in_cluster and image is None:
        raise UsageError("the in-cluster webhook needs its image: pass --image REPOSITORY@sha256:DIGEST (or set "
                         "KUBECTL_GITOPS_IMAGE). No released image is assumed: build it with `make image`, push it "
                         "to a registry the cluster pulls from, and pass the digest `make image` printed "
                         "(docs/install.md). Or install with --webhook-url URL or --no-webhook.")
    results = engine.install(kube, webhook=webhook, webhook_url=webhook_url, cert_dir=cert_dir, hardening=hardening,
                             image=image, controller=controller)
    echo_results(results, unchanged_listed=None)
    click.echo(f"✔ kubectl-gitops installed ({len(results)} objects)"
               + ("" if webhook else "; admission webhook not installed")
               + ("; drift guard, tenancy and signatures: admission fails closed (failurePolicy Fail)"
                  if fail_closed else ""))
    if webhook and not webhook_url and not hardening.client_ca_configmap:
        click.echo("  note: the webhook answers reviews from any caller that reaches it; to accept the API "
                   "server only, see --client-ca-configmap and docs/webhook.md", err=True)


def _check_image(image: str | None) -> None:
    from kubectl_gitops.core import install as shape
    from kubectl_gitops.core.errors import UsageError

    problem = shape.check_image(image) if image is not None else None
    if problem:
        raise UsageError(problem)


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
@click.option("--dry-run", is_flag=True,
              help="Print exactly what would be deleted (the objects that exist, and the Syncs, GitSources and "
                   "other custom objects that go with the CRDs); change nothing.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation on a terminal.")
@kube_options
@click.pass_context
def uninstall(ctx: click.Context, dry_run: bool, yes: bool, kubeconfig_: str | None, context_: str | None,
              namespace_: str | None) -> None:
    """Remove kubectl-gitops: webhook configurations first, then the rest (CRDs and their objects too)."""
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.cli.delete_cmd import asking, confirm
    from kubectl_gitops.engine import install as engine
    from kubectl_gitops.engine import queries

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    kube = connect(opts)
    if dry_run or asking(yes):
        plan = queries.plan_uninstall(kube)
        custom = sum(len(v) for v in plan.custom.values())
        if dry_run:
            echo_results(plan.deletes, unchanged_listed=None)
            for kind, names in plan.custom.items():
                click.echo(f"  with the CRD: {len(names)} {kind}(s): {', '.join(names[:20])}"
                           + (f" and {len(names) - 20} more" if len(names) > 20 else ""))
            click.echo(f"kubectl-gitops would be uninstalled from {kube.server} (dry run)"
                       + ("; the objects those Syncs applied stay in the cluster" if plan.custom.get("Sync") else ""))
            return
        confirm(f"Uninstall kubectl-gitops from {kube.server}: delete {len(plan.deletes)} object(s), the CRDs and the "
                f"{custom} Sync(s), GitSource(s) and other objects of their kinds?")
    echo_results(engine.uninstall(kube), unchanged_listed=None)
    click.echo("✔ kubectl-gitops uninstalled")
