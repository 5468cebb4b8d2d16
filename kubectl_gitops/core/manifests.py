"""Rendered manifests: parse, validate and prepare them, with errors a person can act on.

The rule is "nothing is applied from a build that failed", so every check here runs over the
whole set before anything is written, and each error names the file, the document (1-based, as a
person counts them in an editor) and the reason. Where a check can find several problems at once
(duplicates, unknown kinds) it reports them all, so a user fixes a bad commit in one round trip.

Parsing follows what the API server would accept, not what PyYAML does by default:
- YAML timestamps stay strings (the API server's YAML->JSON conversion keeps `2024-01-01` a string;
  PyYAML would make a `datetime` that is not even JSON);
- non-string mapping keys become strings (`on:` -> "true"), as the YAML->JSON conversion does;
- a key repeated in one mapping is an error (kubectl refuses it; PyYAML silently keeps the last);
- `*.json` files are read as JSON, with JSON's own line/column on error;
- bounded (core/limits.py): aliases are counted every time they are used (a 567-byte "billion
  laughs" stops at `max_yaml_nodes`, it does not take gigabytes) and nesting deeper than
  `max_depth` is refused *before* libyaml composes it (its C composer recurses and would crash
  the process on a few hundred thousand `[`).

A `Manifest` keeps `source` and `index` next to the object so later stages (duplicate check,
unknown kinds, apply errors) can still point at the file and document.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of, split_api_version

Scope = Callable[[str, str], "bool | None"]
"""(apiVersion, kind) -> True if namespaced, False if cluster-scoped, None if the kind is unknown."""

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# RBAC objects are validated as path segments by the API server (`system:controller:x` is fine).
_PATH_SEGMENT_NAME_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
_RBAC_GROUP = "rbac.authorization.k8s.io"
_CRD_GROUP = "apiextensions.k8s.io"


@dataclass(frozen=True)
class Manifest:
    """One object as rendered: where it came from and what it says."""

    obj: dict[str, Any] = field(hash=False)
    source: str
    """File path relative to the Sync's path."""
    index: int
    """0-based document number in that file."""
    item: int | None = None
    """0-based position inside a `kind: List` document, when the object came from one."""

    @property
    def location(self) -> str:
        where = f"{self.source} document {self.index + 1}"
        return where if self.item is None else f"{where} item {self.item + 1}"

    @property
    def ref(self) -> ObjectRef:
        return ref_of(self.obj)

    def replace_obj(self, obj: dict[str, Any]) -> Manifest:
        return Manifest(obj, self.source, self.index, self.item)


# --- parsing ---------------------------------------------------------------------------------

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_STR_TAG, _MAP_TAG, _SEQ_TAG, _MERGE_TAG = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
# Plain scalars whose standard constructors we call directly (they need no state and no recursion).
_SIMPLE_SCALAR_TAGS = frozenset({_TAG + "int", _TAG + "float", _TAG + "bool", _TAG + "null"})


