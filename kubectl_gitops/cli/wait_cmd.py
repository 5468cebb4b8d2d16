"""`kubectl gitops wait NAME --for ready|healthy [--timeout 5m]`: block until a Sync gets there.

Met means the condition (Ready, or Healthy) is True for the Sync's current generation, so a wait
started right after a spec change never succeeds on the previous spec's status. A Stalled Sync
fails at once (it won't get there without a change), and the timeout says where it stood.
Exit 0 when met, 1 on failure or timeout.
"""

from __future__ import annotations

import time

import click

from kubectl_gitops.cli.common import kube_options, merged

POLL_SECONDS = 1.0


@click.command()
@click.argument("name")
@click.option("--for", "wanted", type=click.Choice(["ready", "healthy"]), default="ready", show_default=True,
              help="The condition to wait for.")
@click.option("--timeout", default="5m", show_default=True, help="Give up after this long (e.g. 30s, 5m).")
@kube_options
@click.pass_context
def wait(ctx: click.Context, name: str, wanted: str, timeout: str, kubeconfig_: str | None, context_: str | None,
         namespace_: str | None) -> None:
    """Wait until the Sync NAME is ready (or healthy) at its current generation."""
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.core.inspect import judge
    from kubectl_gitops.core.spec import format_duration, parse_duration
    from kubectl_gitops.engine.history import load_sync

    seconds = parse_duration(timeout, 300.0, "--timeout")
    opts = merged(ctx, kubeconfig_, context_, namespace_)
    kube = connect(opts)
    namespace = namespace_of(opts, kube)
    deadline = time.monotonic() + seconds
    where = f"Sync {namespace}/{name}"
    while True:
        verdict = judge(load_sync(kube, namespace, name), wanted)
        if verdict.done:
            click.echo(f"{where} is {wanted}: {verdict.why}")
            return
        if verdict.failed:
            raise GitOpsError(f"{where} will not become {wanted}: {verdict.why}")
        if time.monotonic() >= deadline:
            raise GitOpsError(f"timed out after {format_duration(seconds)} waiting for {where} to be {wanted}: "
                              f"{verdict.why}")
        time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.05)))
