"""Shape the install manifests for where the webhook runs (pure).

The manifests under manifests/install describe the production layout (webhook Deployment +
Service). `kubectl gitops install` renders them and then, here: drops the webhook entirely
(`--no-webhook`), or points the webhook configurations at a URL (`--webhook-url`, e.g. a local
process for the dev control plane) and drops the in-cluster Deployment/Service/PDB, and fills in
the caBundle. Doing it on the rendered objects keeps one source of truth for the safety settings.

Two hardening options are shaped here too:
* `fail_closed`: failurePolicy Fail on the main guard entry only (`GUARD_ENTRY`). Never the scale
  entry (no objectSelector: it would freeze every autoscaler while the webhook is down) nor the
  stamps entry (bookkeeping must never stand in the applier's way). The entry's matchConditions
  keep the default applier, the garbage collector, the namespace controller and finalizer removal
  off the webhook, so none of them depend on it being up.
  The tenancy entries (`TENANCY_ENTRIES`) get Fail too: their matchConditions and namespaceSelector
  send only tenants' requests (and Tenant objects), so a tenant is stopped while the webhook is down
  and nobody else is (docs/tenancy.md, "At admission").
  The signature entries (`SIGNATURE_ENTRIES`, configuration kubectl-gitops-signatures) get Fail
  too, shaped so an outage stops what the guard's Fail stops and no more: the scale writes are split
  off into an entry of their own that stays Ignore (`SIGNATURES_SCALE_ENTRY`: a Scale has no labels,
  so the entry sees every scale write and would freeze every autoscaler), and the default applier
  and the control plane's finalizer removals are kept off the entry by matchConditions
  (`KEPT_OPEN`), as on the guard's. A Sync with its own applier, and anyone else writing managed
  objects, waits for the webhook (docs/webhook.md, "install --fail-closed").
* `with_client_ca`: the webhook Deployment answers reviews only for callers with a client
  certificate from the CA in a ConfigMap (the API server's, configured by the cluster admin).
"""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from kubectl_gitops.constants import SYSTEM_NAMESPACE

JSON = dict[str, Any]
WEBHOOK_CONFIG_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
WEBHOOK_NAME = "kubectl-gitops-webhook"
TLS_SECRET = "kubectl-gitops-webhook-tls"
_IN_CLUSTER_KINDS = ("Deployment", "Service", "PodDisruptionBudget")
GUARD_ENTRY = "drift-guard.kubectl-gitops.dev"
TENANCY_ENTRIES = ("tenancy.kubectl-gitops.dev", "tenancy-cluster.kubectl-gitops.dev", "tenants.kubectl-gitops.dev")
SIGNATURES_CONFIG = "kubectl-gitops-signatures"
SIGNATURES_ENTRY = "signatures.kubectl-gitops.dev"
SIGNATURES_SCALE_ENTRY = "signatures-scale.kubectl-gitops.dev"
"""Made by `--fail-closed` only: the signatures entry's scale writes, split off to stay Ignore."""
SIGNATURE_ENTRIES = (SIGNATURES_ENTRY, "trustpolicies.kubectl-gitops.dev")
FAIL_CLOSED_ENTRIES = (GUARD_ENTRY, *TENANCY_ENTRIES, *SIGNATURE_ENTRIES)
APPLIER_USERNAME = f"system:serviceaccount:{SYSTEM_NAMESPACE}:kubectl-gitops-applier"
_SYSTEM_USERS = ("['system:serviceaccount:kube-system:generic-garbage-collector', "
                 "'system:serviceaccount:kube-system:namespace-controller', 'system:kube-controller-manager']")
MANAGED_OR_AN_APPLIER: JSON = {
    "name": "managed-or-an-applier",
    "expression": f"request.userInfo.username.startsWith('system:serviceaccount:{SYSTEM_NAMESPACE}:') || "
                  "(has(object.metadata.labels) && 'kubectl-gitops.dev/sync' in object.metadata.labels) || "
                  "(oldObject != null && has(oldObject.metadata.labels) && "
                  "'kubectl-gitops.dev/sync' in oldObject.metadata.labels)"}
