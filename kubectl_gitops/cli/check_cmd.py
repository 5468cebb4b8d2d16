"""`kubectl gitops check`: pre-flight, one line per check, non-zero exit when one fails.

Checks run in order and later ones are skipped (and say so) when an earlier one they need
failed: there is no point asking for RBAC when the API server doesn't answer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

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
    results += impersonation_checks(kube)
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


def impersonation_checks(kube: Kube) -> list[CheckResult]:
    """Bindings that let someone act as an applier (the default one, and every Sync's own)."""
    from kubectl_gitops.constants import DEFAULT_APPLIER_SA, SYSTEM_NAMESPACE
    from kubectl_gitops.core.discovery import ResourceInfo
    from kubectl_gitops.core.errors import GitOpsError
    from kubectl_gitops.core.impersonation import Account, analyse, check_results

    def rbac(kind: str, plural: str, namespaced: bool) -> ResourceInfo:
        return ResourceInfo("rbac.authorization.k8s.io", "v1", kind, plural, namespaced)

    try:
        syncs = _syncs(kube)
        appliers = {Account(SYSTEM_NAMESPACE, DEFAULT_APPLIER_SA)}
        appliers |= {Account(str(s["metadata"].get("namespace", "")), str(s["spec"]["serviceAccountName"]))
                     for s in syncs if (s.get("spec") or {}).get("serviceAccountName")}
        analysis = analyse(cluster_roles=kube.list(rbac("ClusterRole", "clusterroles", False)),
                           roles=kube.list(rbac("Role", "roles", True)),
                           cluster_role_bindings=kube.list(rbac("ClusterRoleBinding", "clusterrolebindings", False)),
                           role_bindings=kube.list(rbac("RoleBinding", "rolebindings", True)),
                           appliers=appliers)
    except GitOpsError as err:
        return [CheckResult("applier impersonation", Outcome.WARN, f"could not read RBAC or Syncs: {err}")]
    return check_results(analysis, len(appliers))


def _syncs(kube: Kube) -> list[dict[str, Any]]:
    from kubectl_gitops.adapters.kube import ApiError
    from kubectl_gitops.engine.record import SYNCS

    try:
        return kube.list(SYNCS)
    except ApiError as err:
        if err.status == 404:  # not installed yet: only the default applier to look at
            return []
        raise
