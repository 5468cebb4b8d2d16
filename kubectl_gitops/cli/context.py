"""Connect to the cluster the user named (kubeconfig, context, namespace), once per command."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kubectl_gitops.cli.common import GlobalOptions

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube


def connect(opts: GlobalOptions) -> Kube:
    from kubectl_gitops.adapters.kube import Kube, Target
    from kubectl_gitops.core.spec import parse_duration

    kube = Kube.connect(Target(opts.kubeconfig, opts.context))
    if opts.request_timeout:
        kube.timeout = parse_duration(opts.request_timeout, 30.0, "--request-timeout")
    return kube


def namespace_of(opts: GlobalOptions, kube: Kube) -> str:
    """-n wins, then the kubeconfig context's namespace, then "default" (kubectl's rule)."""
    return opts.namespace or kube.default_namespace or "default"