"""The shipped entry's condition without its scale clause (scale writes get an entry of their own that
stays Ignore). `request.subResource` is absent, not empty, on a main-resource request: the shipped
clause guards it with `has()`, since a bare `request.subResource == 'scale'` is an evaluation error
there, which failurePolicy Fail would turn into a refusal of every request the other clauses don't match."""
KEPT_OPEN: tuple[JSON, ...] = (
    {"name": "not-the-default-applier", "expression": f"request.userInfo.username != '{APPLIER_USERNAME}'"},
    {"name": "not-a-system-finalizer-update",
     "expression": f"!(request.operation == 'UPDATE' && has(oldObject.metadata.deletionTimestamp) && "
                   f"request.userInfo.username in {_SYSTEM_USERS})"},
)
"""What `--fail-closed` keeps off the signatures entry, as the drift guard's entry does: the default
applier (so `kubectl gitops sync` works during an outage) and the control plane removing
finalizers from objects being deleted."""
CLIENT_CA_KEY = "ca.crt"
CLIENT_CA_MOUNT = "/client-ca"
CLIENT_CA_CONFIGMAP = "kubectl-gitops-webhook-client-ca"
# What manifests/install/kustomization.yaml's `images:` transformer writes until an image is chosen:
# a name that can't resolve (.invalid) and a zero digest, so no pod ever runs a tag that doesn't exist.
IMAGE_PLACEHOLDER = "image-not-set.invalid/kubectl-gitops"
_DIGEST_REF = re.compile(r"^[a-z0-9][a-z0-9._:/-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$")


def _is_webhook_workload(obj: JSON) -> bool:
    meta = obj.get("metadata") or {}
    return obj.get("kind") in _IN_CLUSTER_KINDS and meta.get("name") == WEBHOOK_NAME


CONTROLLER_NAME = "kubectl-gitops-controller"
_CONTROLLER_WORKLOADS = {("Deployment", CONTROLLER_NAME), ("Service", f"{CONTROLLER_NAME}-metrics")}


def is_controller_workload(obj: JSON) -> bool:
    """The in-cluster controller's Deployment and metrics Service (not its RBAC)."""
    return (obj.get("kind"), (obj.get("metadata") or {}).get("name")) in _CONTROLLER_WORKLOADS


def select(objs: Iterable[JSON], *, webhook: bool, webhook_url: str | None = None,
           fail_closed: bool = False, controller: bool = True) -> list[JSON]:
    """The objects to apply for this install mode (deep copies; input untouched). `controller=False`
    leaves the in-cluster controller out (`dev up --controller` runs it as a local process)."""
    out: list[JSON] = []
    for original in objs:
        kind = original.get("kind")
        if not controller and is_controller_workload(original):
            continue
        if not webhook and (kind in WEBHOOK_CONFIG_KINDS or _is_webhook_workload(original)):
            continue
        if webhook_url and _is_webhook_workload(original):
            continue
        obj = copy.deepcopy(original)
        if webhook_url and kind in WEBHOOK_CONFIG_KINDS:
            _point_at_url(obj, webhook_url.rstrip("/"))
        if fail_closed and kind == "ValidatingWebhookConfiguration":
            if (obj.get("metadata") or {}).get("name") == SIGNATURES_CONFIG:
                obj["webhooks"] = _split_signatures(obj.get("webhooks") or [])
            for hook in obj.get("webhooks") or []:
                if hook.get("name") in FAIL_CLOSED_ENTRIES:
                    hook["failurePolicy"] = "Fail"
        out.append(obj)
    return out


def _split_signatures(hooks: list[JSON]) -> list[JSON]:
    """The signatures entry as two: everything but scale (Fail: `MANAGED_OR_AN_APPLIER` and `KEPT_OPEN`),
    and scale (stays Ignore)."""
    out: list[JSON] = []
    for hook in hooks:
        if hook.get("name") != SIGNATURES_ENTRY:
            out.append(hook)
            continue
        main, scale = copy.deepcopy(hook), copy.deepcopy(hook)
        main["rules"] = [{**r, "resources": [x for x in r.get("resources") or [] if not x.endswith("/scale")]}
                         for r in hook.get("rules") or []]
        main["matchConditions"] = [copy.deepcopy(MANAGED_OR_AN_APPLIER), *copy.deepcopy(KEPT_OPEN)]
        scale["name"] = SIGNATURES_SCALE_ENTRY
        scale["rules"] = [{**r, "resources": ["*/scale"]} for r in hook.get("rules") or []]
        scale.pop("matchConditions", None)  # its rules match scale writes only
        out += [main, scale]
    return out


