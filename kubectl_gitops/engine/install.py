"""`kubectl gitops install|uninstall`: the project's own manifests, applied in stages.

The manifests are rendered from manifests/install with the real `kubectl kustomize` (the same
files `kubectl apply -k` takes), shaped by the core for where the webhook runs, and applied with
the Sync applier's staging (CRDs first and Established, webhook configurations last). A serving
certificate is made with `cryptography` once and reused while it is valid and fits.
"""

from __future__ import annotations

import base64
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters import pki
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.adapters.render import render
from kubectl_gitops.constants import SYSTEM_NAMESPACE
from kubectl_gitops.core import install as shape
from kubectl_gitops.core.discovery import CONFIGMAPS, SECRETS
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.plan import plan
from kubectl_gitops.core.stages import stage_of
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine.apply import Applier, ObjectResult, Tick

JSON = dict[str, Any]
RENEW_BEFORE = dt.timedelta(days=30)


def manifests_dir() -> Path:
    """The project's manifests: next to the package (editable/source) or under the install prefix."""
    import kubectl_gitops

    for candidate in (Path(kubectl_gitops.__file__).resolve().parent.parent / "manifests",
                      Path(sys.prefix) / "share" / "kubectl-gitops" / "manifests"):
        if (candidate / "install" / "kustomization.yaml").is_file():
            return candidate
    raise GitOpsError("cannot find the kubectl-gitops manifests (manifests/install); reinstall the plugin")


@dataclass(frozen=True)
class Serving:
    """The webhook's serving certificate and the CA the API server must trust."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class Hardening:
    """`install --fail-closed` and `--client-ca-configmap/--client-name` (docs/webhook.md)."""

    fail_closed: bool = False
    client_ca_configmap: str | None = None
    client_names: tuple[str, ...] = ()
    client_ca_pem: bytes | None = None
    """With `--client-ca-file`: install writes `client_ca_configmap` from it (else it must exist)."""


def rendered(*, webhook: bool, webhook_url: str | None, hardening: Hardening = Hardening(),
             controller: bool = True, image: str | None = None) -> list[JSON]:
    """The objects to apply; `image` (REPOSITORY@sha256:...) replaces the kustomization's placeholder."""
    objs = [m.obj for m in render(manifests_dir(), "install")]
    if image is not None:
        objs = shape.with_image(objs, image)
    objs = shape.select(objs, webhook=webhook, webhook_url=webhook_url, fail_closed=hardening.fail_closed,
                        controller=controller)
    if webhook and not webhook_url and hardening.client_ca_configmap:
        objs = shape.with_client_ca(objs, hardening.client_ca_configmap, hardening.client_names)
        if hardening.client_ca_pem is not None:
            objs.append(shape.client_ca_configmap(hardening.client_ca_pem, hardening.client_ca_configmap))
    return objs


def check_client_ca(kube: Kube, hardening: Hardening) -> None:
    """The client CA ConfigMap must exist with a PEM certificate under ca.crt, or the webhook
    Pods would never start (a missing ConfigMap volume) or refuse the API server."""
    name = hardening.client_ca_configmap
    if not name:
        return
    if hardening.client_ca_pem is not None:
        if b"BEGIN CERTIFICATE" not in hardening.client_ca_pem:
            raise GitOpsError("--client-ca-file holds no PEM certificate (the CA of the API server's "
                              "webhook client certificate)")
        return
    cm = kube.get(CONFIGMAPS, name, SYSTEM_NAMESPACE)
    pem = str(((cm or {}).get("data") or {}).get(shape.CLIENT_CA_KEY) or "")
    if cm is None:
        raise GitOpsError(f"ConfigMap {SYSTEM_NAMESPACE}/{name} not found (--client-ca-configmap): create it "
                          f"with the CA of the API server's webhook client certificate under "
                          f"{shape.CLIENT_CA_KEY}: kubectl -n {SYSTEM_NAMESPACE} create configmap {name} "
                          f"--from-file={shape.CLIENT_CA_KEY}=CA.pem")
    if "BEGIN CERTIFICATE" not in pem:
        raise GitOpsError(f"ConfigMap {SYSTEM_NAMESPACE}/{name} has no PEM certificate under "
                          f"{shape.CLIENT_CA_KEY} (--client-ca-configmap)")


def serving_certificate(kube: Kube | None, webhook_url: str | None) -> Serving:
    """Reuse the Secret's certificate while it is valid for 30+ days and covers the hosts."""
    hosts = shape.webhook_hosts(webhook_url)
    existing = kube.get(SECRETS, shape.TLS_SECRET, SYSTEM_NAMESPACE) if kube is not None else None
    if existing is not None:
        data = {k: base64.b64decode(v) for k, v in (existing.get("data") or {}).items()}
        cert, key, ca = data.get("tls.crt", b""), data.get("tls.key", b""), data.get("ca.crt", b"")
        if cert and key and ca and _still_good(cert, ca, hosts):
            return Serving(ca, cert, key)
    ca_pair = pki.make_ca("kubectl-gitops webhook CA")
    leaf = pki.issue(ca_pair, shape.WEBHOOK_NAME, hosts=hosts, server=True, days=365)
    return Serving(ca_pair.cert_pem, leaf.cert_pem, leaf.key_pem)


