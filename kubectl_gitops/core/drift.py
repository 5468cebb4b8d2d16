"""The drift guard: nobody but a Sync's applier changes what Git declares (pure).

`review(request, lookup, ...)` is the whole decision; the webhook only parses, fetches, and
answers. The rules, in the order they are applied (docs/drift-guard.md says what they guarantee
and what they deliberately don't):

1. Only UPDATE and DELETE are judged, and only of objects whose *old* state carries both
   ownership labels (the new state is the requester's to choose, so it proves nothing).
   The status subresource passes: the API server discards everything but status on /status
   for custom resources and spec for built-ins, and refusing a controller's status write
   would wedge rollouts. The scale subresource carries an autoscaling/v1 Scale without labels
   or managedFields, so it is judged against the live parent the adapter fetched.
2. Identity comes from `userInfo` only, never from field-manager names: any client can send
   `--field-manager=kubectl-gitops`. The Sync's applier passes; the control plane's controllers
   (`SYSTEM_CONTROLLERS`: the garbage collector, the namespace controller, kube-controller-manager)
   may delete (a namespace must be able to go away) and may change ownerReferences and finalizers
   (the collector orphans and finishes foreground deletions); usernames passed as `trusted` (an
   operator that adds its own finalizers) may change ownerReferences and finalizers only.
3. A Sync that no longer exists (orphan), is suspended, or has `driftGuard: off` lets it pass.
4. What counts as a change: any field the `kubectl-gitops` manager owns through Apply in the
   old object's managedFields; any field Git declares (the `kubectl-gitops.dev/fields` record,
   core/declared.py) that the manager no longer owns, since allowed edits move ownership away;
   the ownership labels; the manager's own managedFields record (rewriting it is the way to
   disown fields before editing them); and any ownerReference or finalizer *added or changed*
   (an ownerReference lets the garbage collector delete the object, a finalizer keeps it
   half-deleted), unless Git declares it. Removing a finalizer Git does not declare stays
   possible, so a terminating object's owners can finish its deletion; the rest of a terminating
   object is judged like any other.
5. A change by anyone else is refused (403) in enforce mode, allowed with a warning in warn
   mode, and allowed with a warning and an audit annotation for the break-glass group, which is
   read from `userInfo.groups` and nothing else. Dry-run requests are judged the same.
6. A request the guard can't fully read or analyse (values nested past the decoder, more
   managedFields entries, fieldsV1 nodes or list items than the bounds in core/managed_fields.py)
   is treated like a change of Git's fields, with the bound that was hit as the reason: hostile
   JSON must never unlock an object.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from kubectl_gitops.constants import (
    ANNOTATION_FIELDS,
    ANNOTATION_REVISION,
    DEFAULT_APPLIER_SA,
    FIELD_MANAGER,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
    SYSTEM_NAMESPACE,
)
from kubectl_gitops.core import declared
from kubectl_gitops.core.admission import MAX_WARNING, AdmissionRequest, AdmissionResponse, allow
from kubectl_gitops.core.bounded import LimitExceeded, same
from kubectl_gitops.core.managed_fields import (
    MAX_LIST_ITEMS,
    MISSING,
    FieldPath,
    changed_owned,
    format_path,
    manager_entries,
    owned_paths,
)

JSON = dict[str, Any]

MODES: Final = ("enforce", "warn", "off")
SYSTEM_DELETERS: Final = frozenset({
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:namespace-controller",
    # kube-controller-manager without --use-service-account-credentials runs every controller
    # as this one user; only the control plane holds its client certificate.
    "system:kube-controller-manager",
})
SYSTEM_CONTROLLERS: Final = SYSTEM_DELETERS
"""Who may change any ownerReference or finalizer of a managed object (orphaning, foreground deletion)."""
LIFECYCLE: Final = ("ownerReferences", "finalizers")
MAX_FIELDS_SHOWN: Final = 3
REPLICAS: Final = (("f", "spec"), ("f", "replicas"))
RECORD_FIELD: Final = f"metadata.managedFields[manager={FIELD_MANAGER}]"


@dataclass(frozen=True)
class SyncInfo:
    """What the guard needs to know about the Sync named by an object's ownership labels."""

    name: str
    namespace: str
    source_url: str = ""
    path: str = ""
    revision: str = ""
    mode: str = "enforce"
    appliers: frozenset[str] = field(default_factory=frozenset)
    suspended: bool = False


