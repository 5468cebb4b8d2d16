"""`kubectl gitops sign SYNC|PATH --key FILE`: sign every object a Sync's path renders to.

The objects are rendered exactly as the sync renders them (the same renderer, substitution,
targetNamespace and default namespace), so what is signed is what will be applied:

* PATH (an existing local directory): offline, as a Sync with that path would render it, with
  `-n` as the Sync's namespace and `--substitute` values; the cluster-scoped kinds are the
  built-in ones, those the directory's CRDs define and `--cluster-scoped KIND`.
* SYNC (a Sync's name): the Sync's spec read from the cluster (path, targetNamespace, substitute
  and substituteFrom, the API server's kinds), rendered from the local working tree `--repo`
  (default: the current directory), which is where the signatures are written.

Each object's canonical form (core/manifest_sig.py) is signed with the SSH private key (SSHSIG,
namespace kubectl-gitops-manifest, as `ssh-keygen -Y sign` makes) and the signatures are written to
`.gitops-signatures.yaml` in the path, to be committed with the manifests and reviewed in the PR.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from kubectl_gitops.cli.common import kube_options, merged

JSON = dict[str, Any]

BUILTIN_CLUSTER_SCOPED = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"), ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"), ("networking.k8s.io", "IngressClass"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("certificates.k8s.io", "CertificateSigningRequest"), ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("kubectl-gitops.dev", "Tenant"), ("kubectl-gitops.dev", "TrustPolicy"),
})


@dataclass(frozen=True)
class Rendered:
    objects: list[JSON]
    directory: Path
    """The Sync path's directory: where the signatures file lives."""


def render_target(ctx: click.Context, target: str, *, repo: Path | None, namespace: str | None,
                  kubeconfig_: str | None, context_: str | None, substitute: tuple[str, ...],
                  cluster_scoped: tuple[str, ...]) -> Rendered:
    """The objects `target` (a directory, or else a Sync's name) renders to, as the sync renders them."""
    if Path(target).is_dir():
        given = merged(ctx, kubeconfig_, context_, namespace).namespace  # -n before or after the command
        return _render_path(Path(target), given or "default", _pairs(substitute), cluster_scoped)
    if "/" in target or target in (".", ".."):
        from kubectl_gitops.core.errors import UsageError

        raise UsageError(f"{target}: no such directory (give a directory, or a Sync's name)")
    return _render_sync(ctx, target, repo or Path("."), namespace, kubeconfig_, context_)


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    from kubectl_gitops.core.errors import UsageError

    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--substitute {value!r}: expected KEY=VALUE")
        out[key] = rest
    return out


def _root_of(directory: Path) -> Path:
    """The repository holding `directory` (so `../base` references resolve as in the sync), else itself."""
    for parent in (directory, *directory.parents):
        if (parent / ".git").exists():
            return parent
    return directory


def _render_path(directory: Path, namespace: str, variables: dict[str, str], extra: tuple[str, ...]) -> Rendered:
    from kubectl_gitops.adapters.render import render
    from kubectl_gitops.core import manifests as mf
    from kubectl_gitops.core.objects import split_api_version

    directory = directory.resolve()
    root = _root_of(directory)
    manifests = render(root, str(directory.relative_to(root)) or ".", variables, strict=False)
    named = set(BUILTIN_CLUSTER_SCOPED)
    plain = set()
    for value in extra:
        kind, _, group = value.partition(".")
        if group:
            named.add((group, kind))
        else:
            plain.add(kind)

    def namespaced(api_version: str, kind: str) -> bool | None:
        return kind not in plain and (split_api_version(api_version)[0], kind) not in named

    scope = mf.with_crds(manifests, namespaced)
    manifests = mf.default_namespace(manifests, namespace, lambda a, k: bool(scope(a, k)))
    mf.check_duplicates(manifests)
    return Rendered([m.obj for m in manifests], directory)


def _render_sync(ctx: click.Context, name: str, repo: Path, namespace: str | None, kubeconfig_: str | None,
                 context_: str | None) -> Rendered:
    from kubectl_gitops.adapters.render import resolve_path
    from kubectl_gitops.cli.context import connect, namespace_of
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.spec import parse_sync
    from kubectl_gitops.engine.reconcile import Engine
    from kubectl_gitops.engine.source import Tree

    if not repo.is_dir():
        raise UsageError(f"--repo {repo}: not a directory (the local working tree of the Sync's repository)")
    opts = merged(ctx, kubeconfig_, context_, namespace)
    kube = connect(opts)
    engine = Engine(kube)
    spec = parse_sync(engine.get_sync(namespace_of(opts, kube), name))
    root = repo.resolve()
    objects = engine._build(spec, Tree(root, "local", ""))
    directory = resolve_path(root, spec.path)
    return Rendered(objects, directory if directory.is_dir() else directory.parent)


def target_options(func: Any) -> Any:
    func = click.option("--cluster-scoped", "cluster_scoped", multiple=True, metavar="KIND[.GROUP]",
                        help="PATH: a cluster-scoped kind (besides the built-in ones and the path's CRDs).")(func)
    func = click.option("--substitute", multiple=True, metavar="KEY=VALUE",
                        help="PATH: a ${KEY} substitution value, as a Sync's spec.substitute.")(func)
    func = click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="SYNC: the local working tree of the Sync's repository (default: .).")(func)
    return func


@click.command()
@click.argument("target", metavar="SYNC|PATH")
@click.option("--key", "key_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The OpenSSH private key to sign with (ed25519, ECDSA or RSA; not passphrase-protected).")
@target_options
@kube_options
@click.pass_context
def sign(ctx: click.Context, target: str, key_file: Path, repo: Path | None, substitute: tuple[str, ...],
         cluster_scoped: tuple[str, ...], kubeconfig_: str | None, context_: str | None,
         namespace_: str | None) -> None:
    """Sign each object SYNC or PATH renders to; write PATH/.gitops-signatures.yaml."""
    from kubectl_gitops.adapters import keys
    from kubectl_gitops.core import manifest_sig as ms
    from kubectl_gitops.core.objects import ref_of

    public = keys.public_line(key_file)  # a bad key fails before anything is rendered
    rendered = render_target(ctx, target, repo=repo, namespace=namespace_, kubeconfig_=kubeconfig_,
                             context_=context_, substitute=substitute, cluster_scoped=cluster_scoped)
    entries = []
    for obj in rendered.objects:
        data = ms.canonical(obj)
        signature = keys.sign(data, key_file, ms.SSHSIG_NAMESPACE)
        entries.append(ms.Entry(ms.object_id(obj), ref_of(obj).display, ms.digest(data), public.fingerprint,
                                signature))
    out = rendered.directory / ms.SIGNATURES_FILE
    out.write_text(ms.render_file(entries))
    click.echo(f"✔ signed {len(entries)} object(s) with {public.fingerprint}: {out}")
