"""`kubectl gitops version`: the plugin's version, and the server's when a cluster answers."""

from __future__ import annotations

import click

from kubectl_gitops import __version__
from kubectl_gitops.cli.common import emit, kube_options, merged, output_option


@click.command()
@kube_options
@output_option("json", "yaml")
@click.option("--client", is_flag=True, help="Client version only; don't contact a server.")
@click.pass_context
def version(ctx: click.Context, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
            output: str | None, client: bool) -> None:
    """Print the plugin version, and the server version when a cluster is reachable."""
    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    data: dict[str, object] = {"clientVersion": {"gitVersion": f"v{__version__}"}}
    server_error = ""
    if not client:
        from kubectl_gitops.cli.context import connect
        from kubectl_gitops.core.errors import GitOpsError

        try:
            kube = connect(opts)
            data["serverVersion"] = kube.version()
        except GitOpsError as err:
            server_error = str(err)
    if emit(data, opts.output):
        return
    click.echo(f"Client Version: v{__version__}")
    server = data.get("serverVersion")
    if isinstance(server, dict):
        click.echo(f"Server Version: {server.get('gitVersion')}")
    elif server_error:
        click.echo(f"Server Version: unavailable ({server_error})", err=True)