SyncLookup = Callable[[str, str], SyncInfo | None]
"""`lookup(namespace, name)`: the Sync, or None when it does not exist."""


def applier_username(sync_namespace: str, service_account: str | None) -> str:
    """The identity a Sync applies as: its own ServiceAccount, or the default applier."""
    if service_account:
        return f"system:serviceaccount:{sync_namespace}:{service_account}"
    return f"system:serviceaccount:{SYSTEM_NAMESPACE}:{DEFAULT_APPLIER_SA}"


def sync_info(sync: Mapping[str, Any], source: Mapping[str, Any] | None,
              tenant_applier: tuple[str, str] | None = None) -> SyncInfo:
    """A SyncInfo from a Sync object and its GitSource (None when the source is missing).

    `tenant_applier`: (name, username) of the applier of the Tenant claiming the Sync's namespace.
    A tenant's Sync names its applier by name only (`serviceAccountName: tenant-NAME-applier`) and
    the engine applies as the Tenant's applier, which lives outside the tenant's namespaces; the
    guard must expect that identity, not an account of that name in the Sync's namespace.
    (Used by the webhook's lookup and by `audit`, so both expect the same applier.)
    """
    meta, spec, status = (_as_map(sync.get(k)) for k in ("metadata", "spec", "status"))
    namespace = str(meta.get("namespace", ""))
    mode = spec.get("driftGuard", "enforce")
    account = spec.get("serviceAccountName")
    applier = applier_username(namespace, account if isinstance(account, str) else None)
    if tenant_applier is not None and account == tenant_applier[0]:
        applier = tenant_applier[1]
    return SyncInfo(
        name=str(meta.get("name", "")),
        namespace=namespace,
        source_url=str(_as_map(_as_map(source).get("spec")).get("url", "")),
        path=str(spec.get("path") or ""),
        revision=str(status.get("lastAppliedRevision") or ""),
        mode=mode if mode in MODES else "enforce",  # a typo must not switch the guard off
        appliers=frozenset({applier}),
        suspended=spec.get("suspend") is True,
    )