def _still_good(cert: bytes, ca: bytes, hosts: tuple[str, ...]) -> bool:
    try:
        fresh = pki.not_after(cert) - dt.datetime.now(dt.UTC) > RENEW_BEFORE
        return fresh and pki.signed_by(cert, ca) and pki.covers(cert, hosts)
    except ValueError:
        return False


def install(kube: Kube, *, webhook: bool, webhook_url: str | None, cert_dir: Path | None = None,
            tick: Tick | None = None, hardening: Hardening = Hardening(),
            controller: bool = True, image: str | None = None) -> list[ObjectResult]:
    """`controller=False`: without the in-cluster controller Deployment (a local process runs it)."""
    if webhook and not webhook_url:
        check_client_ca(kube, hardening)
    objs = rendered(webhook=webhook, webhook_url=webhook_url, hardening=hardening, controller=controller,
                    image=image)
    if webhook:
        serving = serving_certificate(kube, webhook_url)
        objs = shape.with_ca_bundle(objs, serving.ca_pem)
        objs.append(shape.tls_secret(serving.ca_pem, serving.cert_pem, serving.key_pem))
        if cert_dir is not None:
            write_cert_dir(serving, cert_dir)
    applier = Applier(kube, kube.discover(), "", "", tick=tick)
    return applier.apply(plan(objs, {}), time.time())


def write_cert_dir(serving: Serving, cert_dir: Path) -> None:
    """tls.crt / tls.key / ca.crt for a webhook process running outside the cluster."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    (cert_dir / "ca.crt").write_bytes(serving.ca_pem)
    pki.KeyPair(serving.cert_pem, serving.key_pem).write(cert_dir / "tls.crt", cert_dir / "tls.key")


def _release_syncs(kube: Kube, resources: Any, objs: list[JSON]) -> None:
    """Stop the in-cluster controller, then drop its finalizer from every Sync (orphaning their
    objects, as uninstall always has): deleting the CRDs would otherwise wait forever on Syncs
    whose finalizer no controller is left to run (docs/controller.md)."""
    from kubectl_gitops.constants import ANNOTATION_ORPHAN, FINALIZER
    from kubectl_gitops.engine.record import SYNCS

    for obj in objs:
        if shape.is_controller_workload(obj) and obj.get("kind") == "Deployment":
            info = resources.get("apps/v1", "Deployment")
            if info is not None:
                kube.delete(info, obj["metadata"]["name"], obj["metadata"]["namespace"])
    if resources.get(SYNCS.api_version, SYNCS.kind) is None:
        return
    for sync in kube.list(SYNCS):
        meta = sync.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            continue
        patch = {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER],
                              "annotations": {ANNOTATION_ORPHAN: "true"},
                              "resourceVersion": meta.get("resourceVersion")}}
        try:
            kube.merge_patch(SYNCS, str(meta.get("name")), str(meta.get("namespace")), patch)
        except GitOpsError as err:
            print(f"warning: Sync {meta.get('namespace')}/{meta.get('name')}: cannot remove the finalizer "
                  f"({err}); remove it by hand: kubectl gitops delete sync NAME --keep", file=sys.stderr)


def uninstall_objects() -> list[JSON]:
    """Everything `install` may have created, in the order `uninstall` deletes it: reverse stage
    order, webhook configurations first, so nothing is ever locked out."""
    objs = rendered(webhook=True, webhook_url=None)
    objs.append(shape.tls_secret(b"", b"", b""))
    objs.append(shape.client_ca_configmap(b""))
    return sorted(objs, key=lambda o: -stage_of(o))


def uninstall(kube: Kube) -> list[ObjectResult]:
    """Delete `uninstall_objects()` in order; each object's result (deleted, absent or failed)."""
    resources = kube.discover()
    results: list[ObjectResult] = []
    from kubectl_gitops.core.objects import ref_of

    objs = uninstall_objects()
    _release_syncs(kube, resources, objs)
    for obj in objs:
        ref = ref_of(obj)
        info = resources.get(ref.api_version, ref.kind)
        if info is None:
            continue
        try:
            gone = kube.delete(info, ref.name, ref.namespace or None)
        except GitOpsError as err:
            results.append(ObjectResult(ref, ObjectAction.FAILED, str(err)))
            continue
        results.append(ObjectResult(ref, ObjectAction.DELETED if gone else ObjectAction.ABSENT))
    return results
