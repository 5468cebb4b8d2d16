"""Object identity: the one way the project names a Kubernetes object.

Every other piece (inventory, plan, prune, status, the webhook) compares objects by
`ObjectRef`, so identity is decided here once. Two refs name the *same* object when group,
kind, namespace and name agree: the version is how we spoke to it, not who it is (a
`apps/v1beta1` -> `apps/v1` bump must not look like one object leaving and another arriving).
`key` is that identity; equality of whole refs includes the version on purpose, so the
inventory can record which version it applied.

The inventory id format is Flux's (`<namespace>_<name>_<group>_<kind>`), because users already
read and grep it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

IdentityKey = tuple[str, str, str, str]
"""(group, kind, namespace, name): who an object is, whatever version we talk to it in."""


@dataclass(frozen=True)
class ObjectRef:
    """Names one object. `namespace` is "" for cluster-scoped objects, `group` "" for the core group."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> IdentityKey:
        """Identity without the version (see the module docstring)."""
        return (self.group, self.kind, self.namespace, self.name)

    @property
    def id(self) -> str:
        """Flux's inventory id: `<namespace>_<name>_<group>_<kind>` (empty fields stay empty)."""
        return f"{self.namespace}_{self.name}_{self.group}_{self.kind}"

    @property
    def display(self) -> str:
        """What people read: `Kind/namespace/name`, or `Kind/name` when cluster-scoped."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def sort_key(self) -> tuple[str, str, str, str, str]:
        """Stable order for inventories and reports: by namespace, then name, group, kind (the id order)."""
        return (self.namespace, self.name, self.group, self.kind, self.version)

    def with_version(self, version: str) -> ObjectRef:
        return ObjectRef(self.group, version, self.kind, self.namespace, self.name)

    def __str__(self) -> str:
        return self.display

    @classmethod
    def from_inventory_entry(cls, id: str, v: str) -> ObjectRef:
        """Parse a Flux inventory entry (`{"id": ..., "v": ...}`).

        Why splitting on "_" is safe: namespaces are DNS labels and groups DNS subdomains, neither
        may contain "_", and kinds are Go-style identifiers that never do in practice. Names are
        *usually* DNS subdomains too, but a few kinds (RBAC roles and bindings) accept path-segment
        names such as `system:my_role`. So the namespace is taken from the front, group and kind from
        the back, and whatever is left in the middle is the name, underscores and all.
        """
        parts = id.split("_")
        if len(parts) < 4:
            raise ValueError(f"inventory id {id!r} is not <namespace>_<name>_<group>_<kind>")
        namespace, group, kind = parts[0], parts[-2], parts[-1]
        name = "_".join(parts[1:-2])
        if not name or not kind:
            raise ValueError(f"inventory id {id!r} has an empty name or kind")
        return cls(group=group, version=v, kind=kind, namespace=namespace, name=name)


def split_api_version(api_version: str) -> tuple[str, str]:
    """`apps/v1` -> ("apps", "v1"); `v1` -> ("", "v1") (the core group has no name)."""
    group, sep, version = api_version.rpartition("/")
    return (group, version) if sep else ("", api_version)


def ref_of(obj: dict[str, Any]) -> ObjectRef:
    """The identity of a manifest or live object.

    Raises ValueError when apiVersion, kind or metadata.name is missing: callers validate manifests
    (manifests.validate) before asking, so reaching this with a bad object is a bug, not bad input.
    """
    api_version = obj.get("apiVersion")
    kind = obj.get("kind")
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(api_version, str) or not api_version:
        raise ValueError("object has no apiVersion")
    if not isinstance(kind, str) or not kind:
        raise ValueError("object has no kind")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{kind} has no metadata.name")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    group, version = split_api_version(api_version)
    return ObjectRef(group, version, kind, namespace if isinstance(namespace, str) else "", name)
