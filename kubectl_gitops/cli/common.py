"""Options every command shares, spelled the way kubectl spells them.

kubectl passes a plugin's arguments through verbatim, so users write the common flags both
before and after the subcommand (`kubectl gitops --context x get syncs` and `kubectl gitops get
syncs --context x`); `kube_options` accepts them in both places, the command's own value winning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GlobalOptions:
    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    debug: bool = False
    output: str | None = None
    all_namespaces: bool = False


def kube_options(func: F) -> F:
    """Add --kubeconfig, --context and -n/--namespace to a command."""
    func = click.option("-n", "--namespace", "namespace_", help="The namespace scope for this request.")(func)
    func = click.option("--context", "context_", help="The kubeconfig context to use.")(func)
    func = click.option("--kubeconfig", "kubeconfig_", help="Path to the kubeconfig file.")(func)
    return func


def output_option(*choices: str) -> Callable[[F], F]:
    return click.option("-o", "--output", type=click.Choice(list(choices)), default=None,
                        help="Output format.")


def merged(ctx: click.Context, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
           output: str | None = None) -> GlobalOptions:
    base = ctx.find_object(GlobalOptions) or GlobalOptions()
    return replace(base, kubeconfig=kubeconfig_ or base.kubeconfig, context=context_ or base.context,
                   namespace=namespace_ or base.namespace, output=output)


def emit(data: Any, output: str | None) -> bool:
    """Print `data` as json or yaml if asked; returns False when the caller should print text."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
        return True
    if output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
        return True
    return False
