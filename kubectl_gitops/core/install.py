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
  too: a stolen applier token plus a webhook outage must not be enough to run unsigned content.
  Their matchConditions send only managed objects, the appliers' writes, TrustPolicies and scale
  writes; the cost is that while the webhook is down, scale writes (an HPA's included) outside
  kube-system and kubectl-gitops-system are refused as well (docs/webhook.md, "Fail closed").
* `with_client_ca`: the webhook Deployment answers reviews only for callers with a client
  certificate from the CA in a ConfigMap (the API server's, configured by the cluster admin).
"""

from __future__ import annotations

import base64
import copy
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
SIGNATURE_ENTRIES = ("signatures.kubectl-gitops.dev", "trustpolicies.kubectl-gitops.dev")
FAIL_CLOSED_ENTRIES = (GUARD_ENTRY, *TENANCY_ENTRIES, *SIGNATURE_ENTRIES)
CLIENT_CA_KEY = "ca.crt"
CLIENT_CA_MOUNT = "/client-ca"
CLIENT_CA_CONFIGMAP = "kubectl-gitops-webhook-client-ca"


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
            for hook in obj.get("webhooks") or []:
                if hook.get("name") in FAIL_CLOSED_ENTRIES:
                    hook["failurePolicy"] = "Fail"
        out.append(obj)
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
