"""AdmissionReview v1 in and out, as frozen values (pure).

The API server is the only legitimate client of the webhook, but the webhook still treats every
body as untrusted input: `parse_review` checks each field it reads and raises `MalformedReview`
with a reason precise enough to debug a webhook configuration from the API server's log, and
with `request.uid` whenever it could be found, so the Flask layer can still answer a well-formed
review (a refusal on /validate) instead of an HTTP error that `failurePolicy: Ignore` would turn
into "allowed". Policy code then works on `AdmissionRequest`, never on the raw dict, so a missing
or mistyped field can not silently become "allowed".

Objects are stored by the API server with arbitrary nesting where it keeps no schema; a value too
deep for Python's decoder does not make the review unreadable: `core.bounded.decode_partial` reads
the rest, and the request lists the values it could not read in `unreadable` (the guard refuses to
judge a managed object it could not read).

`to_review` is the one place that knows the response wire format: uid echoed, `status` only when
there is something to say, warnings cut to the 120 characters the API server accepts, and the
patch as base64 JSONPatch.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kubectl_gitops.core.bounded import decode_partial, find_uid
from kubectl_gitops.core.errors import GitOpsError

JSON = dict[str, Any]

REVIEW_API_VERSION: Final = "admission.k8s.io/v1"
REVIEW_KIND: Final = "AdmissionReview"
OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
MAX_WARNING: Final = 120
"""The API server drops (and logs) warnings longer than this, so they are cut here instead."""


class MalformedReview(GitOpsError):
    """The body is not an AdmissionReview v1 request; `str(err)` says exactly why.

    `uid` is `request.uid` when it could be read anyway ("" otherwise): enough to answer.
    """

    reason = "MalformedReview"

    def __init__(self, message: str, uid: str = "") -> None:
        super().__init__(message)
        self.uid = uid


@dataclass(frozen=True)
class GroupVersionKind:
    group: str
    version: str
    kind: str


@dataclass(frozen=True)
class GroupVersionResource:
    group: str
    version: str
    resource: str


@dataclass(frozen=True)
class UserInfo:
    """Who sent the request, as the API server authenticated it: the only identity we trust."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdmissionRequest:
    """One admission request. `object`/`old_object`/`options` are the decoded JSON; treat as read-only."""

    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    operation: str
    user_info: UserInfo
    sub_resource: str = ""
    request_kind: GroupVersionKind | None = None
    name: str = ""
    namespace: str = ""
    object: JSON | None = None
    old_object: JSON | None = None
    dry_run: bool = False
    options: JSON | None = None
    unreadable: tuple[str, ...] = ()
    """Paths of values nested too deeply to decode (replaced by None), e.g.
    `request.oldObject.metadata.managedFields[0].fieldsV1`: the request can't be fully judged."""


@dataclass(frozen=True)
class AdmissionResponse:
    """A decision. `reason` is a short machine word for metrics and logs; it is not sent."""

    uid: str
    allowed: bool
    code: int | None = None
    message: str = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()
    patch: tuple[JSON, ...] = ()
    audit_annotations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        cut = tuple(_cut(w, MAX_WARNING) for w in self.warnings)
        object.__setattr__(self, "warnings", cut)
        object.__setattr__(self, "patch", tuple(self.patch))
        object.__setattr__(self, "audit_annotations", dict(self.audit_annotations))


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())  # one line: the API server prints warnings verbatim
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------ parsing


