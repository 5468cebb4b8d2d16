"""`kubectl gitops dev up|down|status|kubeconfig`: the local throwaway control plane."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from kubectl_gitops.cli.common import emit, output_option


def _progress(message: str) -> None:
    click.echo(message, err=True)


name_option = click.option("--name", default="default", show_default=True,
                           help="Name of the dev cluster (several can run side by side).")


@click.group()
def dev() -> None:
    """A real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)."""


@dev.command()
@name_option
@click.option("--port", type=int, default=None, help="API server port (default: a free one).")
@click.option("--nodes", type=int, default=2, show_default=True, help="Fake kwok nodes to create.")
@click.option("--webhook", is_flag=True,
              help="Also install kubectl-gitops and run its admission webhook locally (drift guard on).")
@click.option("--controller", "with_controller", is_flag=True,
              help="Also install kubectl-gitops and run its controller locally (continuous reconciliation).")
def up(name: str, port: int | None, nodes: int, webhook: bool, with_controller: bool) -> None:
    """Build (first use only) and start the dev control plane; idempotent."""
    from kubectl_gitops.devcluster import cluster

    result = cluster.up(name, _progress, port=port, nodes=nodes)
    if webhook:
        _local_webhook(name)
    if with_controller:
        _local_controller(name, installed=webhook)
    if webhook or with_controller:
        result = cluster.UpResult(cluster.status(name), result.reused, result.seconds, result.built)
    st = result.status
    verb = "already running" if result.reused else f"ready in {result.seconds:.1f}s"
    click.echo(f"dev control plane {name!r} {verb}: Kubernetes {st.kube_version} at {st.server}")
    click.echo(f"  export KUBECONFIG={st.kubeconfig}")
    click.echo("  kubectl get nodes")
    click.echo(f"  kubectl gitops dev down{'' if name == 'default' else ' --name ' + name}   # when done")


def _local_webhook(name: str) -> None:
    """Install with --webhook-url pointing at a webhook process on loopback, and run that process."""
    import sys
    from pathlib import Path

    from kubectl_gitops.adapters.kube import Kube, Target
    from kubectl_gitops.devcluster import cluster
    from kubectl_gitops.engine import install

    st = cluster.status(name)
    port = cluster.reserve_port(name, "webhook")
    url = f"https://127.0.0.1:{port}"
    cert_dir = Path(st.home) / "webhook"
    kube = Kube.connect(Target(st.kubeconfig))
    _progress(f"installing kubectl-gitops with its webhook at {url}")
    install.install(kube, webhook=True, webhook_url=url, cert_dir=cert_dir, controller=False)
    args = [sys.executable, "-m", "kubectl_gitops.cli.main", "webhook", "serve", "--cert-dir", str(cert_dir),
            "--port", str(port), "--bind-address", "127.0.0.1", "--kubeconfig", st.kubeconfig,
            *cluster.webhook_client_args(name)]
    cluster.run_process(name, "webhook", args, cluster.https_ready(url + "/readyz", cert_dir / "ca.crt"))
    _progress(f"admission webhook serving on {url} (drift guard: enforce)")


def _local_controller(name: str, *, installed: bool) -> None:
    """Install (CRDs, RBAC; no in-cluster controller) and run `kubectl gitops controller` on loopback."""
    import sys

    from kubectl_gitops.adapters.kube import Kube, Target
    from kubectl_gitops.devcluster import cluster
    from kubectl_gitops.engine import install

    st = cluster.status(name)
    if not installed:
        _progress("installing kubectl-gitops (CRDs and RBAC)")
        install.install(Kube.connect(Target(st.kubeconfig)), webhook=False, webhook_url=None, controller=False)
    health = cluster.reserve_port(name, "controller-health")
    metrics = cluster.reserve_port(name, "controller-metrics")
    args = [sys.executable, "-m", "kubectl_gitops.cli.main", "controller", "--kubeconfig", st.kubeconfig,
            "--health-addr", f"127.0.0.1:{health}", "--metrics-addr", f"127.0.0.1:{metrics}",
            "--allow-file-urls", "--log-format", "json"]
    cluster.run_process(name, "controller", args, cluster.http_ready(f"http://127.0.0.1:{health}/readyz"))
    _progress(f"controller running (metrics http://127.0.0.1:{metrics}/metrics, "
              f"probes http://127.0.0.1:{health}/readyz)")


@dev.command()
@name_option
def down(name: str) -> None:
    """Stop every process of the dev control plane and delete its data."""
    from kubectl_gitops.devcluster import cluster

    stopped = cluster.down(name, _progress)
    click.echo(f"dev control plane {name!r} stopped ({', '.join(stopped) or 'nothing was running'})")


@dev.command()
@name_option
@output_option("json", "yaml")
@click.pass_context
def status(ctx: click.Context, name: str, output: str | None) -> None:
    """Say what runs where; exit 1 unless the control plane is healthy."""
    from kubectl_gitops.devcluster import cluster

    st = cluster.status(name)
    if not emit(asdict(st) | {"healthy": st.healthy}, output):
        if not st.exists:
            click.echo(f"dev control plane {name!r} is not running (start it: kubectl gitops dev up)")
        else:
            state = "healthy" if st.healthy else "NOT healthy"
            click.echo(f"dev control plane {name!r}: {state}; API server {st.server} "
                       f"{'ready' if st.ready else 'not ready'}; kubeconfig {st.kubeconfig}")
            for c in st.components:
                click.echo(f"  {c.name:<24} pid {c.pid:<8} {'running' if c.running else 'DEAD':<8} log {c.log}")
    if not st.healthy:
        ctx.exit(1)


@dev.command()
@name_option
@click.option("--user", default="admin", show_default=True, help="User name (certificate CN).")
@click.option("--group", "groups", multiple=True, help="Group (certificate O); repeatable.")
@click.option("--path", "print_path", is_flag=True, help="Print the admin kubeconfig's path instead.")
def kubeconfig(name: str, user: str, groups: tuple[str, ...], print_path: bool) -> None:
    """Print a kubeconfig for the admin, or issue one for another user and groups."""
    from kubectl_gitops.devcluster import cluster

    if print_path:
        click.echo(cluster.status(name).kubeconfig or cluster.state_root() / name / "admin.kubeconfig")
        return
    sys.stdout.write(cluster.user_kubeconfig(name, user, groups))
