"""`kubectl gitops check`: pre-flight, one line per check, non-zero exit when one fails.

Checks run in order and later ones are skipped (and say so) when an earlier one they need
failed: there is no point asking for RBAC when the API server doesn't answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

import click

from kubectl_gitops.cli.common import GlobalOptions, emit, kube_options, merged, output_option
from kubectl_gitops.core.checks import CheckResult, Outcome, client_skew, exit_code, kubectl_skew

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube

MARK = {Outcome.OK: "ok", Outcome.WARN: "warn", Outcome.FAILED: "failed"}


@click.command()
@kube_options
@output_option("json", "yaml")
@click.pass_context
def check(ctx: click.Context, kubeconfig_: str | None, context_: str | None, namespace_: str | None,
          output: str | None) -> None:
    """Check kubectl, the kubeconfig, the API server, versions and permissions."""
    opts = merged(ctx, kubeconfig_, context_, namespace_, output)
    results = run_checks(opts)
    if not emit([r.as_dict() for r in results], opts.output):
        width = max(len(r.name) for r in results)
        for r in results:
            click.echo(f"{MARK[r.outcome]:<7} {r.name:<{width}}  {r.detail}")
    code = exit_code(results)
    if code:
        failed = ", ".join(r.name for r in results if r.outcome is Outcome.FAILED)
        click.echo(f"check failed: {failed}", err=True)
        ctx.exit(code)


def run_checks(opts: GlobalOptions) -> list[CheckResult]:
    results: list[CheckResult] = []
    kubectl_version = _check_kubectl(results)
    kube = _check_kubeconfig(results, opts)
    if kube is None:
        return results
    server = _check_api(results, kube)
    if server is None:
        return results
    import kubernetes

    results.append(client_skew(kubernetes.__version__, server))
    if kubectl_version:
        results.append(kubectl_skew(kubectl_version, server))
    _check_rbac(results, kube)
    from kubectl_gitops.cli.check_webhook import webhook_checks

    results += webhook_checks(kube)
    return results


def _check_kubectl(results: list[CheckResult]) -> str | None:
    path = shutil.which("kubectl")
    if path is None:
        results.append(CheckResult("kubectl", Outcome.FAILED, "kubectl not found on PATH: install kubectl"))
        return None
    try:
        out = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True,
                             timeout=20, check=True)
        version = str(json.loads(out.stdout)["clientVersion"]["gitVersion"])
    except (subprocess.SubprocessError, ValueError, KeyError) as err:
        results.append(CheckResult("kubectl", Outcome.FAILED, f"{path} did not report its version: {err}"))
        return None
    results.append(CheckResult("kubectl", Outcome.OK, f"{version} at {path}"))
    return version


def _check_kubeconfig(results: list[CheckResult], opts: GlobalOptions) -> Kube | None:
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.core.errors import GitOpsError

    try:
        kube = connect(opts)
    except GitOpsError as err:
        results.append(CheckResult("kubeconfig", Outcome.FAILED, str(err)))
        return None
    results.append(CheckResult("kubeconfig", Outcome.OK, f"context {kube.context!r}, server {kube.server}"))
    return kube


def _check_api(results: list[CheckResult], kube: Kube) -> str | None:
    from kubectl_gitops.core.errors import GitOpsError

    try:
        version = str(kube.version().get("gitVersion", "unknown"))
    except GitOpsError as err:
        results.append(CheckResult("API server", Outcome.FAILED, str(err)))
        return None
    results.append(CheckResult("API server", Outcome.OK, f"{kube.server} answered"))
    return version


def _check_rbac(results: list[CheckResult], kube: Kube) -> None:
    from kubectl_gitops.core.errors import GitOpsError

    try:
        allowed, reason = kube.can_i("create", "customresourcedefinitions", "apiextensions.k8s.io")
    except GitOpsError as err:
        results.append(CheckResult("permissions", Outcome.FAILED, f"access review failed: {err}"))
        return
    if allowed:
        results.append(CheckResult("permissions", Outcome.OK, "may create CustomResourceDefinitions"))
    else:
        why = f" ({reason})" if reason else ""
        results.append(CheckResult("permissions", Outcome.FAILED,
                                   f"may not create CustomResourceDefinitions{why}: ask a cluster admin, "
                                   "or use a context with cluster-admin for `kubectl gitops install`"))