def parse_review(body: bytes | str) -> AdmissionRequest:
    """Decode an HTTP body into an AdmissionRequest or raise MalformedReview (with the uid if found)."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as err:
        raise MalformedReview(f"body is not JSON (not UTF-8): {err}",
                              uid=find_uid(body.decode("latin-1") if isinstance(body, bytes) else "")) from None
    unreadable: list[str] = []
    try:
        doc = json.loads(text)
    except RecursionError:
        # Nested deeper than the decoder goes: somewhere in an object a client stored.
        try:
            doc, unreadable = decode_partial(text)
        except (ValueError, RecursionError) as err:
            raise MalformedReview(f"body is not JSON: nested too deeply, and {err}", uid=find_uid(text)) from None
    except ValueError as err:
        raise MalformedReview(f"body is not JSON: {err}", uid=find_uid(text)) from None
    req = request_from_review(doc)
    return dataclasses.replace(req, unreadable=tuple(unreadable)) if unreadable else req


def request_from_review(doc: object) -> AdmissionRequest:
    """Validate a decoded AdmissionReview and return its request."""
    if not isinstance(doc, dict):
        raise MalformedReview(f"body is not a JSON object but {_type(doc)}")
    if doc.get("apiVersion") != REVIEW_API_VERSION:
        raise MalformedReview(f"apiVersion must be {REVIEW_API_VERSION}, got {doc.get('apiVersion')!r}")
    if doc.get("kind") != REVIEW_KIND:
        raise MalformedReview(f"kind must be {REVIEW_KIND}, got {doc.get('kind')!r}")
    if "request" not in doc or doc["request"] is None:
        raise MalformedReview("request is missing")
    req = _obj(doc["request"], "request")
    uid = _str(req, "uid", "request")
    if not uid:
        raise MalformedReview("request.uid is missing or empty")
    try:
        return _request(req, uid)
    except MalformedReview as err:
        raise MalformedReview(str(err), uid=uid) from None


def _request(req: JSON, uid: str) -> AdmissionRequest:
    operation = _str(req, "operation", "request")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {sorted(OPERATIONS)}, got {operation!r}")
    return AdmissionRequest(
        uid=uid,
        kind=_gvk(_obj(req.get("kind"), "request.kind"), "request.kind"),
        resource=_gvr(_obj(req.get("resource"), "request.resource")),
        operation=operation,
        user_info=_user(_obj(req.get("userInfo"), "request.userInfo")),
        sub_resource=_opt_str(req, "subResource", "request"),
        request_kind=_opt_gvk(req.get("requestKind"), "request.requestKind"),
        name=_opt_str(req, "name", "request"),
        namespace=_opt_str(req, "namespace", "request"),
        object=_opt_obj(req.get("object"), "request.object"),
        old_object=_opt_obj(req.get("oldObject"), "request.oldObject"),
        dry_run=_opt_bool(req.get("dryRun"), "request.dryRun"),
        options=_opt_obj(req.get("options"), "request.options"),
    )


def _type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _obj(value: object, where: str) -> JSON:
    if value is None:
        raise MalformedReview(f"{where} is missing")
    if not isinstance(value, dict):
        raise MalformedReview(f"{where} must be an object, got {_type(value)}")
    return value


def _opt_obj(value: object, where: str) -> JSON | None:
    return None if value is None else _obj(value, where)


def _str(parent: JSON, key: str, where: str) -> str:
    value = parent.get(key)
    if value is None:
        raise MalformedReview(f"{where}.{key} is missing")
    if not isinstance(value, str):
        raise MalformedReview(f"{where}.{key} must be a string, got {_type(value)}")
    return value


def _opt_str(parent: JSON, key: str, where: str) -> str:
    return "" if parent.get(key) is None else _str(parent, key, where)


def _opt_bool(value: object, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise MalformedReview(f"{where} must be a boolean, got {_type(value)}")
    return value


def _gvk(raw: JSON, where: str) -> GroupVersionKind:
    # group is "" for the core API group, so it may be absent; version and kind may not.
    return GroupVersionKind(_opt_str(raw, "group", where), _str(raw, "version", where), _str(raw, "kind", where))


def _opt_gvk(value: object, where: str) -> GroupVersionKind | None:
    return None if value is None else _gvk(_obj(value, where), where)


def _gvr(raw: JSON) -> GroupVersionResource:
    where = "request.resource"
    return GroupVersionResource(
        _opt_str(raw, "group", where), _str(raw, "version", where), _str(raw, "resource", where))


def _user(raw: JSON) -> UserInfo:
    where = "request.userInfo"
    groups = raw.get("groups")
    if groups is None:
        groups = []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise MalformedReview(f"{where}.groups must be a list of strings")
    return UserInfo(_opt_str(raw, "username", where), _opt_str(raw, "uid", where), tuple(groups))


# ------------------------------------------------------------------ responses


def allow(req: AdmissionRequest, reason: str, **kwargs: Any) -> AdmissionResponse:
    """An `allowed` response for `req` (kwargs: warnings, patch, audit_annotations, message)."""
    return AdmissionResponse(uid=req.uid, allowed=True, reason=reason, **kwargs)


def to_review(resp: AdmissionResponse) -> JSON:
    """The AdmissionReview v1 body answering `resp.uid`."""
    out: JSON = {"uid": resp.uid, "allowed": resp.allowed}
    if resp.code is not None or resp.message:
        status: JSON = {}
        if resp.code is not None:
            status["code"] = resp.code
        if resp.message:
            status["message"] = resp.message
        if not resp.allowed and resp.code == 403:
            status["reason"] = "Forbidden"
        out["status"] = status
    if resp.warnings:
        out["warnings"] = list(resp.warnings)
    # A patch only means something on an admitted request; the API server rejects a review that
    # denies and patches at once, so a denial never carries one.
    if resp.patch and resp.allowed:
        out["patchType"] = "JSONPatch"
        out["patch"] = base64.b64encode(json.dumps(list(resp.patch)).encode()).decode("ascii")
    if resp.audit_annotations:
        out["auditAnnotations"] = dict(resp.audit_annotations)
    return {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND, "response": out}
