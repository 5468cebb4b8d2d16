"""The chart renderer a Sync with `spec.chart` builds with, instead of kustomize.

The reconcile calls `render_chart` where it would fetch the GitSource and build the path, and gets
back what any build gives it (stamped objects and a revision) plus the chart's hooks. From there
the pipeline is the same one: staged server-side apply, prune, health, status, history, drift
guard. Here: find the chart (a HelmRepository, fetched through the digest cache, or a chart
directory in a GitSource's revision), merge the values (valuesFrom in order, then inline values),
run the pinned `helm template` with the cluster's kube version and API versions, and split the
stream into release objects, crds/ CRDs (installCRDs policy) and hooks (engine/helm_hooks.py).

A failure anywhere here is a SourceFailed or BuildFailed naming the chart, the version and (for
helm's own errors) the template; it happens before anything is written, so nothing is applied.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_gitops.adapters.helm import (
    ChartRepository,
    FetchedChart,
    RepoAuth,
    TemplateRequest,
    chart_metadata,
    load_auth,
    template,
)
from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.adapters.render import resolve_path
from kubectl_gitops.constants import (
    ANNOTATION_PRUNE,
    GROUP,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
    PRUNE_DISABLED,
    VERSION,
)
from kubectl_gitops.core import helm as core
from kubectl_gitops.core import lockdown
from kubectl_gitops.core import manifests as mf
from kubectl_gitops.core.discovery import CONFIGMAPS, SECRETS, ResourceInfo, ResourceMap
from kubectl_gitops.core.errors import BuildFailed, GitOpsError, SourceFailed
from kubectl_gitops.core.manifests import Manifest
from kubectl_gitops.core.plan import stamp
from kubectl_gitops.core.spec import InvalidSpec, SyncSpec
from kubectl_gitops.core.substitute import mask
from kubectl_gitops.engine import record
from kubectl_gitops.engine.helm_hooks import HookRunner
from kubectl_gitops.engine.source import Tree

if TYPE_CHECKING:
    from kubectl_gitops.engine.reconcile import Engine, _Run

JSON = dict[str, Any]
HELM_REPOSITORIES = ResourceInfo(GROUP, VERSION, core.KIND_HELM_REPOSITORY, "helmrepositories", True)
CRDS = ResourceInfo("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False)


@dataclass(frozen=True)
class ChartBuild:
    """What the reconcile needs from a chart: the revision, the stamped objects, and the hooks."""

    revision: str
    desired: list[JSON]
    hooks: HookRunner | None


@dataclass(frozen=True)
class _Chart:
    name: str
    version: str
    path: Path
    identity: str
    """The content's identity for the render cache: the archive digest, or commit and path."""
    git_revision: str = ""


def render_chart(engine: Engine, run: _Run, tree: Tree | None = None) -> ChartBuild:
    """Resolve, render and split the Sync's chart (nothing is written to the cluster here).

    `tree`: a local work tree to take a GitSource chart from instead of the fetched revision (for
    `build`/`diff` of uncommitted changes)."""
    spec = run.spec
    assert spec.chart is not None
    reader = engine.kube.impersonating(engine._impersonate(engine.identity(spec, run.scope)))
    with _chart(engine, run, tree) as chart:
        try:
            values, secrets = merged_values(reader, spec)
        except BuildFailed as err:
            raise BuildFailed(f"chart {chart.name} {chart.version}: {err}") from None
        run.secrets = (*run.secrets, *secrets)
        digest = core.values_digest(values)
        revision = core.revision(chart.name, chart.version, digest, chart.git_revision)
        run.revision = revision
        resources = engine.resources(refresh=True)
        upgrade = bool((run.obj.get("status") or {}).get("lastAppliedRevision"))
        text = template(TemplateRequest(
            chart=chart.path, chart_name=chart.name, version=chart.version, release=release_name(spec),
            namespace=release_namespace(spec), values=values, kube_version=_kube_version(engine.kube),
            api_versions=api_versions(resources), include_crds=spec.chart.install_crds != "Skip",
            upgrade=upgrade, hooks=not spec.chart.disable_hooks, identity=chart.identity), timeout=spec.timeout,
            limits=engine.fetcher.policy.limits, slot=spec.key)
    try:
        rendered = core.split_rendered(text, f"{chart.name}-{chart.version}", engine.fetcher.policy.limits)
        mf.validate([*rendered.objects, *rendered.crds, *(h.manifest for h in rendered.hooks)])
    except BuildFailed as err:
        raise BuildFailed(f"chart {chart.name} {chart.version}: {err}") from None
    crds = _crds(engine.kube, spec, rendered.crds)
    desired = _settle(spec, [*crds, *rendered.objects], resources, revision, chart)
    hooks = None
    if rendered.hooks and revision != _last_applied(run.obj):
        event = "upgrade" if upgrade else "install"
        hook_objs = _settle_hooks(spec, rendered.hooks, resources, chart)
        hooks = HookRunner(hook_objs, event, spec, _last_applied(run.obj))
    return ChartBuild(revision, desired, hooks)