def with_client_ca(objs: Iterable[JSON], configmap: str, names: tuple[str, ...] = ()) -> list[JSON]:
    """The webhook Deployment mounts `configmap` (key ca.crt) and refuses reviews from callers
    without a client certificate from that CA (and, given `names`, with another CN/DNS SAN)."""
    out = []
    for original in objs:
        obj = original
        if obj.get("kind") == "Deployment" and _is_webhook_workload(obj):
            obj = copy.deepcopy(original)
            pod = obj["spec"]["template"]["spec"]
            pod.setdefault("volumes", []).append(
                {"name": "client-ca", "configMap": {"name": configmap, "items": [
                    {"key": CLIENT_CA_KEY, "path": CLIENT_CA_KEY}]}})
            container = pod["containers"][0]
            container.setdefault("volumeMounts", []).append(
                {"name": "client-ca", "mountPath": CLIENT_CA_MOUNT, "readOnly": True})
            container["args"] = [*container.get("args", []), "--client-ca-file",
                                 f"{CLIENT_CA_MOUNT}/{CLIENT_CA_KEY}",
                                 *(arg for name in names for arg in ("--client-name", name))]
        out.append(obj)
    return out


def check_image(ref: str) -> str | None:
    """Why `ref` can't be the image of the in-cluster parts, or None: it must be pinned by digest
    (REPOSITORY@sha256:<64 hex>), so what runs is exactly what was built and pushed."""
    if not _DIGEST_REF.match(ref):
        return (f"--image {ref!r} is not pinned by digest: give REPOSITORY@sha256:<64 hex digits> "
                "(`make image` prints the digest; push with skopeo, see docs/install.md)")
    if ref.startswith(IMAGE_PLACEHOLDER + "@"):
        return f"--image {ref!r} is the placeholder of manifests/install, not an image"
    return None


def with_image(objs: Iterable[JSON], ref: str) -> list[JSON]:
    """Every container (and init container) still on the placeholder image runs `ref` instead."""
    out = []
    for original in objs:
        obj = original
        pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]
        if any(_is_placeholder(c.get("image")) for c in containers):
            obj = copy.deepcopy(original)
            pod = obj["spec"]["template"]["spec"]
            for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
                if _is_placeholder(container.get("image")):
                    container["image"] = ref
        out.append(obj)
    return out


def _is_placeholder(image: object) -> bool:
    return isinstance(image, str) and (image == IMAGE_PLACEHOLDER or image.startswith(IMAGE_PLACEHOLDER + "@")
                                       or image.startswith(IMAGE_PLACEHOLDER + ":"))


def _point_at_url(config: JSON, base_url: str) -> None:
    for hook in config.get("webhooks") or []:
        client = hook.get("clientConfig") or {}
        path = str((client.get("service") or {}).get("path") or "/validate")
        hook["clientConfig"] = {"url": base_url + path, "caBundle": client.get("caBundle", "")}


def with_ca_bundle(objs: Iterable[JSON], ca_pem: bytes) -> list[JSON]:
    bundle = base64.b64encode(ca_pem).decode()
    out = []
    for original in objs:
        obj = original
        if obj.get("kind") in WEBHOOK_CONFIG_KINDS:
            obj = copy.deepcopy(original)
            for hook in obj.get("webhooks") or []:
                hook.setdefault("clientConfig", {})["caBundle"] = bundle
        out.append(obj)
    return out


def tls_secret(ca_pem: bytes, cert_pem: bytes, key_pem: bytes) -> JSON:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": TLS_SECRET, "namespace": SYSTEM_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "kubectl-gitops"}},
            "data": {"tls.crt": b64(cert_pem), "tls.key": b64(key_pem), "ca.crt": b64(ca_pem)}}


def client_ca_configmap(ca_pem: bytes, name: str = CLIENT_CA_CONFIGMAP) -> JSON:
    """The ConfigMap `install --client-ca-file` makes from the API server's client CA."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": SYSTEM_NAMESPACE,
                         "labels": {"app.kubernetes.io/part-of": "kubectl-gitops"}},
            "data": {CLIENT_CA_KEY: ca_pem.decode()}}


def webhook_hosts(webhook_url: str | None) -> tuple[str, ...]:
    """SANs the serving certificate needs: the Service's DNS names, or the URL's host."""
    if webhook_url:
        host = urlsplit(webhook_url if "://" in webhook_url else f"//{webhook_url}").hostname or ""
        return tuple(dict.fromkeys((host, "127.0.0.1", "localhost")))
    svc = f"{WEBHOOK_NAME}.{SYSTEM_NAMESPACE}"
    return (WEBHOOK_NAME, svc, f"{svc}.svc", f"{svc}.svc.cluster.local")
