"""`kubectl gitops webhook serve`: run the admission webhook (gunicorn, TLS) in a pod or on a laptop.

Lives in the webhook package, not the CLI's: the CLI never imports Flask (import-linter checks
that), and `kubectl-gitops` loads this command by name only when it is invoked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from kubectl_gitops.constants import BREAK_GLASS_GROUP

CACHE_TTL_DEPRECATED = ("warning: --cache-ttl is deprecated and has no effect: the webhook serves Syncs, "
                        "GitSources, Tenants and TrustPolicies from watches (a change is seen as soon as its "
                        "watch event arrives), nothing is cached by time. Drop the flag; it will be removed.")


@click.group()
def webhook() -> None:
    """The admission webhook: drift guard (validating) and ownership stamps (mutating)."""


@webhook.command()
@click.option("--cert-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory with tls.crt and tls.key (a mounted kubernetes.io/tls Secret).")
@click.option("--cert-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--port", type=int, default=8443, show_default=True)
@click.option("--bind-address", default="0.0.0.0", show_default=True)
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per worker.")
@click.option("--cache-ttl", type=float, default=None, hidden=True,
              help="Deprecated, no effect: Syncs are served from watches, nothing is cached by time.")
@click.option("--break-glass-group", default=BREAK_GLASS_GROUP, show_default=True)
@click.option("--kubeconfig", default=None, help="Outside a pod: the kubeconfig to read Syncs with.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--client-ca-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Answer /validate and /mutate only for clients (the API server) with a certificate "
                   "from this CA; /healthz, /readyz and /metrics need none. See docs/webhook.md.")
@click.option("--client-name", "client_names", multiple=True,
              help="With --client-ca-file: the client certificate's CN or a DNS SAN must be one of these.")
@click.option("--trusted-controller", "trusted_controllers", multiple=True,
              help="A username (e.g. an operator's ServiceAccount) that may change ownerReferences and "
                   "finalizers of managed objects, and nothing else Git owns. Repeatable.")
def serve(cert_dir: Path | None, cert_file: Path | None, key_file: Path | None, port: int, bind_address: str,
          workers: int, threads: int, cache_ttl: float | None, break_glass_group: str, kubeconfig: str | None,
          log_level: str, client_ca_file: Path | None, client_names: tuple[str, ...],
          trusted_controllers: tuple[str, ...]) -> None:
    """Serve /validate, /tenancy, /signatures, /mutate, /healthz, /readyz and /metrics over TLS until SIGTERM."""
    from kubectl_gitops.core.errors import UsageError

    if cache_ttl is not None:
        click.echo(CACHE_TTL_DEPRECATED, err=True)

    if workers > 1:
        _multiprocess_metrics()  # before prometheus_client is first imported (by .app)
    from .app import create_app
    from .serve import ServeOptions, _cluster_callables
    from .serve import serve as run
    from .tenants import shared
    from .trust import shared as shared_trust

    if cert_dir is not None:
        cert_file, key_file = cert_dir / "tls.crt", cert_dir / "tls.key"
    if cert_file is None or key_file is None:
        raise UsageError("give --cert-dir, or both --cert-file and --key-file")
    for path in (cert_file, key_file):
        if not path.is_file():
            raise UsageError(f"{path} does not exist (the webhook needs its serving certificate)")
    if client_names and client_ca_file is None:
        raise UsageError("--client-name needs --client-ca-file (the CA that signs the API server's certificate)")
    if client_ca_file is not None and not client_ca_file.is_file():
        raise UsageError(f"{client_ca_file} does not exist (--client-ca-file: the CA of the API server's "
                         "client certificate)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lookup_factory, fetch = _cluster_callables(0.0, kubeconfig)
    app = create_app(lookup_factory, fetch, break_glass_group=break_glass_group,
                     trusted_controllers=trusted_controllers, tenancy_factory=lambda: shared(kubeconfig),
                     trust_factory=lambda: shared_trust(kubeconfig))
    run(app, ServeOptions(certfile=str(cert_file), keyfile=str(key_file), bind=f"{bind_address}:{port}",
                          workers=workers, threads=threads, loglevel=log_level,
                          client_ca_file=str(client_ca_file) if client_ca_file else None,
                          client_names=client_names))


def _multiprocess_metrics() -> None:
    """Workers share counters through files in a private directory (prometheus_client's
    multiprocess mode); it must be chosen before prometheus_client is imported."""
    import os
    import sys
    import tempfile

    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before multiprocess mode was chosen")
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="kubectl-gitops-webhook-metrics-"))