def release_name(spec: SyncSpec) -> str:
    assert spec.chart is not None
    return spec.chart.release_name or spec.name


def release_namespace(spec: SyncSpec) -> str:
    return spec.target_namespace or spec.namespace


def api_versions(resources: ResourceMap) -> list[str]:
    """`--api-versions` as Helm's own client sends them: every group/version and group/version/Kind."""
    out: set[str] = set()
    for info in resources.all():
        out.add(info.api_version)
        out.add(f"{info.api_version}/{info.kind}")
    return sorted(out)


def _kube_version(kube: Kube) -> str:
    version = kube.version()
    return str(version.get("gitVersion") or f"v{version.get('major')}.{version.get('minor')}.0").split("+")[0]


def _last_applied(obj: JSON) -> str:
    return str((obj.get("status") or {}).get("lastAppliedRevision") or "")


# ---------------------------------------------------------------- where the chart comes from

@contextmanager
def _chart(engine: Engine, run: _Run, local: Tree | None = None) -> Iterator[_Chart]:
    spec = run.spec
    assert spec.chart is not None
    if spec.source_kind == core.KIND_HELM_REPOSITORY:
        scope = run.scope

        def check(repo: core.HelmRepoSpec) -> None:
            """A tenant's chart repository must match its Tenant's sourceURLs, before any request."""
            if scope is not None:
                lockdown.raise_if(scope.tenant, spec.key, [
                    replace(v, what=f"HelmRepository {repo.key}")
                    for v in lockdown.check_url(scope.tenant, repo.key, repo.url)], "before fetching")

        fetched = fetch_from_repository(engine.kube, spec.namespace, spec.source_name, spec.chart, check)
        run.secrets = (*run.secrets, *fetched[1])
        chart = fetched[0]
        yield _Chart(chart.name, chart.version, chart.path, chart.digest)
        return
    if local is not None:
        yield _chart_in(spec, local)
        return
    source_obj, policy = engine._source(spec, run.scope)
    with engine.fetcher.checkout(source_obj, policy, pin=spec.revision) as tree:
        run.secrets = (*run.secrets, *engine.fetcher.secrets)
        yield _chart_in(spec, tree)


def _chart_in(spec: SyncSpec, tree: Tree) -> _Chart:
    """The chart directory at spec.path of a Git tree."""
    assert spec.chart is not None
    directory = resolve_path(tree.path, spec.path)
    where = f"GitSource {spec.namespace}/{spec.source_name} path {spec.path} ({tree.revision})"
    if not directory.is_dir():
        raise BuildFailed(f"{where}: not a chart directory")
    name, version = chart_metadata(directory, where)
    if spec.chart.name and spec.chart.name != name:
        raise BuildFailed(f"{where}: the chart there is {name!r}, not {spec.chart.name!r} (spec.chart.name)")
    return _Chart(name, version, directory, f"git:{tree.sha}:{spec.path}" if tree.sha else "", tree.revision)


