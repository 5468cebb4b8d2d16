"""Fuzzing the drift guard's pure decision: 100,000 generated AdmissionReviews, seeded, in seconds.

A seeded generator (not hypothesis: its per-example overhead would make 100,000 reviews take
minutes) builds managed objects with a random shape, gives a random subset of their leaves to
Git (the `kubectl-gitops` Apply entry in managedFields, and for some objects the declared-fields
record with leaves whose ownership moved away), mutates a copy the way clients can (values, types,
bool/int flips, removals, additions, the ownership labels, finalizers, ownerReferences, the
managedFields record), and asks `review()` as a random identity under a random Sync state. An
independent oracle, written here without the guard's code, says whether a field Git declares
changed. Properties, for every review:

* `review()` never raises and always answers the request's uid;
* it never allows a change to a field Git declares by a non-applier in enforce mode outside the
  break-glass group, and it never refuses a request that changes none (no false alarms);
* the decision is the same for every API version of the request (matchPolicy Equivalent sends
  the same object as apps/v1 or as another version of the same kind);
* one review in 25 also goes through `parse_review` as JSON text and gets the same decision.

A second test feeds hostile JSON (nesting past the decoder, oversized counts, garbage) to
`parse_review` + `review()`: it never raises anything but MalformedReview, and never allows an
UPDATE or DELETE of a managed object it could not fully read.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Iterator
from typing import Any

from kubectl_gitops.constants import ANNOTATION_FIELDS, BREAK_GLASS_GROUP, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import declared
from kubectl_gitops.core.admission import (
    AdmissionRequest,
    AdmissionResponse,
    GroupVersionKind,
    GroupVersionResource,
    MalformedReview,
    parse_review,
    request_from_review,
)
from kubectl_gitops.core.drift import SyncInfo, review

SEED = 20261127
CASES = 100_000
POOL = 500  # generated objects; each review mutates one of them afresh (copy-on-write)
APPLIER = "system:serviceaccount:team:applier"
GC = "system:serviceaccount:kube-system:generic-garbage-collector"
USERS = (APPLIER, "bob", "admin", GC, "system:serviceaccount:team:other-applier", "alice")
KEYS = ("a", "b", "c", "image", "replicas", "port", "name", "x.y/z", "enabled")
BASE = SyncInfo(name="s", namespace="team", source_url="https://git.example/r.git", path="apps",
                revision="main@sha1:1", appliers=frozenset({APPLIER}))
SYNCS = {
    "enforce": BASE,
    "warn": dataclasses.replace(BASE, mode="warn"),
    "off": dataclasses.replace(BASE, mode="off"),
    "suspended": dataclasses.replace(BASE, suspended=True),
}
VERSIONS = (("apps", "v1", "Deployment", "deployments"), ("apps", "v1beta2", "Deployment", "deployments"),
            ("example.dev", "v2", "Widget", "widgets"))

Path = tuple[str, ...]
MISSING = object()


# ------------------------------------------------------------------ generation


def scalar(rng: random.Random) -> Any:
    return rng.choice((rng.randint(0, 3), rng.choice(("x", "y", "")), True, False, None, 1.0, [1], {}))


def tree(rng: random.Random, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rng.sample(KEYS, rng.randint(1, 4)):
        out[key] = tree(rng, depth + 1) if depth < 3 and rng.random() < 0.35 else scalar(rng)
    return out


def leaves(node: Any, prefix: Path = ()) -> Iterator[Path]:
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from leaves(child, (*prefix, key))
    else:
        yield prefix


def value_at(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def fields_v1(paths: list[Path]) -> dict[str, Any]:
    trie: dict[str, Any] = {}
    for path in paths:
        node = trie
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return trie


def plain_trie(paths: list[Path]) -> dict[str, Any]:
    trie: dict[str, Any] = {}
    for path in paths:
        node = trie
        for key in path:
            node = node.setdefault(key, {})
    return trie


@dataclasses.dataclass
class Base:
    """One generated managed object and what the oracle knows about it (shared, never mutated)."""

    old: dict[str, Any]
    content: list[Path]   # its leaves under spec and data
    owned: set[Path]      # leaves our manager owns (from its managedFields, read by the oracle)
    lost: list[Path]      # leaves Git declares that another manager owns now


def managed_object(rng: random.Random) -> Base:
    body = {"spec": tree(rng, 1), "data": tree(rng, 2)}
    content = list(leaves(body))
    git = [p for p in content if rng.random() < 0.5]
    lost = [p for p in content if p not in git and rng.random() < 0.3] if rng.random() < 0.4 else []
    labels = {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: "team", "app": "w"}
    annotations: dict[str, str] = {"note": "n"}
    managed = [{"manager": "kubectl-gitops", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {f"f:{LABEL_SYNC}": {}, f"f:{LABEL_SYNC_NAMESPACE}": {}}},
                             **fields_v1(git)}}]
    if lost:
        annotations[ANNOTATION_FIELDS] = declared.encode(plain_trie(git + lost))
        managed.append({"manager": "kubectl-edit", "operation": "Update", "apiVersion": "v1",
                        "fieldsType": "FieldsV1", "fieldsV1": fields_v1(lost)})
    meta: dict[str, Any] = {"name": "w", "namespace": "team", "labels": labels, "annotations": annotations,
                            "managedFields": managed}
    if rng.random() < 0.2:
        meta["finalizers"] = ["keep.example/f"]
    if rng.random() < 0.2:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    old = {"apiVersion": "v1", "kind": "Widget", "metadata": meta, **body}
    return Base(old, content, owned_leaves(old), lost)


def writable(root: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The map at `path` in `root`, copied on the way down (copy-on-write: the base stays intact)."""
    node = root
    for key in path:
        child = node.get(key)
        if not isinstance(child, dict):
            return None
        child = dict(child)
        node[key] = child
        node = child
    return node


