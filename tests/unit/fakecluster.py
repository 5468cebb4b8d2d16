"""An in-memory API server and Git source for driving the whole Engine in unit tests.

`FakeCluster` implements the part of the Kube adapter the engine uses (get, list by label, server-
side apply, delete, create, merge patch with resourceVersion preconditions, discovery, the two raw
requests) over a dict of objects, and records every call in order, so a test can say what the
engine did and in which order. Server-side apply is simplified: the applied object replaces the
stored one, keeping the server's metadata, with a managedFields entry for the field manager
(tests/unit/fakefields.py). Any call can be made to fail (`fail`), once or always.

`FakeFetcher` stands in for engine.source.SourceFetcher: it serves a tree of files written to a
temporary directory, at a revision the test chooses, and can be made to fail.

It is not a stand-in for the e2e suite (which runs the real control plane); it exists so the
engine's control flow (step order, what is recorded on each failure, the inventory after a
partial apply) is tested without one.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from kubectl_gitops.adapters.git import SourcePolicy
from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.core.discovery import ResourceInfo, ResourceMap
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.objects import IdentityKey
from kubectl_gitops.engine.source import SourceFetcher, Tree
from tests.unit.fakefields import applied

JSON = dict[str, Any]

SYNCS = ResourceInfo("kubectl-gitops.dev", "v1alpha1", "Sync", "syncs", True)
SOURCES = ResourceInfo("kubectl-gitops.dev", "v1alpha1", "GitSource", "gitsources", True)
RESOURCES = [
    SYNCS, SOURCES,
    ResourceInfo("events.k8s.io", "v1", "Event", "events", True),
    ResourceInfo("", "v1", "Namespace", "namespaces", False),
    ResourceInfo("", "v1", "ConfigMap", "configmaps", True),
    ResourceInfo("", "v1", "Secret", "secrets", True),
    ResourceInfo("", "v1", "Service", "services", True),
    ResourceInfo("apps", "v1", "Deployment", "deployments", True),
]


@dataclass(frozen=True)
class Call:
    verb: str
    kind: str
    name: str = ""
    user: str | None = None
    subresource: str | None = None


@dataclass
class Failure:
    verb: str
    kind: str
    name: str
    error: BaseException
    times: int | None
    """How many more calls fail (None: all of them)."""


@dataclass
class _State:
    objects: dict[IdentityKey, JSON] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    events: list[JSON] = field(default_factory=list)
    version: int = 100
    lock: threading.RLock = field(default_factory=threading.RLock)


def _key(info: ResourceInfo, name: str, namespace: str | None) -> IdentityKey:
    return (info.group, info.kind, (namespace or "") if info.namespaced else "", name)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _matches(labels: dict[str, str], selector: str) -> bool:
    wanted = dict(part.split("=", 1) for part in selector.split(",") if part)
    return all(labels.get(k) == v for k, v in wanted.items())


class FakeCluster:
    """The Kube adapter's surface, in memory. `impersonating` returns a view on the same state."""

    def __init__(self, resources: list[ResourceInfo] | None = None, *, state: _State | None = None,
                 user: str | None = None) -> None:
        self.resources = ResourceMap(resources or RESOURCES)
        self.state = state or _State()
        self.user = user
        self.server = "https://fake.invalid:6443"
        self.context = "fake"
        self.default_namespace = "default"
        self.timeout = 30.0
        self.headers: dict[str, str] = {}

    @property
    def kube(self) -> Kube:
        """This fake, typed as what the engine takes."""
        return cast(Kube, self)

    # ------------------------------------------------------------ test controls

    def add(self, obj: JSON) -> JSON:
        """Store `obj` as if created earlier (server metadata filled in)."""
        info = self._info(obj["apiVersion"], obj["kind"])
        meta = obj.setdefault("metadata", {})
        with self.state.lock:
            self.state.version += 1
            meta.setdefault("uid", f"uid-{meta['name']}")
            meta.setdefault("creationTimestamp", "2024-01-02T03:04:05Z")
            meta.setdefault("generation", 1)
            meta["resourceVersion"] = str(self.state.version)
            self.state.objects[_key(info, meta["name"], meta.get("namespace"))] = copy.deepcopy(obj)
        return obj

    def fail(self, verb: str, kind: str = "*", name: str = "*", *, status: int = 403,
             message: str = "", error: BaseException | None = None, times: int | None = None) -> None:
        """Make matching calls raise `error` (default: an ApiError with `status` and `message`)."""
        err = error or ApiError(status, message or f"{verb} {kind} {name}: refused by the fake API server")
        self.state.failures.append(Failure(verb, kind, name, err, times))

    def heal(self) -> None:
        self.state.failures.clear()

    def stored(self, info: ResourceInfo, name: str, namespace: str | None = None) -> JSON | None:
        found = self.state.objects.get(_key(info, name, namespace))
        return copy.deepcopy(found) if found is not None else None

    def names(self, kind: str) -> set[str]:
        return {k[3] for k in self.state.objects if k[1] == kind}

    @property
    def calls(self) -> list[Call]:
        return list(self.state.calls)

    def verbs(self, *, skip: tuple[str, ...] = ("create",)) -> list[str]:
        """`verb kind[/subresource]` of every call in order (Events left out unless asked)."""
        return [f"{c.verb} {c.kind}" + (f"/{c.subresource}" if c.subresource else "")
                for c in self.state.calls if c.verb not in skip]

    # ------------------------------------------------------------ the adapter's surface

    def impersonating(self, user: str | None) -> FakeCluster:
        view = FakeCluster(state=self.state, user=user or self.user)
        view.resources = self.resources
        return view

    def _call(self, verb: str, kind: str, name: str = "", subresource: str | None = None) -> None:
        with self.state.lock:
            self.state.calls.append(Call(verb, kind, name, self.user, subresource))
            for failure in self.state.failures:
                if failure.verb == verb and failure.kind in ("*", kind) and failure.name in ("*", name):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self.state.failures.remove(failure)
                    raise failure.error

    def _info(self, api_version: str, kind: str) -> ResourceInfo:
        found = self.resources.get(api_version, kind)
        if found is None:
            raise ApiError(404, f"the server could not find the requested resource ({kind} {api_version})")
        return found

    def _served(self, info: ResourceInfo) -> None:
        if self.resources.get(info.api_version, info.kind) is None:
            raise ApiError(404, f"the server could not find the requested resource ({info.plural})")

    def discover(self) -> ResourceMap:
        self._call("discover", "*")
        return self.resources

    def request(self, method: str, path: str, **kwargs: Any) -> JSON:
        self._call("request", path)
        if path.endswith("/selfsubjectreviews"):
            return {"status": {"userInfo": {"username": "operator"}}}
        if method == "GET" and path.startswith("/apis/kubectl-gitops.dev/"):
            return {"kind": "APIResourceList"}
        raise AssertionError(f"the fake API server has no answer for {method} {path}")

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> JSON | None:
        self._call("get", info.kind, name)
        self._served(info)
        return self.stored(info, name, namespace)

    def list(self, info: ResourceInfo, *, label_selector: str = "", namespace: str | None = None,
             page: int = 1000) -> list[JSON]:
        self._call("list", info.kind)
        self._served(info)
        with self.state.lock:
            return [copy.deepcopy(o) for (g, k, ns, _), o in sorted(self.state.objects.items())
                    if (g, k) == (info.group, info.kind) and (namespace is None or ns == namespace)
                    and _matches((o.get("metadata") or {}).get("labels") or {}, label_selector)]

    def apply(self, info: ResourceInfo, obj: JSON, *, field_manager: str, force: bool = True,
              dry_run: bool = False) -> JSON:
        meta = obj["metadata"]
        self._call("apply", obj["kind"], meta["name"])
        key = _key(info, meta["name"], meta.get("namespace"))
        out = applied(obj, field_manager)
        with self.state.lock:
            existing = self.state.objects.get(key)
            self.state.version += 1
            kept = (existing or {}).get("metadata") or {}
            out["metadata"].update({
                "uid": kept.get("uid") or f"uid-{meta['name']}",
                "creationTimestamp": kept.get("creationTimestamp") or time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime()),
                "generation": int(kept.get("generation") or 0) + 1,
                "resourceVersion": str(self.state.version),
            })
            if existing and "status" in existing:
                out["status"] = existing["status"]
            if not dry_run:
                self.state.objects[key] = out
        return copy.deepcopy(out)

    def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
               propagation: str = "Background") -> bool:
        return self.delete_object(info, name, namespace, propagation=propagation) is not None

    def delete_object(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                      propagation: str = "Background") -> JSON | None:
        self._call("delete", info.kind, name)
        key = _key(info, name, namespace)
        with self.state.lock:
            found = self.state.objects.get(key)
            if found is None:
                return None
            if found["metadata"].get("finalizers"):
                found["metadata"]["deletionTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                return copy.deepcopy(found)
            return self.state.objects.pop(key)

    def create(self, info: ResourceInfo, obj: JSON) -> JSON:
        self._call("create", info.kind, str((obj.get("metadata") or {}).get("name") or ""))
        with self.state.lock:
            if info.kind == "Event":
                self.state.events.append(copy.deepcopy(obj))
                return obj
        return self.add(copy.deepcopy(obj))

    def merge_patch(self, info: ResourceInfo, name: str, namespace: str | None, patch: JSON, *,
                    subresource: str | None = None) -> JSON:
        self._call("patch", info.kind, name, subresource)
        key = _key(info, name, namespace)
        with self.state.lock:
            found = self.state.objects.get(key)
            if found is None:
                raise ApiError(404, f"{info.plural} {name!r} not found")
            wanted = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != found["metadata"]["resourceVersion"]:
                raise ApiError(409, "the object has been modified; please apply your changes to the latest "
                                    "version and try again", "Conflict")
            body = {k: v for k, v in patch.items() if k != "metadata"}
            body = {"status": body.get("status")} if subresource == "status" else \
                {k: v for k, v in body.items() if k != "status"}
            merged = merge_patch(found, body)
            self.state.version += 1
            merged["metadata"]["resourceVersion"] = str(self.state.version)
            if subresource != "status" and merged.get("spec") != found.get("spec"):
                merged["metadata"]["generation"] = int(found["metadata"].get("generation") or 0) + 1
            self.state.objects[key] = merged
            return copy.deepcopy(merged)


class FakeFetcher:
    """SourceFetcher's surface: the GitSource read from the fake cluster, a tree of `files`."""

    def __init__(self, cluster: FakeCluster, files: dict[str, str], *, sha: str = "a" * 40,
                 ref: str = "main") -> None:
        self.cluster = cluster
        self.files = dict(files)
        self.sha = sha
        self.ref = ref
        self.policy = SourcePolicy()
        self.secrets: tuple[str, ...] = ()
        self.error: BaseException | None = None
        """Raised by the next checkout (a fetch or verification failure)."""
        self.checkouts = 0
        self.pins: list[str] = []

    @property
    def fetcher(self) -> SourceFetcher:
        """This fake, typed as what the engine takes."""
        return cast(SourceFetcher, self)

    @property
    def revision(self) -> str:
        return f"{self.ref}@sha1:{self.sha}"

    def commit(self, files: dict[str, str], sha: str) -> None:
        self.files, self.sha = dict(files), sha

    def get_source(self, namespace: str, name: str) -> JSON:
        found = self.cluster.get(SOURCES, name, namespace)
        if found is None:
            raise SourceFailed(f"GitSource {namespace}/{name} not found")
        return found

    def tenant_policy(self, allow_file_urls: bool) -> SourcePolicy:
        return self.policy

    @contextmanager
    def checkout(self, source: JSON, policy: SourcePolicy | None = None, pin: str = "") -> Iterator[Tree]:
        self.checkouts += 1
        self.pins.append(pin)
        if self.error is not None:
            raise self.error
        with tempfile.TemporaryDirectory(prefix="fake-tree-") as tmp:
            for path, text in self.files.items():
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            yield Tree(Path(tmp), self.revision, self.sha)
