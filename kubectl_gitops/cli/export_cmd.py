"""`kubectl gitops export sync|source NAME | --all`: the objects as YAML to commit to Git.

Only what a person declares is kept (apiVersion, kind, name, namespace, user labels and
annotations, spec): no status, no server metadata, no managedFields, no annotations of kubectl or
of the engine (core/inspect.py `clean`), so applying the export elsewhere recreates the object.
"""

from __future__ import annotations

import click

from kubectl_gitops.cli.common import kube_options, merged

KINDS = {"sync": "syncs", "syncs": "syncs", "source": "sources", "sources": "sources", "gitsource": "sources",
         "gitsources": "sources"}


@click.command()
@click.argument("what", type=click.Choice(sorted(KINDS)))
@click.argument("name", required=False)
@click.option("--all", "all_", is_flag=True, help="Every one in the namespace.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Output format.")
@kube_options
@click.pass_context
def export(ctx: click.Context, what: str, name: str | None, all_: bool, output: str, kubeconfig_: str | None,
           context_: str | None, namespace_: str | None) -> None:
    """Print a Sync or GitSource (or --all of them) as clean YAML to commit."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import GitOpsError, UsageError
    from kubectl_gitops.core.inspect import clean
    from kubectl_gitops.engine.record import SOURCES, SYNCS, require_installed

    if bool(name) == all_:
        raise UsageError("give a NAME or --all (not both)")
    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    info = SYNCS if KINDS[what] == "syncs" else SOURCES
    if name:
        found = kube.get(info, name, namespace)
        if found is None:
            require_installed(kube)
            raise GitOpsError(f"{info.kind} {namespace}/{name} not found")
        items = [found]
    else:
        require_installed(kube)
        items = sorted(kube.list(info, namespace=namespace), key=lambda o: str(o["metadata"]["name"]))
    cleaned = [clean({"apiVersion": info.api_version, "kind": info.kind, **o}) for o in items]
    if output == "json":
        import json

        click.echo(json.dumps(cleaned[0] if name else {"apiVersion": "v1", "kind": "List", "items": cleaned},
                              indent=2))
        return
    import yaml

    if not cleaned:
        click.echo(f"No {info.kind} resources found in {namespace} namespace.", err=True)
        return
    click.echo("---\n" + "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in cleaned), nl=False)