def _as_map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def ownership(obj: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """(sync namespace, sync name) from an object's ownership labels, or None if not both set."""
    meta = (obj or {}).get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return None
    name, namespace = labels.get(LABEL_SYNC), labels.get(LABEL_SYNC_NAMESPACE)
    if isinstance(name, str) and isinstance(namespace, str) and name and namespace:
        return namespace, name
    return None


def needs_judgement(req: AdmissionRequest) -> bool:
    """Whether `review` could refuse `req`: what the webhook fails closed on when it breaks."""
    if req.operation not in ("UPDATE", "DELETE") or req.sub_resource == "status":
        return False
    return req.sub_resource == "scale" or ownership(req.old_object) is not None or _owner_unreadable(req)


def in_break_glass(req: AdmissionRequest, group: str) -> bool:
    """True when the authenticated user is in the break-glass group (never from object content)."""
    return bool(group) and group in req.user_info.groups


def review(req: AdmissionRequest, lookup: SyncLookup, *, break_glass_group: str,
           parent: Mapping[str, Any] | None = None, trusted: frozenset[str] = frozenset()) -> AdmissionResponse:
    """Judge one admission request; `parent` is the live parent object for a scale request.

    `trusted`: usernames of controllers (beyond SYSTEM_CONTROLLERS) that may add and remove
    ownerReferences and finalizers of managed objects; nothing else of Git's.
    """
    skip = next((reason for reason, applies in _SKIPS if applies(req)), None)
    if skip:
        return allow(req, skip)
    # A Scale has neither labels nor managedFields: ownership is the parent's.
    subject = parent if req.sub_resource == "scale" else req.old_object
    owner = ownership(subject)
    if subject is None or owner is None:
        if _owner_unreadable(req):
            return _unreadable_owner(req, break_glass_group)
        return allow(req, "ScaleParentUnknown" if subject is None else "NotManaged")
    gate = _gate(req, owner, lookup)
    if isinstance(gate, AdmissionResponse):
        return gate
    problem = ""
    try:
        fields = _violations(req, subject, trusted)
    except LimitExceeded as err:
        fields, problem = [], str(err)
    except RecursionError:  # a last net: every walk above is iterative and bounded
        fields, problem = [], "a value is nested too deeply to compare"
    if not fields and not problem:
        return allow(req, "NoOwnedFieldChanged")
    # The object's own stamp names the revision that last applied it; the Sync's status may lag
    # (or be cached from before the first run).
    stamped = str(((subject.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_REVISION) or "")
    if stamped:
        gate = dataclasses.replace(gate, revision=stamped)
    return _verdict(req, gate, fields, break_glass_group, problem)


def _is_scale(req: AdmissionRequest) -> bool:
    return req.sub_resource == "scale"


_LABELS_PATH: Final = "request.oldObject.metadata.labels"


def _owner_unreadable(req: AdmissionRequest) -> bool:
    """Whether the values the decoder gave up on could hide the old object's ownership labels."""
    return any((_LABELS_PATH.startswith(p) and _LABELS_PATH[len(p):len(p) + 1] in ("", "."))
               or p.startswith(_LABELS_PATH + ".") for p in req.unreadable)


def _unreadable_what(req: AdmissionRequest) -> str:
    more = len(req.unreadable) - 1
    return f"{req.unreadable[0]} is nested too deeply to read" + (f" (+{more} more)" if more > 0 else "")


# (reason, applies): requests that pass before any Sync is looked up, first match wins.
_SKIPS: Final[tuple[tuple[str, Callable[[AdmissionRequest], bool]], ...]] = (
    ("NotJudged", lambda r: r.operation not in ("UPDATE", "DELETE")),
    ("NotJudged", lambda r: _is_scale(r) and r.operation != "UPDATE"),
    ("StatusSubresource", lambda r: r.sub_resource == "status"),
    ("NotManaged", lambda r: not _is_scale(r) and ownership(r.old_object) is None and not _owner_unreadable(r)),
    ("SystemDelete", lambda r: r.operation == "DELETE" and r.user_info.username in SYSTEM_DELETERS),
)


def _gate(req: AdmissionRequest, owner: tuple[str, str], lookup: SyncLookup) -> AdmissionResponse | SyncInfo:
    """The Sync to judge against, or the early `allowed` answer."""
    sync = lookup(*owner)
    if sync is None:
        return allow(req, "OrphanSync")
    if req.user_info.username in sync.appliers:
        return allow(req, "Applier")
    if sync.suspended:
        return allow(req, "SyncSuspended")
    if sync.mode == "off":
        return allow(req, "GuardOff")
    return sync


def _violations(req: AdmissionRequest, subject: Mapping[str, Any], trusted: frozenset[str]) -> list[str]:
    """What the request does to Git's fields: ["(delete)"], the changed paths, or [].

    Raises LimitExceeded when the request can't be fully read or analysed within the bounds.
    """
    if req.operation == "DELETE":
        return ["(delete)"]
    if req.unreadable:
        raise LimitExceeded(_unreadable_what(req))
    if _is_scale(req):
        return _scale_fields(req, subject)
    controller = req.user_info.username in SYSTEM_CONTROLLERS or req.user_info.username in trusted
    return _changed_fields(subject, req.object, controller)


def _scale_fields(req: AdmissionRequest, parent: Mapping[str, Any]) -> list[str]:
    if REPLICAS not in owned_paths(parent):
        return []  # e.g. an HPA owns replicas, Git does not
    before = _replicas(req.old_object if req.old_object is not None else parent)
    return [] if same(before, _replicas(req.object)) else ["spec.replicas"]


def _replicas(obj: Mapping[str, Any] | None) -> object:
    spec = (obj or {}).get("spec")
    return spec.get("replicas") if isinstance(spec, Mapping) else None


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any] | None, controller: bool) -> list[str]:
    """Changed Git fields; a controller's changes to ownerReferences and finalizers don't count."""
    if new is None:
        return []
    owned = owned_paths(old)
    if controller:
        owned = _without_lifecycle(owned)
    fields = changed_owned(old, new, owned)
    _extend(fields, (f for f in _changed_declared(old, new) if not (controller and _is_lifecycle(f))))
    for label in (LABEL_SYNC, LABEL_SYNC_NAMESPACE):
        if _label(old, label) != _label(new, label):
            _extend(fields, [format_path((("f", "metadata"), ("f", "labels"), ("f", label)))])
    if not controller:
        _extend(fields, _added_finalizers(old, new, owned) + _added_owner_refs(old, new, owned))
    # A changed owned value also moves ownership in the record; report the record only when it
    # changed on its own (someone rewrote managedFields to disown Git's fields before editing).
    if not fields and _record_changed(old, new, owned, controller):
        fields.append(RECORD_FIELD)
    return fields