def fetch_from_repository(kube: Kube, namespace: str, name: str, chart: core.ChartSpec,
                          check: Callable[[core.HelmRepoSpec], None] = lambda _r: None) -> tuple[
        FetchedChart, tuple[str, ...]]:
    """Fetch through the cache; the HelmRepository's status records the outcome either way.
    `check` vets the repository before any request (a tenant's sourceURLs)."""
    obj = kube.get(HELM_REPOSITORIES, name, namespace)
    if obj is None:
        raise SourceFailed(f"HelmRepository {namespace}/{name} not found")
    try:
        repo = core.parse_helm_repository(obj)
    except InvalidSpec as err:
        raise SourceFailed(str(err)) from None
    if repo.suspend:
        raise SourceFailed(f"HelmRepository {repo.key} is suspended")
    check(repo)
    auth = _auth(kube, repo)
    try:
        fetched = ChartRepository(repo, auth).fetch(chart.name, chart.version)
    except GitOpsError as err:
        message = mask(str(err), auth.secrets())
        _record(kube, obj, repo, None, message)
        raise SourceFailed(message) from None
    _record(kube, obj, repo, fetched, "")
    return fetched, auth.secrets()


def _auth(kube: Kube, repo: core.HelmRepoSpec) -> RepoAuth:
    if not repo.secret_name:
        return RepoAuth()
    secret = kube.get(SECRETS, repo.secret_name, repo.namespace)
    if secret is None:
        raise SourceFailed(f"HelmRepository {repo.key}: secret {repo.namespace}/{repo.secret_name} "
                           "(spec.secretRef) not found")
    try:
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
    except ValueError as err:
        raise SourceFailed(f"HelmRepository {repo.key}: secret {repo.secret_name} holds data that is not "
                           f"base64: {err}") from None
    return load_auth(data)


def _record(kube: Kube, obj: JSON, repo: core.HelmRepoSpec, fetched: FetchedChart | None, error: str) -> None:
    """HelmRepository status (best effort: the Sync's record is the truth)."""
    generation = int((obj.get("metadata") or {}).get("generation") or 0)
    old = obj.get("status") or {}
    ok = fetched is not None
    if fetched is not None and _unchanged(old, fetched, generation):
        return  # a no-change re-sync writes nothing here
    message = (f"fetched chart {fetched.name} {fetched.version} ({fetched.digest})" if fetched else error)
    status: JSON = {"observedGeneration": generation,
                    "conditions": record.conditions_for(old.get("conditions"), ready=ok,
                                                        reason="Succeeded" if ok else "SourceFailed",
                                                        message=message[:1024], generation=generation,
                                                        at=record.now())}
    if fetched is not None:
        status["artifact"] = {"chart": fetched.name, "version": fetched.version, "digest": fetched.digest,
                              "lastUpdateTime": record.now().strftime("%Y-%m-%dT%H:%M:%SZ")}
    with suppress(GitOpsError):
        record.patch_status(kube, HELM_REPOSITORIES, repo.namespace, repo.name, status)


def _unchanged(old: JSON, fetched: FetchedChart, generation: int) -> bool:
    artifact = old.get("artifact") or {}
    ready = [c for c in old.get("conditions") or [] if c.get("type") == "Ready"]
    return (old.get("observedGeneration") == generation and bool(ready) and ready[0].get("status") == "True"
            and (artifact.get("chart"), artifact.get("version"), artifact.get("digest"))
            == (fetched.name, fetched.version, fetched.digest))


# ---------------------------------------------------------------- values

