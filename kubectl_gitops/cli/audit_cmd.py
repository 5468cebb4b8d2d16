"""`kubectl gitops audit`: admission's rules over the live cluster, for people and for CI.

Scope like kubectl: the context's namespace, `-n NS`, or `-A` (which adds cluster-scoped objects,
ClusterRoleBindings and the webhook's health); `--sync NAME` narrows it to one Sync's objects.
Output as a table, JSON (sorted: two runs diff cleanly), SARIF 2.1.0 or JUnit XML; `--report`
also writes AuditReport objects (`kubectl get auditreports -A`, `kubectl get clusterauditreports`).
Exit code: 0 clean, 1 findings at or above `--fail-on`, 2 when the audit could not run or could
not read part of the cluster. The rules: docs/audit.md.
"""

from __future__ import annotations

import datetime as dt
import socket

import click

from kubectl_gitops import __version__
from kubectl_gitops.cli.common import kube_options, merged

FORMATS = ("table", "json", "sarif", "junit")


@click.command()
@kube_options
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace, cluster-scoped objects and the webhook.")
@click.option("--sync", "sync_name", metavar="NAME", help="Only the objects of this Sync (in the namespace scope).")
@click.option("-o", "--output", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format.")
@click.option("--fail-on", type=click.Choice(("error", "warning")), default="error", show_default=True,
              help="Exit 1 when a finding has at least this severity.")
@click.option("--report", is_flag=True, help="Also write the results as AuditReport objects (replaced each run).")
@click.option("--max-suspended", default="24h", show_default=True, metavar="DURATION",
              help="A Sync suspended longer than this is a finding (e.g. 30m, 24h, 7d).")
@click.pass_context
def audit(ctx: click.Context, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
          all_namespaces: bool, sync_name: str | None, output: str, fail_on: str, report: bool,
          max_suspended: str) -> None:
    """Run the webhook's and the engine's rules over every live object; report what breaks them."""
    from kubectl_gitops.cli.check_webhook import webhook_checks
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.audit import render
    from kubectl_gitops.core.audit.context import Scope
    from kubectl_gitops.core.audit.model import Severity
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine.audit import AuditFailed, run_audit, write_reports

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    if all_namespaces and opts.namespace:
        raise UsageError("audit: give -A or -n, not both")
    threshold = _duration(max_suspended)
    try:
        kube = connect(opts)
        namespaces = None if all_namespaces else frozenset({namespace_of(opts, kube)})
        scope = Scope(namespaces, sync_name or None)
        now = dt.datetime.now(dt.UTC)
        result = run_audit(kube, scope, now=now, max_suspended=threshold, webhook_probe=webhook_checks)
        if report:
            write_reports(kube, result, scope, now=now)
    except AuditFailed:
        raise
    except Exception as err:  # GitOpsError and anything else: the audit did not run; exit 2, never 1
        raise AuditFailed(f"audit failed: {err}") from err
    click.echo(_render(output, result, scope.describe(), now))
    if output != "table":
        click.echo(render.summary_line(result), err=True)
    ctx.exit(result.exit_code(Severity(fail_on)))


def _render(output: str, result: object, scope: str, now: dt.datetime) -> str:
    from kubectl_gitops.core.audit import render
    from kubectl_gitops.core.audit.model import AuditResult

    assert isinstance(result, AuditResult)
    if output == "json":
        return render.to_json(result, scope)
    if output == "sarif":
        return render.sarif(result, __version__)
    if output == "junit":
        return render.junit(result, now=now, hostname=socket.gethostname())
    return render.table(result)


def _duration(text: str) -> dt.timedelta:
    from kubectl_gitops.core.errors import UsageError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = text[:-1], text[-1:]
    if unit not in units or not value.isdigit():
        raise UsageError(f"audit: --max-suspended {text!r} is not a duration (e.g. 30m, 24h, 7d)")
    return dt.timedelta(seconds=int(value) * units[unit])