def _duplicate_key(key: str, key_node: yaml.Node) -> yaml.constructor.ConstructorError:
    line = key_node.start_mark.line + 1
    return yaml.constructor.ConstructorError(
        None, None, f"key {key!r} is defined twice in one mapping (line {line})", key_node.start_mark
    )


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate keys and does not resolve timestamps.

    The parser and composer are libyaml's (C) when available; construction is Python either way,
    and PyYAML's generic constructor (generators, per-node bookkeeping, a second pass to turn keys
    into strings) was most of the parse time. So each document's node tree is turned into JSON
    values directly (`_value`): plain mappings, sequences and the common scalar types take a
    short path; anything unusual (merge keys, `!!set`, `!!binary`, unknown tags) goes through
    PyYAML's own constructor and `_plain`, exactly as before.
    """

    budget = DEFAULT_LIMITS.max_yaml_nodes  # set per load by _yaml_documents
    max_depth = DEFAULT_LIMITS.max_depth

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return self._value(node, 0)
        finally:
            # What PyYAML's construct_document resets; the fallback path may have filled them.
            self.constructed_objects: dict[Any, Any] = {}
            self.recursive_objects: dict[Any, Any] = {}
            self.state_generators: list[Any] = []
            self.deep_construct = False

    def _spend(self, count: int, depth: int) -> None:
        """Count `count` values against the file's budget; refuse nesting deeper than max_depth."""
        self.budget -= count
        if self.budget < 0:
            raise _TooBig("max_yaml_nodes", "expands to too many values (aliases count each time they are used)")
        if depth > self.max_depth:
            raise _TooBig("max_depth", "is nested too deeply")

    def _value(self, node: yaml.Node, depth: int) -> Any:
        cls, tag = node.__class__, node.tag
        if cls is yaml.ScalarNode:
            if tag == _STR_TAG:
                return node.value
            if tag in _SIMPLE_SCALAR_TAGS:
                return self.yaml_constructors[tag](self, node)
        elif cls is yaml.MappingNode and tag == _MAP_TAG:
            return self._mapping(cast(yaml.MappingNode, node), depth + 1)
        elif cls is yaml.SequenceNode and tag == _SEQ_TAG:
            self._spend(len(node.value) + 1, depth + 1)
            return [self._value(child, depth + 1) for child in node.value]
        return self._plain(self.construct_object(node, deep=True), depth)

    def _plain(self, value: Any, depth: int) -> Any:
        """Turn a YAML tree into what the API server's YAML->JSON conversion would produce, counted."""
        if isinstance(value, dict):
            self._spend(len(value) + 1, depth + 1)
            return {_key(k): self._plain(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            self._spend(len(value) + 1, depth + 1)
            return [self._plain(v, depth + 1) for v in value]
        return value

    def _mapping(self, node: yaml.MappingNode, depth: int) -> dict[str, Any]:
        self._spend(len(node.value) + 1, depth)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                # Merge keys need PyYAML's flattening (and its memo, since flattening rewrites the
                # node in place and an anchored node may be visited again through an alias).
                return self._plain(self.construct_object(node, deep=True), depth - 1)  # type: ignore[no-any-return]
            # Plain string keys and values are the vast majority: skip the call for them.
            if key_node.tag == _STR_TAG and key_node.__class__ is yaml.ScalarNode:
                key = key_node.value
            else:
                key = _key(self._value(key_node, depth))
            if key in mapping:
                raise _duplicate_key(key, key_node)
            if value_node.tag == _STR_TAG and value_node.__class__ is yaml.ScalarNode:
                mapping[key] = value_node.value
            else:
                mapping[key] = self._value(value_node, depth)
        return mapping

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: tuple[bool, bool]) -> str:
        # Called by the composer for every untagged scalar. Same answer as Resolver.resolve (we
        # register no path resolvers), without its per-call list concatenation and bookkeeping.
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR_TAG
            for tag, regexp in _SCALAR_RESOLVERS.get(value[:1], ()):
                if regexp.match(value):
                    return tag
            return _STR_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Used only on the fallback path (merge keys, `!!set`, ...). Keys are built as the JSON
        # conversion spells them (`on` -> "true", 1 -> "1"); building a Python dict first would
        # merge True and 1, which are equal in Python.
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.flatten_mapping(node)  # `<<` merge keys come first; explicit keys may override them
        merged = len(node.value) - explicit
        mapping: dict[str, Any] = {}
        written: set[str] = set()
        for position, (key_node, value_node) in enumerate(node.value):
            key = _key(self.construct_object(key_node, deep=True))
            if position >= merged and key in written:
                raise _duplicate_key(key, key_node)
            if position >= merged:
                written.add(key)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
assert not _Loader.yaml_path_resolvers and None not in _Loader.yaml_implicit_resolvers  # as `resolve` assumes
# First character ('' for the empty scalar) -> the implicit resolvers to try, as Resolver.resolve picks them.
_SCALAR_RESOLVERS: dict[str, tuple[tuple[str, re.Pattern[str]], ...]] = {
    first: tuple(resolvers) for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


class _TooBig(Exception):
    """A bound of core/limits.py was hit while building values; `limit` names the field."""

    def __init__(self, limit: str, what: str) -> None:
        super().__init__(what)
        self.limit = limit


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


# libyaml's C composer recurses once per level and crashes the process (no exception) somewhere
# between 5,000 levels (fine) and 200,000; construction then checks `max_depth` exactly.
_COMPOSE_SAFE = 2_000
DEPTH_CEILING = 5_000
_LONG_LEAD = re.compile(rf"\n[ \t?:-]{{{_COMPOSE_SAFE // 2}}}")
_LONG_LEAD_AT_START = re.compile(rf"[ \t?:-]{{{_COMPOSE_SAFE // 2}}}")


def _might_be_deep(text: str) -> bool:
    """True unless `text` certainly nests less than _COMPOSE_SAFE levels (cheap: C string methods).

    Flow nesting needs a `[` or `{` per level; block nesting needs indentation, `- `, `? ` or `: `
    at the start of a line (at most one level per character: anchors and tags cannot precede a
    compact collection). Real manifests are far below; a suspect text gets an exact count."""
    if text.count("[") + text.count("{") > _COMPOSE_SAFE:
        return True
    return bool(_LONG_LEAD.search(text) or _LONG_LEAD_AT_START.match(text))


def _event_depth(text: str, limit: int) -> int:
    """The exact nesting depth from libyaml's events (iterative: no recursion, no crash)."""
    depth = deepest = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return deepest


def _limit_error(source: str, docs: int, limits: Limits, limit: str, what: str) -> BuildFailed:
    return BuildFailed(f"{source} document {docs}: {what} ({limits.hint(limit)})")


def _yaml_documents(text: str, source: str, limits: Limits) -> list[Any]:
    docs: list[Any] = []
    try:
        deepest = min(limits.max_depth, DEPTH_CEILING)
        if _might_be_deep(text) and _event_depth(text, deepest) > deepest:
            raise _TooBig("max_depth", "is nested too deeply")
        loader = _Loader(text)
        loader.budget, loader.max_depth = limits.max_yaml_nodes, limits.max_depth
        try:
            while loader.check_data():
                docs.append(loader.get_data())
        finally:
            loader.dispose()
    except _TooBig as err:
        raise _limit_error(source, len(docs) + 1, limits, err.limit, str(err)) from None
    except RecursionError as err:  # an alias that contains itself (`&a [*a]`), or absurd nesting
        raise BuildFailed(f"{source} document {len(docs) + 1}: invalid YAML: nested too deeply") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        reason = getattr(err, "problem", None) or str(err)
        context = getattr(err, "context", None)
        if context:
            reason = f"{context}: {reason}"
        raise BuildFailed(f"{source} document {len(docs) + 1}{line}: invalid YAML: {reason}") from err
    return docs


def _json_depth(value: Any, limit: int) -> int:
    """Depth of a parsed JSON value, iteratively (the value may be deeper than Python's recursion limit)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                break
            todo.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _json_documents(text: str, source: str, limits: Limits) -> list[Any]:
    if not text.strip():
        return []
    opens = text.count("[") + text.count("{")
    if opens > limits.max_yaml_nodes:
        raise _limit_error(source, 1, limits, "max_yaml_nodes", "has too many values")
    try:
        value = json.loads(text)
    except RecursionError:
        raise _limit_error(source, 1, limits, "max_depth", "is nested too deeply") from None
    except json.JSONDecodeError as err:
        raise BuildFailed(f"{source} document 1, line {err.lineno}: invalid JSON: {err.msg}") from err
    if opens > limits.max_depth and _json_depth(value, limits.max_depth) > limits.max_depth:  # iterative
        raise _limit_error(source, 1, limits, "max_depth", "is nested too deeply")
    return [value]


def _is_list(doc: Any) -> bool:
    kind = doc.get("kind") if isinstance(doc, dict) else None
    return isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list)


def parse_documents(text: str, source: str, limits: Limits = DEFAULT_LIMITS) -> list[Manifest]:
    """Every object in one file, in order. Empty documents are skipped; `kind: List` (or any
    `*List` with `items`, e.g. `ConfigMapList`) is flattened into its items. Only parsing happens
    here: call `validate` for the shape of each object."""
    parse = _json_documents if source.endswith(".json") else _yaml_documents
    docs = parse(text, source, limits)
    manifests: list[Manifest] = []
    for index, raw in enumerate(docs):
        if raw is None or raw == {}:
            continue
        doc = raw  # already JSON-shaped: the loader converts as it builds, and JSON keys are strings
        if _is_list(doc):
            manifests.extend(Manifest(item, source, index, pos) for pos, item in enumerate(doc["items"]))
        else:
            manifests.append(Manifest(doc, source, index))
    return manifests


# --- validation ------------------------------------------------------------------------------


def _name_problem(kind: str, group: str, name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "metadata.name is missing or not a string"
    if len(name) > 253:
        return f"metadata.name {name[:40]!r}... is longer than 253 characters"
    if group == _RBAC_GROUP and kind in _PATH_SEGMENT_NAME_KINDS:
        if name in (".", "..") or "/" in name or "%" in name:
            return f"metadata.name {name!r} may not be '.', '..' or contain '/' or '%'"
        return None
    if not _DNS_SUBDOMAIN.match(name):
        return (
            f"metadata.name {name!r} is not a valid name (lower case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit)"
        )
    return None


def _type_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"expected a Kubernetes object (a mapping), found {type(obj).__name__}"
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not api_version:
        return "apiVersion is missing or not a string"
    if api_version.count("/") > 1 or api_version.startswith("/") or api_version.endswith("/"):
        return f"apiVersion {api_version!r} is not <group>/<version> or <version>"
    if not isinstance(kind, str) or not kind:
        return "kind is missing or not a string"
    if not isinstance(obj.get("metadata"), dict):
        return "metadata is missing or not a mapping"
    return None


def _object_problem(obj: Any) -> str | None:
    problem = _type_problem(obj)
    if problem:
        return problem
    api_version, kind, metadata = obj["apiVersion"], obj["kind"], obj["metadata"]
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not _DNS_LABEL.match(namespace)):
        return f"metadata.namespace {namespace!r} is not a valid namespace name"
    group, _ = split_api_version(api_version)
    return _name_problem(kind, group, metadata.get("name"))


def validate(manifests: Iterable[Manifest]) -> None:
    """Each manifest is a mapping with apiVersion, kind and a valid metadata.name.

    Raises BuildFailed for the first bad document (shape errors usually cascade, so the first one
    is the useful one)."""
    for manifest in manifests:
        problem = _object_problem(manifest.obj)
        if problem:
            raise BuildFailed(f"{manifest.location}: {problem}")


def check_duplicates(manifests: Iterable[Manifest]) -> None:
    """No two manifests may name the same object (group, kind, namespace, name; version ignored).

    Run it after namespaces are settled (apply_target_namespace / default_namespace), so that an
    object with no namespace and the same object with the default namespace count as one."""
    first_seen: dict[IdentityKey, Manifest] = {}
    problems: list[str] = []
    for manifest in manifests:
        ref = manifest.ref
        earlier = first_seen.setdefault(ref.key, manifest)
        if earlier is not manifest:
            problems.append(f"{ref.display} is defined twice: {earlier.location} and {manifest.location}")
    if problems:
        raise BuildFailed("duplicate objects: " + "; ".join(problems))


# --- kinds and scope -------------------------------------------------------------------------


def crd_scopes(manifests: Iterable[Manifest]) -> dict[tuple[str, str], bool]:
    """(apiVersion, kind) -> namespaced, for every kind defined by a CRD among the manifests."""
    scopes: dict[tuple[str, str], bool] = {}
    for manifest in manifests:
        obj = manifest.obj
        group, _ = split_api_version(str(obj.get("apiVersion", "")))
        if group != _CRD_GROUP or obj.get("kind") != "CustomResourceDefinition":
            continue
        spec = obj.get("spec") or {}
        crd_group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        if not isinstance(crd_group, str) or not isinstance(kind, str):
            continue
        namespaced = spec.get("scope", "Namespaced") != "Cluster"
        versions = [v.get("name") for v in spec.get("versions") or [] if isinstance(v, dict)]
        if isinstance(spec.get("version"), str):  # apiextensions v1beta1
            versions.append(spec["version"])
        for version in versions:
            if isinstance(version, str):
                scopes[(f"{crd_group}/{version}", kind)] = namespaced
    return scopes


def with_crds(manifests: Iterable[Manifest], known: Scope) -> Scope:
    """`known` extended with the kinds that CRDs among the manifests define (the cluster does not
    know them yet on the first apply, but will once stage 0 is applied)."""
    local = crd_scopes(manifests)

    def scope(api_version: str, kind: str) -> bool | None:
        found = known(api_version, kind)
        return found if found is not None else local.get((api_version, kind))

    return scope


def check_known_kinds(manifests: Sequence[Manifest], known: Scope) -> None:
    """Every manifest's kind is served by the cluster or defined by a CRD in the same manifests.

    Raises BuildFailed listing every unknown kind with its file and document."""
    scope = with_crds(manifests, known)
    problems = [
        f"{m.location}: unknown kind {m.obj.get('kind')} in {m.obj.get('apiVersion')} "
        "(no such resource on the cluster and no CRD for it in this Sync)"
        for m in manifests
        if scope(str(m.obj.get("apiVersion")), str(m.obj.get("kind"))) is None
    ]
    if problems:
        raise BuildFailed("; ".join(problems))


# --- namespaces ------------------------------------------------------------------------------

# Fields that point at a Service in "our" namespace; kustomize moves them along with the objects.
_SERVICE_REF_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): ("webhooks", "clientConfig", "service"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): ("webhooks", "clientConfig", "service"),
    ("apiregistration.k8s.io", "APIService"): ("spec", "service"),
    (_CRD_GROUP, "CustomResourceDefinition"): ("spec", "conversion", "webhook", "clientConfig", "service"),
}


def _walk(node: Any, path: Sequence[str]) -> list[dict[str, Any]]:
    """All mappings at `path`, stepping through lists transparently."""
    if isinstance(node, list):
        return [found for item in node for found in _walk(item, path)]
    if not isinstance(node, dict):
        return []
    if not path:
        return [node]
    return _walk(node.get(path[0]), path[1:])


def _retarget_references(obj: dict[str, Any], group: str, kind: str, namespace: str) -> None:
    path = _SERVICE_REF_PATHS.get((group, kind))
    if path:
        for service in _walk(obj, path):
            if "namespace" in service:
                service["namespace"] = namespace
    if group == _RBAC_GROUP and kind in ("RoleBinding", "ClusterRoleBinding"):
        # kustomize's default (`setRoleBindingSubjects: defaultOnly`): only subjects named "default".
        for subject in obj.get("subjects") or []:
            if isinstance(subject, dict) and subject.get("name") == "default":
                subject["namespace"] = namespace


def _retargeted_roots(group: str, kind: str) -> tuple[str, ...]:
    """Top-level fields that `_retarget_references` may write into for this kind."""
    path = _SERVICE_REF_PATHS.get((group, kind))
    if path:
        return path[:1]
    if group == _RBAC_GROUP and kind in ("RoleBinding", "ClusterRoleBinding"):
        return ("subjects",)
    return ()


def _set_namespace(manifest: Manifest, namespace: str, namespaced: Scope, *, override: bool) -> Manifest:
    # Copy-on-write: a new object and a new metadata (the only dicts written for most kinds), and a
    # deep copy of the few fields that reference rewriting touches; everything else is shared with
    # the input manifest, which is never modified.
    obj = dict(manifest.obj)
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    metadata = obj.setdefault("metadata", {})
    if isinstance(metadata, dict):
        metadata = obj["metadata"] = dict(metadata)
    scoped = namespaced(api_version, kind)
    if scoped is False:
        # The API server ignores a namespace on a cluster-scoped object; dropping it keeps our
        # identity (and the inventory) equal to the live object's.
        metadata.pop("namespace", None)
    elif scoped and (override or not metadata.get("namespace")):
        metadata["namespace"] = namespace
    if override:
        group = split_api_version(api_version)[0]
        for root in _retargeted_roots(group, kind):
            if root in obj:
                obj[root] = copy.deepcopy(obj[root])
        _retarget_references(obj, group, kind, namespace)
    return manifest.replace_obj(obj)


def apply_target_namespace(manifests: Iterable[Manifest], namespace: str, namespaced: Scope) -> list[Manifest]:
    """Flux's `targetNamespace`: every namespaced object is moved into `namespace` (set or
    overridden), as kustomize's namespace transformer does, including webhook/APIService/CRD
    conversion service references and RoleBinding subjects named "default". Cluster-scoped
    objects lose any namespace they carry; objects of unknown scope are left alone (the known-kind
    check reports them). Returns new manifests; the inputs are not modified (the outputs share
    the fields they did not change with the inputs: treat both as read-only)."""
    return [_set_namespace(m, namespace, namespaced, override=True) for m in manifests]


def default_namespace(manifests: Iterable[Manifest], namespace: str, namespaced: Scope) -> list[Manifest]:
    """Namespaced objects without a namespace get `namespace` (what kubectl does with its
    default namespace); objects that name one keep it. Returns new manifests (sharing unchanged
    fields with the inputs, which are not modified)."""
    return [_set_namespace(m, namespace, namespaced, override=False) for m in manifests]
