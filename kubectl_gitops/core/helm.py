"""Helm charts as a Sync's source of objects: the pure rules (spec, values, index, hooks, revision).

A chart is rendered by the pinned `helm template` (adapters/helm.py) and its objects then go
through the same pipeline as a kustomization's: stamps, staged server-side apply, prune, health,
status, history and the drift guard. Everything here is strings and mappings in, frozen values
out, so the decisions users see (which version a range picks, which values win, which hook runs
when, what the revision string says) are unit tested without a cluster, a network or helm.

Release shape: a Sync with a `spec.chart` section (docs/helm.md says why not a separate kind).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from kubectl_gitops.core.errors import BuildFailed, SourceFailed
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits
from kubectl_gitops.core.manifests import Manifest, parse_documents
from kubectl_gitops.core.semver import best_match, parse_version
from kubectl_gitops.core.spec import InvalidSpec, parse_duration

KIND_HELM_REPOSITORY = "HelmRepository"
CRD_POLICIES = ("Create", "CreateReplace", "Skip")
HOOK_ANNOTATION = "helm.sh/hook"
HOOK_WEIGHT = "helm.sh/hook-weight"
HOOK_DELETE_POLICY = "helm.sh/hook-delete-policy"
HOOK_EVENTS = ("pre-install", "post-install", "pre-upgrade", "post-upgrade")
"""The hook events a sync runs; the others (delete, rollback, test) are never run (docs/helm.md)."""
DELETE_POLICIES = ("before-hook-creation", "hook-succeeded", "hook-failed")
OCI_CHART_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_RELEASE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SOURCE_LINE = re.compile(r"^# Source: (.+)$", re.MULTILINE)
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_CRDS_DIR = re.compile(r"(^|/)crds/")
_TARGET_PART = re.compile(r"^[A-Za-z0-9_-]+$")


# ---------------------------------------------------------------- the spec

@dataclass(frozen=True)
class ValuesFrom:
    """One `chart.valuesFrom` entry: a ConfigMap's or Secret's key, merged whole or set at a path."""

    kind: str
    name: str
    values_key: str = "values.yaml"
    target_path: str = ""
    optional: bool = False

    @property
    def display(self) -> str:
        return f"{self.kind} {self.name} key {self.values_key}"


@dataclass(frozen=True)
class ChartSpec:
    """A Sync's `spec.chart`: which chart, which version (exact or a semver range) and how to render it."""

    name: str
    version: str = "*"
    release_name: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    values_from: tuple[ValuesFrom, ...] = ()
    install_crds: str = "Create"
    disable_hooks: bool = False


