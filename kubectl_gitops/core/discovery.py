"""What the API server serves, parsed from aggregated discovery (apidiscovery.k8s.io/v2).

Two requests (/api and /apis) describe every kind, its plural and its scope; this module turns
them into a lookup table, purely, so unknown-kind errors and namespace defaulting are decided
without further requests and tested without a cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.core.objects import split_api_version

DISCOVERY_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@dataclass(frozen=True)
class ResourceInfo:
    """One served kind: where it lives (plural) and whether it is namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class ResourceMap:
    """(apiVersion, kind) -> ResourceInfo, plus a per-group fallback for other served versions."""

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._by_gvk: dict[tuple[str, str, str], ResourceInfo] = {}
        self._by_gk: dict[tuple[str, str], ResourceInfo] = {}
        for info in resources:
            self._by_gvk.setdefault((info.group, info.version, info.kind), info)
            self._by_gk.setdefault((info.group, info.kind), info)

    def get(self, api_version: str, kind: str) -> ResourceInfo | None:
        group, version = split_api_version(api_version)
        return self._by_gvk.get((group, version, kind))

    def known(self, api_version: str, kind: str) -> bool:
        return self.get(api_version, kind) is not None

    def namespaced(self, api_version: str, kind: str) -> bool | None:
        info = self.get(api_version, kind)
        if info is None:
            group, _ = split_api_version(api_version)
            info = self._by_gk.get((group, kind))
        return None if info is None else info.namespaced

    def with_extra(self, extra: Iterable[ResourceInfo]) -> ResourceMap:
        """This map plus kinds not served yet (CRDs about to be applied in the same sync)."""
        return ResourceMap([*self._by_gvk.values(), *extra])

    def __len__(self) -> int:
        return len(self._by_gvk)

    def all(self) -> list[ResourceInfo]:
        """Every served kind (one per group, version and kind)."""
        return list(self._by_gvk.values())


def parse_aggregated(doc: Mapping[str, Any]) -> list[ResourceInfo]:
    """Resources of an APIGroupDiscoveryList (subresources skipped)."""
    out: list[ResourceInfo] = []
    for item in doc.get("items") or []:
        group = str((item.get("metadata") or {}).get("name") or "")
        for version in item.get("versions") or []:
            v = str(version.get("version", ""))
            for res in version.get("resources") or []:
                kind = str((res.get("responseKind") or {}).get("kind") or "")
                if not kind:
                    continue
                out.append(ResourceInfo(group, v, kind, str(res.get("resource", "")),
                                        res.get("scope") == "Namespaced", tuple(res.get("verbs") or ())))
    return out


def from_crd(crd: Mapping[str, Any]) -> list[ResourceInfo]:
    """The kinds a CustomResourceDefinition will serve once established."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    return [ResourceInfo(str(spec.get("group", "")), str(v.get("name", "")), str(names.get("kind", "")),
                         str(names.get("plural", "")), namespaced)
            for v in spec.get("versions") or [] if v.get("served", True)]


# Kinds the engine reads by name; served by every cluster, so they need no discovery.
CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
SECRETS = ResourceInfo("", "v1", "Secret", "secrets", True)