def mutate(rng: random.Random, base: Base) -> tuple[dict[str, Any], bool]:
    """A changed copy of `base.old`, and whether its managedFields record was touched."""
    new = dict(base.old)
    record = False
    for _ in range(rng.randint(0, 3)):
        what = rng.random()
        if what < 0.62:
            _mutate_content(rng, new, rng.choice(base.content) if base.content else ("data", "a"), what)
        else:
            record |= _mutate_metadata(rng, new, what)
    return new, record


def _flip(value: Any) -> Any:
    """true <-> 1, false <-> 0: equal in Python, different in JSON."""
    if isinstance(value, bool):
        return int(value)
    return bool(value) if isinstance(value, int) and value in (0, 1) else value


def _mutate_content(rng: random.Random, new: dict[str, Any], path: Path, what: float) -> None:
    parent = writable(new, path[:-1])
    if parent is None:
        return
    if what < 0.35:
        parent[path[-1]] = scalar(rng)
    elif what < 0.45:
        parent.pop(path[-1], None)
    elif what < 0.55:
        parent[rng.choice(KEYS)] = scalar(rng)
    else:
        parent[path[-1]] = _flip(parent.get(path[-1]))


def _mutate_metadata(rng: random.Random, new: dict[str, Any], what: float) -> bool:
    meta = writable(new, ("metadata",))
    assert meta is not None
    if what < 0.68:
        labels = writable(new, ("metadata", "labels"))
        assert labels is not None
        labels[rng.choice((LABEL_SYNC, LABEL_SYNC_NAMESPACE))] = rng.choice(("s", "other"))
    elif what < 0.74:
        meta["finalizers"] = [*(meta.get("finalizers") or []), rng.choice(("keep.example/f", "bob.example/f"))]
    elif what < 0.78:
        meta.pop("finalizers", None)
    elif what < 0.84:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
                                    "uid": rng.choice(("u1", "u2"))}]
    elif what < 0.9:
        entries = [dict(e) for e in meta["managedFields"]]
        victim = rng.choice(("f:spec", "f:data", "f:metadata"))
        entries[0]["fieldsV1"] = {k: v for k, v in entries[0]["fieldsV1"].items() if k != victim}
        meta["managedFields"] = entries
        return True
    return False  # else: no change at all


# ------------------------------------------------------------------ the oracle


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: one number type (1 == 1.0), but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def owned_leaves(obj: dict[str, Any]) -> set[Path]:
    out: set[Path] = set()
    for entry in obj["metadata"].get("managedFields") or []:
        if entry.get("manager") == "kubectl-gitops" and entry.get("operation") == "Apply":
            todo: list[tuple[Path, dict[str, Any]]] = [((), entry["fieldsV1"])]
            while todo:
                prefix, node = todo.pop()
                for key, child in node.items():
                    path = (*prefix, key[2:])
                    if child:
                        todo.append((path, child))
                    else:
                        out.add(path)
    return out


def git_changed(base: Base, new: dict[str, Any], record: bool, controller: bool) -> bool:
    old = base.old
    for path in base.owned.union(base.lost):
        before, after = value_at(old, path), value_at(new, path)
        if (before is MISSING) != (after is MISSING) or not same_json(before, after):
            return True
    if record and owned_leaves(new) != base.owned:
        return True
    if controller:
        return False
    added = set(new["metadata"].get("finalizers") or []) - set(old["metadata"].get("finalizers") or [])
    return bool(added) or (new["metadata"].get("ownerReferences") or []) != (
        old["metadata"].get("ownerReferences") or [])


# ------------------------------------------------------------------ requests


def request(old: dict[str, Any], new: dict[str, Any], operation: str, user: str, groups: tuple[str, ...],
            version: int) -> AdmissionRequest:
    group, ver, kind, resource = VERSIONS[version]
    return AdmissionRequest(
        uid=f"uid-{version}", kind=GroupVersionKind(group, ver, kind),
        resource=GroupVersionResource(group, ver, resource), operation=operation,
        user_info=_user(user, groups), request_kind=GroupVersionKind(group, ver, kind), name="w", namespace="team",
        object=None if operation == "DELETE" else new, old_object=None if operation == "CREATE" else old)


def _user(name: str, groups: tuple[str, ...]) -> Any:
    from kubectl_gitops.core.admission import UserInfo
    return UserInfo(username=name, groups=groups)