def merged_values(reader: Kube, spec: SyncSpec) -> tuple[dict[str, Any], tuple[str, ...]]:
    """valuesFrom in order, then the inline values on top; and the values read from Secrets."""
    assert spec.chart is not None
    values: dict[str, Any] = {}
    secrets: list[str] = []
    for ref in spec.chart.values_from:
        info = SECRETS if ref.kind == "Secret" else CONFIGMAPS
        try:
            obj = reader.get(info, ref.name, spec.namespace)
        except ApiError as err:
            raise BuildFailed(f"valuesFrom {ref.display}: {err}") from None
        text = _key(obj, ref)
        if text is None:
            if ref.optional:
                continue
            what = "not found" if obj is None else f"has no key {ref.values_key!r}"
            raise BuildFailed(f"valuesFrom {ref.kind} {spec.namespace}/{ref.name} {what}")
        if ref.kind == "Secret":
            secrets.append(text)
        if ref.target_path:
            layer = core.at_path(core.target_parts(ref.target_path, ref.display), core.scalar(text.strip()))
        else:
            layer = core.parse_values(text, f"valuesFrom {ref.kind} {spec.namespace}/{ref.name} key {ref.values_key}")
        values = core.merge_values(values, layer)
    return core.merge_values(values, spec.chart.values), tuple(secrets)


def _key(obj: JSON | None, ref: core.ValuesFrom) -> str | None:
    if obj is None:
        return None
    if ref.kind == "Secret":
        raw = (obj.get("data") or {}).get(ref.values_key)
        return None if raw is None else base64.b64decode(raw).decode(errors="replace")
    data = obj.get("data") or {}
    return None if ref.values_key not in data else str(data[ref.values_key])


# ---------------------------------------------------------------- objects

def _crds(kube: Kube, spec: SyncSpec, crds: tuple[Manifest, ...]) -> list[Manifest]:
    """The chart's crds/ CRDs under the installCRDs policy. Helm never deletes them, so neither do we
    (prune disabled); `Create` leaves alone those that exist already, `CreateReplace` applies them."""
    assert spec.chart is not None
    out = []
    for manifest in crds:
        if spec.chart.install_crds == "Create" and manifest.obj.get("kind") == "CustomResourceDefinition":
            name = str((manifest.obj.get("metadata") or {}).get("name") or "")
            live = kube.get(CRDS, name)
            if live is not None and not _ours(live, spec):
                continue
        obj = dict(manifest.obj)
        meta = dict(obj.get("metadata") or {})
        meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_PRUNE: PRUNE_DISABLED}
        obj["metadata"] = meta
        out.append(manifest.replace_obj(obj))
    return out


def _ours(live: JSON, spec: SyncSpec) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(LABEL_SYNC) == spec.name and labels.get(LABEL_SYNC_NAMESPACE) == spec.namespace)


def _settle(spec: SyncSpec, manifests: list[Manifest], resources: ResourceMap, revision: str,
            chart: _Chart) -> list[JSON]:
    """Known kinds, namespaces defaulted to the release's, no duplicates; then stamped."""
    try:
        mf.check_known_kinds(manifests, resources.namespaced)
        scope = mf.with_crds(manifests, resources.namespaced)
        manifests = mf.default_namespace(manifests, release_namespace(spec), lambda a, k: bool(scope(a, k)))
        mf.check_duplicates(manifests)
    except BuildFailed as err:
        raise BuildFailed(f"chart {chart.name} {chart.version}: {err}") from None
    return [stamp(m.obj, spec.name, spec.namespace, revision) for m in manifests]


def _settle_hooks(spec: SyncSpec, hooks: tuple[core.Hook, ...], resources: ResourceMap,
                  chart: _Chart) -> list[core.Hook]:
    out = []
    for hook in hooks:
        namespaced = resources.namespaced(str(hook.obj.get("apiVersion")), str(hook.obj.get("kind")))
        if namespaced is None:
            raise BuildFailed(f"chart {chart.name} {chart.version}: {hook.manifest.location}: hook kind "
                              f"{hook.obj.get('kind')} ({hook.obj.get('apiVersion')}) is not served by the API server")
        obj = dict(hook.obj)
        meta = dict(obj.get("metadata") or {})
        if namespaced and not meta.get("namespace"):
            meta["namespace"] = release_namespace(spec)
        obj["metadata"] = meta
        out.append(core.Hook(hook.manifest.replace_obj(obj), hook.events, hook.weight, hook.delete_policies))
    return out