@dataclass(frozen=True)
class HelmRepoSpec:
    """A HelmRepository: an HTTP(S) chart repository (index.yaml) or an OCI registry (`oci://`)."""

    name: str
    namespace: str
    url: str
    interval: float
    timeout: float
    secret_name: str = ""
    insecure: bool = False
    """HTTP repositories: allow credentials over http://. OCI: talk plain HTTP to the registry."""
    suspend: bool = False

    @property
    def oci(self) -> bool:
        return self.url.startswith("oci://")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def parse_chart(raw: Any, where: str) -> ChartSpec | None:
    """`spec.chart` of a Sync, or None when there is none."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where}: spec.chart must be an object")
    name = str(raw.get("name") or "")
    if name and not _NAME.match(name):
        raise InvalidSpec(f"{where}: spec.chart.name {name!r} is not a chart name")
    release = str(raw.get("releaseName") or "")
    if release and (len(release) > 53 or not _RELEASE.match(release)):
        raise InvalidSpec(f"{where}: spec.chart.releaseName {release!r} is not a release name "
                          "(lowercase DNS-1123, at most 53 characters, as in Helm)")
    values = raw.get("values") or {}
    if not isinstance(values, Mapping):
        raise InvalidSpec(f"{where}: spec.chart.values must be a mapping")
    crds = str(raw.get("installCRDs") or "Create")
    if crds not in CRD_POLICIES:
        raise InvalidSpec(f"{where}: spec.chart.installCRDs must be one of {', '.join(CRD_POLICIES)}, not {crds!r}")
    return ChartSpec(name=name, version=str(raw.get("version") or "*"), release_name=release,
                     values=dict(values), values_from=_values_from(raw.get("valuesFrom"), where),
                     install_crds=crds, disable_hooks=bool(raw.get("disableHooks", False)))


def _values_from(raw: Any, where: str) -> tuple[ValuesFrom, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidSpec(f"{where}: spec.chart.valuesFrom must be a list")
    out = []
    for i, entry in enumerate(raw):
        at = f"{where}: spec.chart.valuesFrom[{i}]"
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise InvalidSpec(f"{at}: needs a kind (ConfigMap or Secret) and a name")
        kind = str(entry.get("kind") or "ConfigMap")
        if kind not in ("ConfigMap", "Secret"):
            raise InvalidSpec(f"{at}: kind must be ConfigMap or Secret, not {kind!r}")
        target = str(entry.get("targetPath") or "")
        if target:
            target_parts(target, at)
        out.append(ValuesFrom(kind, str(entry["name"]), str(entry.get("valuesKey") or "values.yaml"), target,
                              bool(entry.get("optional", False))))
    return tuple(out)


def parse_helm_repository(obj: Mapping[str, Any]) -> HelmRepoSpec:
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
    spec = obj.get("spec") or {}
    where = f"HelmRepository {namespace}/{name}"
    url = str(spec.get("url") or "").rstrip("/")
    if not re.match(r"^(https?|oci)://[^/\s]+", url):
        raise InvalidSpec(f"{where}: spec.url must be an http://, https:// or oci:// URL, not {url!r}")
    return HelmRepoSpec(name, namespace, url,
                        parse_duration(spec.get("interval"), 600.0, f"{where}: spec.interval"),
                        parse_duration(spec.get("timeout"), 60.0, f"{where}: spec.timeout"),
                        str((spec.get("secretRef") or {}).get("name") or ""),
                        bool(spec.get("insecure", False)), bool(spec.get("suspend", False)))


# ---------------------------------------------------------------- values

def target_parts(path: str, where: str) -> list[str]:
    """`a.b.c` into its keys; `\\.` keeps a dot inside a key (as Helm's --set does)."""
    parts = [p.replace("\x00", ".") for p in path.replace("\\.", "\x00").split(".")]
    if not all(_TARGET_PART.match(p) or (p and "." in p) for p in parts):
        raise InvalidSpec(f"{where}: targetPath {path!r} must be keys separated by dots")
    return parts


def parse_values(text: str, what: str) -> dict[str, Any]:
    """A values document: YAML that must be a mapping (empty is {})."""
    try:
        loaded = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as err:
        raise BuildFailed(f"{what}: invalid YAML: {err}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise BuildFailed(f"{what}: values must be a mapping (key: value), not a {_type_name(loaded)}")
    return loaded


def _type_name(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "scalar")


def merge_values(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of one values file over another: mappings merge key by key, anything else
    (lists included) is replaced by the overlay's; neither input is changed."""
    out: dict[str, Any] = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = value
    return out


def scalar(text: str) -> Any:
    """A targetPath value the way `helm --set` reads one: true/false, integers, else the string."""
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?[1-9][0-9]{0,17}|0", text):
        return int(text)
    return text


def at_path(path: Sequence[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for key in reversed(path):
        out = {key: out}
    assert isinstance(out, dict)
    return out


def values_digest(values: Mapping[str, Any]) -> str:
    """sha256 of the merged values' canonical JSON: same values, same digest, whatever the order."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def revision(chart: str, version: str, digest: str, git_revision: str = "") -> str:
    """What the Sync records: `chart@1.2.3+values:sha256:<digest>` (and the Git revision it came from)."""
    base = f"{chart}@{version}+values:sha256:{digest}"
    return f"{base}+git:{git_revision}" if git_revision else base


# ---------------------------------------------------------------- repositories

@dataclass(frozen=True)
class ChartVersion:
    """One version of a chart a repository offers."""

    name: str
    version: str
    urls: tuple[str, ...] = ()
    digest: str = ""


def parse_index(text: str, where: str) -> dict[str, list[ChartVersion]]:
    """An HTTP repository's index.yaml: chart name -> versions."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SourceFailed(f"{where}: index.yaml is not valid YAML: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise SourceFailed(f"{where}: index.yaml has no `entries` mapping: not a chart repository index")
    out: dict[str, list[ChartVersion]] = {}
    for name, entries in doc["entries"].items():
        versions = []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or not entry.get("version"):
                continue
            urls = tuple(str(u) for u in entry.get("urls") or [] if isinstance(u, str))
            versions.append(ChartVersion(str(name), str(entry["version"]), urls, str(entry.get("digest") or "")))
        out[str(name)] = versions
    return out


def pick_version(name: str, versions: Iterable[ChartVersion] | None, constraint: str, where: str) -> ChartVersion:
    """The highest version of `name` that `constraint` admits; SourceFailed naming what exists."""
    if versions is None:
        raise SourceFailed(f"chart {name!r} not found in {where}")
    by_version = {v.version: v for v in versions}
    if constraint in by_version:
        return by_version[constraint]
    chosen = best_match(by_version, constraint)
    if chosen is None:
        offered = sorted(by_version, key=lambda v: (parse_version(v) is None, parse_version(v) or v), reverse=True)
        shown = ", ".join(offered[:10]) + (" ..." if len(offered) > 10 else "")
        raise SourceFailed(f"no version of chart {name!r} matches {constraint!r} in {where} "
                           f"(available: {shown or 'none'})")
    return by_version[chosen]


def oci_tags(tags: Iterable[str]) -> list[ChartVersion]:
    """OCI tags as chart versions (`+` is spelled `_` in tags, as helm push writes them)."""
    return [ChartVersion("", t.replace("_", "+"), (t,)) for t in tags]


def chart_layer(manifest: Mapping[str, Any], where: str) -> tuple[str, int]:
    """The chart archive's digest and size in an OCI image manifest."""
    for layer in manifest.get("layers") or []:
        if isinstance(layer, Mapping) and layer.get("mediaType") == OCI_CHART_LAYER:
            digest = str(layer.get("digest") or "")
            if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
                return digest, int(layer.get("size") or 0)
    raise SourceFailed(f"{where}: the OCI artifact has no Helm chart layer ({OCI_CHART_LAYER}): not a chart")


# ---------------------------------------------------------------- rendered output

@dataclass(frozen=True)
class Hook:
    """One hook object: the events it runs on, its weight and deletion policies."""

    manifest: Manifest
    events: frozenset[str]
    weight: int
    delete_policies: frozenset[str]

    @property
    def obj(self) -> dict[str, Any]:
        return self.manifest.obj


@dataclass(frozen=True)
class Rendered:
    """`helm template` output split: the release's objects, the crds/ CRDs, and the hooks."""

    objects: tuple[Manifest, ...]
    crds: tuple[Manifest, ...]
    hooks: tuple[Hook, ...]


def split_rendered(text: str, chart: str, limits: Limits = DEFAULT_LIMITS) -> Rendered:
    """Parse helm's stream; every object keeps the template it came from (`# Source:`) for messages."""
    objects: list[Manifest] = []
    crds: list[Manifest] = []
    hooks: list[Hook] = []
    for chunk in _SEPARATOR.split(text):
        found = _SOURCE_LINE.search(chunk)
        source = found.group(1).strip() if found else f"{chart} (rendered)"
        for manifest in parse_documents(chunk, source, limits):
            if _CRDS_DIR.search(source):
                crds.append(manifest)
                continue
            hook = _hook(manifest)
            if hook is None:
                objects.append(manifest)
            elif hook.events:
                hooks.append(hook)
        if len(objects) + len(crds) + len(hooks) > limits.max_objects:
            raise BuildFailed(f"{chart}: the rendering has more than {limits.max_objects} objects "
                              f"({limits.hint('max_objects')})")
    return Rendered(tuple(objects), tuple(crds), tuple(hooks))


def _hook(manifest: Manifest) -> Hook | None:
    obj = manifest.obj
    notes = (obj.get("metadata") or {}).get("annotations") if isinstance(obj, dict) else None
    if not isinstance(notes, dict) or HOOK_ANNOTATION not in notes:
        return None
    events = {e.strip() for e in str(notes[HOOK_ANNOTATION]).split(",") if e.strip()}
    try:
        weight = int(str(notes.get(HOOK_WEIGHT) or "0"))
    except ValueError:
        raise BuildFailed(f"{manifest.location}: {HOOK_WEIGHT} {notes.get(HOOK_WEIGHT)!r} is not an integer") from None
    policies = {p.strip() for p in str(notes.get(HOOK_DELETE_POLICY) or "").split(",") if p.strip()}
    unknown = policies - set(DELETE_POLICIES)
    if unknown:
        raise BuildFailed(f"{manifest.location}: unknown {HOOK_DELETE_POLICY} {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(DELETE_POLICIES)})")
    return Hook(manifest, frozenset(events & set(HOOK_EVENTS)), weight,
                frozenset(policies or {"before-hook-creation"}))


def hooks_for(hooks: Iterable[Hook], event: str) -> list[Hook]:
    """The hooks of one event in Helm's order: by weight, then kind, then name."""
    chosen = [h for h in hooks if event in h.events]
    return sorted(chosen, key=lambda h: (h.weight, str(h.obj.get("kind")), str((h.obj.get("metadata") or {})
                                                                                 .get("name"))))


def template_error(stderr: str, chart: str, version: str) -> BuildFailed:
    """helm's failure as one line naming chart, version and (helm names it) the template."""
    text = " ".join(line.strip() for line in stderr.strip().splitlines() if line.strip())
    text = text.removeprefix("Error: ").replace(" Use --debug flag to render out invalid YAML", "")
    return BuildFailed(f"chart {chart} {version} failed to render: {text[:1500]}")


def helm_repository(name: str, namespace: str, url: str, *, secret: str = "", interval: str = "",
                    timeout: str = "", insecure: bool = False) -> dict[str, Any]:
    """The HelmRepository `kubectl gitops create source helm` applies (checked like the engine reads it)."""
    from kubectl_gitops.constants import API_VERSION

    spec: dict[str, Any] = {"url": url.rstrip("/")}
    if secret:
        spec["secretRef"] = {"name": secret}
    if interval:
        spec["interval"] = interval
    if timeout:
        spec["timeout"] = timeout
    if insecure:
        spec["insecure"] = True
    obj = {"apiVersion": API_VERSION, "kind": KIND_HELM_REPOSITORY,
           "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    parse_helm_repository(obj)
    return obj
