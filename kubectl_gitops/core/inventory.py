"""The inventory: the set of objects a Sync owns, as recorded in `Sync.status.inventory`.

The inventory, not a label query, is the truth of what may be pruned: a label selector would
also find objects someone copied our labels onto, and would miss nothing we need. It is stored
in Flux's shape (`entries[] = {id, v}`) so Flux users can read it.

An inventory is kept sorted and free of duplicates so that writing the same set twice produces
the same status (no spurious status updates) and diffs of it are readable. Duplicates are decided
by identity (`ObjectRef.key`, no version): one object appears once, with the version we last
applied it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.core.objects import IdentityKey, ObjectRef


def _normalise(refs: Iterable[ObjectRef]) -> tuple[ObjectRef, ...]:
    by_key: dict[IdentityKey, ObjectRef] = {}
    for ref in refs:
        by_key[ref.key] = ref  # later wins: it carries the newer version
    return tuple(sorted(by_key.values(), key=lambda r: r.sort_key))


@dataclass(frozen=True, init=False)
class Inventory:
    """A sorted, de-duplicated set of ObjectRefs."""

    entries: tuple[ObjectRef, ...]

    def __init__(self, refs: Iterable[ObjectRef] = ()) -> None:
        object.__setattr__(self, "entries", _normalise(refs))

    def __iter__(self) -> Iterator[ObjectRef]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, ref: object) -> bool:
        return isinstance(ref, ObjectRef) and ref.key in self.keys

    @property
    def keys(self) -> frozenset[IdentityKey]:
        return frozenset(ref.key for ref in self.entries)

    def to_status(self) -> dict[str, list[dict[str, str]]]:
        return {"entries": [{"id": ref.id, "v": ref.version} for ref in self.entries]}

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> Inventory:
        """Read `status.inventory` (None or missing entries = empty: a Sync that never applied).

        A malformed entry raises ValueError rather than being skipped: silently dropping an entry
        would orphan that object for ever (it could never be pruned).
        """
        if not status:
            return cls()
        if not isinstance(status, Mapping):
            raise ValueError(f"inventory {status!r} is not an object")
        entries = status.get("entries") or []
        if not isinstance(entries, list):
            raise ValueError(f"inventory entries {entries!r} are not a list")
        refs = []
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
                raise ValueError(f"inventory entry {entry!r} has no id")
            refs.append(ObjectRef.from_inventory_entry(entry["id"], str(entry.get("v", ""))))
        return cls(refs)

    def merge(self, other: Iterable[ObjectRef]) -> Inventory:
        """Union; on the same identity `other` wins. Used to keep objects whose delete failed
        in the new inventory, so the prune is retried next run instead of forgotten."""
        return Inventory((*self.entries, *other))

    def without(self, refs: Iterable[ObjectRef]) -> Inventory:
        """This inventory minus the given objects (by identity)."""
        drop = {ref.key for ref in refs}
        return Inventory(ref for ref in self.entries if ref.key not in drop)


def stale(old: Inventory, new: Inventory) -> tuple[ObjectRef, ...]:
    """Objects in `old` that are not in `new`, compared by identity without the version, so a
    version bump (`v1beta1` -> `v1`) is not a prune. Returned as recorded in `old`, sorted."""
    keep = new.keys
    return tuple(ref for ref in old.entries if ref.key not in keep)


def union(ours: Inventory, theirs: Inventory) -> Inventory:
    """Two runs' inventories merged after a write conflict: every object either lists (ours wins on
    the version). An entry too many is harmless (it is dropped as "already gone" or pruned by a
    later run); an entry too few orphans an object with our labels for ever."""
    return Inventory((*theirs.entries, *ours.entries))


def salvage(status: Mapping[str, Any] | None) -> Inventory:
    """The entries of a damaged inventory that can still be read (to know which kinds to look at)."""
    refs = []
    entries = status.get("entries") if isinstance(status, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        try:
            refs.append(ObjectRef.from_inventory_entry(str(entry["id"]), str(entry.get("v", ""))))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return Inventory(refs)


def partition(live: Mapping[IdentityKey, Any], known: Iterable[IdentityKey]) -> tuple[
        dict[IdentityKey, Any], list[IdentityKey]]:
    """(live objects this Sync may act on, keys of labelled strangers).

    The live view is a LIST by label, and anyone who can label an object can put it in the view.
    Only objects in the inventory or in Git are the Sync's: the rest is never planned, pruned
    or waited on, only reported."""
    keys = frozenset(known)
    mine = {key: obj for key, obj in live.items() if key in keys}
    strangers = sorted(key for key in live if key not in keys)
    return mine, strangers