def expected_allowed(op: str, user: str, groups: tuple[str, ...], state: str, changed: bool) -> bool:
    """The decision the rules promise (docs/drift-guard.md)."""
    if op == "CREATE" or state in ("missing", "off", "suspended", "warn") or user == APPLIER:
        return True
    if BREAK_GLASS_GROUP in groups:
        return True
    if op == "DELETE":
        return user == GC
    return not changed


def to_text(req: AdmissionRequest) -> str:
    def gvk(g: GroupVersionKind) -> dict[str, str]:
        return {"group": g.group, "version": g.version, "kind": g.kind}
    body = {"uid": req.uid, "kind": gvk(req.kind),
            "resource": {"group": req.resource.group, "version": req.resource.version,
                         "resource": req.resource.resource},
            "requestKind": gvk(req.request_kind or req.kind), "name": req.name, "namespace": req.namespace,
            "operation": req.operation, "userInfo": {"username": req.user_info.username,
                                                     "groups": list(req.user_info.groups)},
            "object": req.object, "oldObject": req.old_object}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": body})


def decide(req: AdmissionRequest, state: str) -> AdmissionResponse:
    sync = SYNCS.get(state)
    return review(req, lambda ns, name: sync if (ns, name) == ("team", "s") else None,
                  break_glass_group=BREAK_GLASS_GROUP)


# ------------------------------------------------------------------ properties


def test_fuzz_review_never_raises_never_lets_git_fields_change_and_ignores_api_version() -> None:
    rng = random.Random(SEED)
    bases = [managed_object(rng) for _ in range(POOL)]
    started = time.monotonic()
    seen = {"denied": 0, "allowed": 0, "changed": 0}
    for n in range(CASES):
        base = rng.choice(bases)
        new, record = mutate(rng, base)
        op = rng.choice(("UPDATE", "UPDATE", "UPDATE", "UPDATE", "DELETE", "CREATE"))
        user = rng.choice(USERS)
        groups = (BREAK_GLASS_GROUP,) if user == "alice" else ("system:authenticated",)
        state = rng.choice(("enforce", "enforce", "enforce", "warn", "off", "suspended", "missing"))
        version = rng.randrange(len(VERSIONS))
        req = request(base.old, new, op, user, groups, version)
        resp = decide(req, state)
        assert resp.uid == req.uid
        changed = git_changed(base, new, record, controller=user == GC)
        want = expected_allowed(op, user, groups, state, changed)
        assert resp.allowed is want, (n, op, user, state, changed, resp, base.old, new)
        if n % 4 == 0:
            other = decide(request(base.old, new, op, user, groups, (version + 1) % len(VERSIONS)), state)
            assert (other.allowed, other.reason, other.code) == (resp.allowed, resp.reason, resp.code), n
        if n % 25 == 0:
            parsed = decide(parse_review(to_text(req)), state)
            assert (parsed.allowed, parsed.reason) == (resp.allowed, resp.reason), n
        seen["allowed" if resp.allowed else "denied"] += 1
        seen["changed"] += changed and op == "UPDATE"
    # The generator reaches both sides of the rule, often.
    assert min(seen.values()) > CASES // 20, seen
    assert time.monotonic() - started < 60, "the fuzz run got slow: keep the unit suite fast"


def _hostile_bodies(rng: random.Random) -> Iterator[str]:
    base = managed_object(rng)
    new, _ = mutate(rng, base)
    text = to_text(request(base.old, new, "UPDATE", "bob", (), 0))
    for _ in range(300):
        levels = rng.choice((999, 1000, 1500, 5000, 20_000))
        deep = rng.choice(("[", '{"k":')) * levels
        close = ("]" if deep.startswith("[") else "}") * levels
        where = rng.choice(('"fieldsV1": {', '"spec": {', '"data": {', '"labels": {', '"object": {'))
        at = text.find(where)
        if at < 0:
            continue
        cut = at + len(where)
        if rng.random() < 0.5:
            yield text[:cut] + f'"deep": {deep}{close}, ' + text[cut:]
        else:
            yield text[:cut] + f'"deep": {deep}' + text[cut:]  # and never closed
    for _ in range(50):
        yield text[: rng.randrange(len(text))]
        yield "".join(rng.choice('{}[]",:0a ') for _ in range(rng.randrange(200)))


def test_fuzz_hostile_json_never_crashes_and_never_unlocks_a_managed_object() -> None:
    rng = random.Random(SEED + 1)
    answered = 0
    for text in _hostile_bodies(rng):
        try:
            req = parse_review(text)
        except MalformedReview:
            continue  # answered as a refusal on /validate when the uid was found (test_webhook_app.py)
        answered += 1
        resp = decide(req, "enforce")
        if req.unreadable and req.operation in ("UPDATE", "DELETE"):
            assert resp.allowed is False, (req.unreadable, resp)
    assert answered > 100


def test_request_from_review_accepts_what_to_text_writes() -> None:
    rng = random.Random(SEED + 2)
    base = managed_object(rng)
    req = request(base.old, mutate(rng, base)[0], "UPDATE", "bob", (), 1)
    assert request_from_review(json.loads(to_text(req))) == req
