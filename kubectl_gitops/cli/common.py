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
    request_timeout: str | None = None


def _remember_timeout(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        base = ctx.find_object(GlobalOptions) or GlobalOptions()
        ctx.obj = replace(base, request_timeout=value)
    return value


def kube_options(func: F) -> F:
    """Add --kubeconfig, --context, -n/--namespace and --request-timeout to a command."""
    func = click.option("--request-timeout", expose_value=False, callback=_remember_timeout,
                        help="Give up on a single API request after this long (e.g. 5s, 1m).")(func)
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