def _record_changed(old: Mapping[str, Any], new: Mapping[str, Any], owned: frozenset[FieldPath],
                    controller: bool) -> bool:
    """Whether our manager's managedFields record owns other paths in `new` than in `old`.

    Usually the entries are the very same JSON, which one comparison shows (it can't recurse
    deeper than the old entries, which were just decoded within bounds); only otherwise is the new
    record decoded.
    """
    if [e.get("fieldsV1") for e in manager_entries(old)] == [e.get("fieldsV1") for e in manager_entries(new)]:
        return False
    after = owned_paths(new)
    return (_without_lifecycle(after) if controller else after) != owned


def _changed_declared(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Declared paths our manager no longer owns whose value changes (declared.changed_lost, with
    JSON number equality (1 == 1.0) and the bounded, iterative comparison)."""
    meta = old.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    text = notes.get(ANNOTATION_FIELDS) if isinstance(notes, Mapping) else None
    trie = _decode_record(text) if isinstance(text, str) else None
    if trie is None:
        return []
    changed = []
    for path in declared.lost_paths(trie, old):
        before, after = declared.value_at(old, path), declared.value_at(new, path)
        if (before is MISSING) != (after is MISSING) or (
                before is not MISSING and not same(before, after, where="a declared value")):
            changed.append(format_path(tuple(("f", key) for key in path)))
    return changed


# The same objects come back review after review; their record is a bounded string (declared.MAX_BYTES),
# so a small cache of decoded records costs at most a few MiB. The tries are shared: read only.
_decode_record: Final = functools.lru_cache(maxsize=512)(declared.decode)


def _extend(fields: list[str], more: Iterable[str]) -> None:
    fields.extend(f for f in more if f not in fields)


def _is_lifecycle(rendered: str) -> bool:
    return any(rendered == f"metadata.{k}" or rendered.startswith((f"metadata.{k}[", f"metadata.{k}."))
               for k in LIFECYCLE)


def _without_lifecycle(paths: frozenset[FieldPath]) -> frozenset[FieldPath]:
    return frozenset(p for p in paths if not (len(p) >= 2 and p[0] == ("f", "metadata") and p[1][0] == "f"
                                              and p[1][1] in LIFECYCLE))


# ------------------------------------------------------------------ ownerReferences and finalizers


def _meta_list(obj: Mapping[str, Any], key: str) -> list[Any]:
    meta = obj.get("metadata")
    value = meta.get(key) if isinstance(meta, Mapping) else None
    if not isinstance(value, list):
        return []
    if len(value) > MAX_LIST_ITEMS:
        raise LimitExceeded(f"metadata.{key} has {len(value):,} items (at most {MAX_LIST_ITEMS:,} are read)")
    return value


def _declared_keys(owned: frozenset[FieldPath], key: str, kind: str) -> list[Any]:
    """The decoded `v:`/`k:` keys our manager owns directly under metadata.<key>."""
    prefix = (("f", "metadata"), ("f", key))
    out = []
    for path in owned:
        if len(path) >= 3 and path[:2] == prefix and path[2][0] == kind:
            try:
                out.append(json.loads(path[2][1]))
            except (ValueError, RecursionError):
                continue
    return out


def _added_finalizers(old: Mapping[str, Any], new: Mapping[str, Any], owned: frozenset[FieldPath]) -> list[str]:
    """Finalizers in `new` that `old` lacks and Git does not declare (removals are not listed)."""
    before = {f for f in _meta_list(old, "finalizers") if isinstance(f, str)}
    allowed = before | {f for f in _declared_keys(owned, "finalizers", "v") if isinstance(f, str)}
    return [format_path((("f", "metadata"), ("f", "finalizers"), ("v", json.dumps(f))))
            for f in _meta_list(new, "finalizers") if not (isinstance(f, str) and f in allowed)]


def _added_owner_refs(old: Mapping[str, Any], new: Mapping[str, Any], owned: frozenset[FieldPath]) -> list[str]:
    """ownerReferences in `new` that are new or changed, and not declared by Git (by uid)."""
    before = {ref.get("uid"): ref for ref in _meta_list(old, "ownerReferences")
              if isinstance(ref, dict) and isinstance(ref.get("uid"), str)}
    declared_uids = {k.get("uid") for k in _declared_keys(owned, "ownerReferences", "k") if isinstance(k, dict)}
    out = []
    for ref in _meta_list(new, "ownerReferences"):
        uid = ref.get("uid") if isinstance(ref, dict) else None
        if isinstance(uid, str) and (uid in declared_uids or (uid in before and same(before[uid], ref))):
            continue
        shown = _clean(str(uid))[:64] if uid is not None else "?"
        out.append(format_path((("f", "metadata"), ("f", "ownerReferences"), ("k", json.dumps({"uid": shown})))))
    return out


def _label(obj: Mapping[str, Any], key: str) -> object:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels.get(key) if isinstance(labels, Mapping) else None


# ------------------------------------------------------------------ answers


def _verdict(req: AdmissionRequest, sync: SyncInfo, fields: list[str], group: str,
             problem: str = "") -> AdmissionResponse:
    what = f"a request the guard could not analyse ({_clean(problem)[:300]}) is" if problem else _what(fields)
    if problem:
        fields = [f"(not analysed: {_clean(problem)[:200]})"]
    target = _target(req)
    sync_ref = f"{sync.namespace}/{sync.name}"
    audit = {"sync": sync_ref, "fields": _clean(", ".join(fields))[:256]}
    if in_break_glass(req, group):
        return allow(req, "BreakGlass", audit_annotations={**audit, "drift-guard": "break-glass"},
                     warnings=(_warning("break-glass: Sync {ref} owns {what}; Git reverts it unless suspended",
                                        sync_ref, _brief(fields)),))
    if sync.mode == "warn":
        return allow(req, "DriftWarned", audit_annotations={**audit, "drift-guard": "warned"},
                     warnings=(_warning("drift: Sync {ref} owns {what}; change it in Git", sync_ref,
                                        _brief(fields)),))
    message = (
        f"{target} is managed by Sync {sync_ref} (source {_safe_url(sync.source_url)}, "
        f"path {_clean(sync.path) or '.'}, revision {_clean(sync.revision) or 'unknown'}): {what} refused.\n"
        f"Change it in Git, or suspend the Sync: kubectl gitops suspend sync {sync.name} -n {sync.namespace}")
    return AdmissionResponse(uid=req.uid, allowed=False, code=403, message=message,
                             reason="Unanalysable" if problem else _deny_reason(fields),
                             audit_annotations={**audit, "drift-guard": "denied"})


def _deny_reason(fields: list[str]) -> str:
    return "DeleteRefused" if fields == ["(delete)"] else "OwnedFieldChanged"


def _unreadable_owner(req: AdmissionRequest, group: str) -> AdmissionResponse:
    """The old object's labels could not be read: no Sync to ask, so refuse (break-glass passes)."""
    what = _clean(_unreadable_what(req))[:300]
    if in_break_glass(req, group):
        return allow(req, "BreakGlass", audit_annotations={"drift-guard": "break-glass", "fields": what[:256]},
                     warnings=("break-glass: drift guard could not read this request; let through",))
    message = (f"{_target(req)}: the drift guard could not read this request ({what}), so it can't tell "
               f"whether a Sync manages the object: refused.\n"
               f"Remove the deeply nested value, or ask a member of {group or 'the break-glass group'}.")
    return AdmissionResponse(uid=req.uid, allowed=False, code=403, message=message, reason="Unreadable",
                             audit_annotations={"drift-guard": "denied", "fields": what[:256]})


MIN_FIELD_SHOWN: Final = 24
"""Characters of the field a long Sync name may not squeeze out of a warning."""


def _warning(template: str, ref: str, what: str) -> str:
    """`template` with {ref} and {what}, within MAX_WARNING: the way forward at its end is never cut.

    The generic cut in `AdmissionResponse` keeps the head and drops the tail, which is exactly the
    advice; long namespaces and field paths are common, so shorten those instead: the field from
    the left (its leaf is what says most), then the Sync reference from the right.
    """
    room = MAX_WARNING - len(template.format(ref="", what=""))
    if len(ref) + len(what) <= room:
        return template.format(ref=ref, what=what)
    what = _cut_left(what, max(room - len(ref), min(len(what), MIN_FIELD_SHOWN)))
    return template.format(ref=_cut_right(ref, room - len(what)), what=what)


def _cut_left(text: str, limit: int) -> str:
    return text if len(text) <= limit else "…" + text[len(text) - max(limit - 1, 0):]


def _cut_right(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def _brief(fields: list[str]) -> str:
    """The first field only: warnings must fit in 120 characters with the way forward."""
    if fields == ["(delete)"]:
        return "this object (delete)"
    return fields[0] + (f" (+{len(fields) - 1} more)" if len(fields) > 1 else "")


def _what(fields: list[str]) -> str:
    if fields == ["(delete)"]:
        return "delete"
    shown = ", ".join(fields[:MAX_FIELDS_SHOWN])
    more = len(fields) - MAX_FIELDS_SHOWN
    return f"change to {shown}" + (f" (+{more} more)" if more > 0 else "")


def _target(req: AdmissionRequest) -> str:
    meta = (req.old_object or {}).get("metadata")
    name = req.name or (str(meta.get("name", "")) if isinstance(meta, Mapping) else "")
    where = f"{req.namespace}/{name}" if req.namespace else name
    return f"{req.kind.kind} {where}".strip()


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]+")


def _clean(text: str) -> str:
    """One line, no control characters: these strings come from objects users can write."""
    return _CONTROL.sub(" ", text).strip()


def _safe_url(url: str) -> str:
    """The source URL without credentials or query (tokens live there), fit for any user's eyes."""
    url = _clean(url)
    if not url:
        return "unknown"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if not parts.netloc:
        return url  # scp-like git@host:org/repo: the user part is a login name, not a secret
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
