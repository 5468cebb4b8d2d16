"""`kubectl gitops build NAME [--path DIR] [--offline]`: the YAML a sync would apply, stamps included.

Online, the Sync is read from the cluster (or from `--sync-file`) and built from its source's
revision or from the local directory `--path`. `--offline` (with `--path`) needs no cluster and
no kubeconfig: the Sync comes from `--sync-file` (the Sync object as committed) or from flags,
and the built-in kinds stand in for discovery, so CI can build a pull request.
"""

from __future__ import annotations

from typing import Any

import click

from kubectl_gitops.cli.common import emit, kube_options, merged, output_option
from kubectl_gitops.cli.inspect_common import dump_yaml_stream

JSON = dict[str, Any]


def sync_options(func: Any) -> Any:
    """Where the Sync comes from when it is not read from the cluster (shared with `diff`)."""
    func = click.option("--substitute", multiple=True, metavar="KEY=VALUE",
                        help="With --offline: a substitution variable (repeatable; added to the Sync's).")(func)
    func = click.option("--target-namespace", default=None, help="With --offline: the Sync's targetNamespace.")(func)
    func = click.option("--sync-file", type=click.Path(dir_okay=False), default=None,
                        help="Read the Sync from this YAML file instead of the cluster.")(func)
    func = click.option("--revision", default=None,
                        help="With --path: the revision to stamp (default: the work tree's HEAD).")(func)
    return func


@click.command()
@click.argument("name")
@click.option("--path", "local", default=None, help="Build this local directory instead of the source's revision.")
@click.option("--offline", is_flag=True, help="Build without a cluster (needs --path).")
@sync_options
@kube_options
@output_option("json", "yaml")
@click.pass_context
def build(ctx: click.Context, name: str, local: str | None, offline: bool, revision: str | None,
          sync_file: str | None, target_namespace: str | None, substitute: tuple[str, ...],
          kubeconfig_: str | None, context_: str | None, namespace_: str | None, output: str | None) -> None:
    """Print the objects the Sync NAME would apply, exactly as a sync applies them."""
    from kubectl_gitops.core.errors import UsageError

    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    if offline and not local:
        raise UsageError("--offline needs --path DIR (there is no cluster to fetch the source for)")
    if not offline and (target_namespace or substitute):
        raise UsageError("--target-namespace and --substitute are for --offline builds (online, the Sync's are used)")
    if offline:
        from kubectl_gitops.engine.inspect import offline_render

        sync = offline_sync(name, opts.namespace or "default", sync_file, local or ".", target_namespace, substitute)
        rendered = offline_render(sync, local or ".", revision)
    else:
        from kubectl_gitops.cli.context import connect, namespace_of
        from kubectl_gitops.engine.inspect import Inspector

        kube = connect(opts)
        namespace = namespace_of(opts, kube)
        inspector = Inspector(kube)
        sync = load_sync_file(sync_file, name, namespace) if sync_file else inspector.sync(namespace, name)
        rendered = inspector.render(sync, local, revision)
    if output == "json":
        emit({"apiVersion": "v1", "kind": "List", "items": rendered.objects}, "json")
    else:
        click.echo(dump_yaml_stream(rendered.objects), nl=False)


def load_sync_file(path: str, name: str, namespace: str | None) -> JSON:
    """The Sync NAME from a YAML file (the first Sync in it when it holds only one)."""
    import yaml

    from kubectl_gitops.constants import KIND_SYNC
    from kubectl_gitops.core.errors import UsageError

    try:
        with open(path, encoding="utf-8") as handle:
            docs = [d for d in yaml.safe_load_all(handle) if isinstance(d, dict)]
    except (OSError, yaml.YAMLError) as err:
        raise UsageError(f"--sync-file {path}: {err}") from err
    syncs = [d for d in docs if d.get("kind") == KIND_SYNC]
    named = [d for d in syncs if (d.get("metadata") or {}).get("name") == name]
    if not named:
        raise UsageError(f"--sync-file {path}: no Sync named {name} in it")
    sync = dict(named[0])
    meta = dict(sync.get("metadata") or {})
    meta["namespace"] = meta.get("namespace") or namespace or "default"
    sync["metadata"] = meta
    return sync


def offline_sync(name: str, namespace: str, sync_file: str | None, local: str, target_namespace: str | None,
                 substitute: tuple[str, ...]) -> JSON:
    """The Sync of an offline build: from the file, or made from the flags; flags add to either."""
    from kubectl_gitops.core import resources

    if sync_file:
        sync = load_sync_file(sync_file, name, namespace)
    else:
        sync = resources.sync(name, namespace, "offline", local)
    spec = dict(sync.get("spec") or {})
    if target_namespace:
        spec["targetNamespace"] = target_namespace
    if substitute:
        spec["substitute"] = {**(spec.get("substitute") or {}), **resources.parse_pairs(substitute, "--substitute")}
    sync["spec"] = spec
    return sync
