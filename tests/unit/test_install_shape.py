"""core/install.py on the REAL rendered install manifests (`kubectl kustomize manifests/install`).

What `kubectl gitops install` applies in each mode: everything, no webhook (`--no-webhook`), or the
webhook configurations pointed at a URL without the in-cluster workload (`--webhook-url`). The safety
settings must come through untouched from the manifests, whatever the mode.
"""

from __future__ import annotations

import base64
import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import SYSTEM_NAMESPACE
from kubectl_gitops.core.install import (
    TLS_SECRET,
    WEBHOOK_CONFIG_KINDS,
    WEBHOOK_NAME,
    select,
    tls_secret,
    webhook_hosts,
    with_ca_bundle,
)

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]
URL = "https://127.0.0.1:9443"
CA = b"-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUQ2E=\n-----END CERTIFICATE-----\n"
SAFETY = ("namespaceSelector", "objectSelector", "failurePolicy", "timeoutSeconds", "sideEffects", "rules",
          "matchPolicy", "admissionReviewVersions", "name")

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")


@pytest.fixture(scope="module")
def rendered() -> list[JSON]:
    proc = subprocess.run(["kubectl", "kustomize", str(ROOT / "manifests" / "install")],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture()
def objs(rendered: list[JSON]) -> list[JSON]:
    return copy.deepcopy(rendered)


def ids(objs: list[JSON]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def configs(objs: list[JSON]) -> list[JSON]:
    return [o for o in objs if o["kind"] in WEBHOOK_CONFIG_KINDS]


def hooks(objs: list[JSON]) -> list[JSON]:
    return [hook for config in configs(objs) for hook in config["webhooks"]]


WORKLOAD = {("Deployment", WEBHOOK_NAME), ("Service", WEBHOOK_NAME), ("PodDisruptionBudget", WEBHOOK_NAME)}


def test_the_rendered_manifests_have_what_these_tests_rely_on(objs: list[JSON]) -> None:
    have = ids(objs)
    assert have >= WORKLOAD
    assert {o["kind"] for o in configs(objs)} == set(WEBHOOK_CONFIG_KINDS)
    assert len(hooks(objs)) >= 2
    assert all("service" in h["clientConfig"] for h in hooks(objs))
    assert ("Namespace", SYSTEM_NAMESPACE) in have


def test_select_with_webhook_keeps_everything(objs: list[JSON]) -> None:
    out = select(objs, webhook=True)
    assert out == objs
    assert [o["kind"] for o in out] == [o["kind"] for o in objs]  # order kept


def test_no_webhook_drops_configurations_and_workload(objs: list[JSON]) -> None:
    out = select(objs, webhook=False)
    assert not configs(out)
    assert not (WORKLOAD & ids(out))
    dropped = ids(objs) - ids(out)
    assert dropped == WORKLOAD | {(o["kind"], o["metadata"]["name"]) for o in configs(objs)}


def test_no_webhook_keeps_crds_namespace_and_rbac(objs: list[JSON]) -> None:
    out = select(objs, webhook=False)
    kept = ids(out)
    assert ("Namespace", SYSTEM_NAMESPACE) in kept
    assert ("CustomResourceDefinition", "gitsources.kubectl-gitops.dev") in kept
    assert ("CustomResourceDefinition", "syncs.kubectl-gitops.dev") in kept
    assert ("ServiceAccount", "kubectl-gitops-applier") in kept
    assert ("ClusterRole", "kubectl-gitops-applier") in kept
    assert ("ClusterRoleBinding", "kubectl-gitops-applier") in kept
    every_rbac = {(o["kind"], o["metadata"]["name"]) for o in objs
                  if o["apiVersion"].startswith("rbac.authorization.k8s.io/")}
    assert every_rbac <= kept


def test_webhook_url_points_every_hook_at_the_url(objs: list[JSON]) -> None:
    out = select(objs, webhook=True, webhook_url=URL + "/")  # a trailing slash is not doubled
    assert {o["kind"] for o in configs(out)} == set(WEBHOOK_CONFIG_KINDS)
    assert len(hooks(out)) == len(hooks(objs))
    for config in configs(out):
        path = "/mutate" if config["kind"] == "MutatingWebhookConfiguration" else "/validate"
        for hook in config["webhooks"]:
            if config["metadata"]["name"] == "kubectl-gitops-tenancy":
                path = "/tenancy"
            if config["metadata"]["name"] == "kubectl-gitops-signatures":
                path = "/signatures"
            assert hook["clientConfig"]["url"] == URL + path
            assert "service" not in hook["clientConfig"]  # url and service are mutually exclusive


def test_webhook_url_uses_each_hooks_own_path(objs: list[JSON]) -> None:
    before = [h["clientConfig"]["service"]["path"] for h in hooks(objs)]
    after = [h["clientConfig"]["url"] for h in hooks(select(objs, webhook=True, webhook_url=URL))]
    assert after == [URL + path for path in before]


def test_webhook_url_drops_the_in_cluster_workload_only(objs: list[JSON]) -> None:
    out = select(objs, webhook=True, webhook_url=URL)
    assert ids(objs) - ids(out) == WORKLOAD
    assert not (WORKLOAD & ids(out))


@pytest.mark.parametrize("mode", [{"webhook": True}, {"webhook": True, "webhook_url": URL}])
def test_safety_settings_unchanged_by_select(objs: list[JSON], mode: JSON) -> None:
    want = [{k: h.get(k) for k in SAFETY} for h in hooks(objs)]
    got = [{k: h.get(k) for k in SAFETY} for h in hooks(select(objs, **mode))]
    assert got == want
    for hook in hooks(select(objs, **mode)):
        assert hook["sideEffects"] == "None"
        assert hook["failurePolicy"] in ("Ignore", "Fail")
        assert 1 <= hook["timeoutSeconds"] <= 10
        skipped = hook["namespaceSelector"]["matchExpressions"][0]
        assert skipped["key"] == "kubernetes.io/metadata.name"
        assert skipped["operator"] == "NotIn"
        assert {"kube-system", SYSTEM_NAMESPACE} <= set(skipped["values"])


@pytest.mark.parametrize("mode", [{"webhook": True}, {"webhook": False}, {"webhook": True, "webhook_url": URL}])
def test_select_never_mutates_its_input(rendered: list[JSON], objs: list[JSON], mode: JSON) -> None:
    out = select(objs, **mode)
    assert objs == rendered
    for got in out:  # deep copies: editing the output can't reach the input
        got["metadata"]["name"] = "changed"
        for hook in got.get("webhooks") or []:
            hook["clientConfig"]["caBundle"] = "changed"
    assert objs == rendered


def test_with_ca_bundle_fills_every_entry(objs: list[JSON]) -> None:
    out = with_ca_bundle(objs, CA)
    expected = base64.b64encode(CA).decode()
    assert hooks(out)
    for hook in hooks(out):
        assert hook["clientConfig"]["caBundle"] == expected
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == CA
    assert len(out) == len(objs)


def test_with_ca_bundle_after_url_keeps_the_url(objs: list[JSON]) -> None:
    out = with_ca_bundle(select(objs, webhook=True, webhook_url=URL), CA)
    for hook in hooks(out):
        assert hook["clientConfig"]["url"].startswith(URL + "/")
        assert hook["clientConfig"]["caBundle"] == base64.b64encode(CA).decode()


def test_with_ca_bundle_does_not_mutate_and_leaves_others_alone(rendered: list[JSON], objs: list[JSON]) -> None:
    out = with_ca_bundle(objs, CA)
    assert objs == rendered
    assert all(h["clientConfig"]["caBundle"] == "" for h in hooks(objs))
    others = [(a, b) for a, b in zip(objs, out, strict=True) if a["kind"] not in WEBHOOK_CONFIG_KINDS]
    assert others
    assert all(a == b for a, b in others)


def test_with_ca_bundle_creates_a_missing_client_config() -> None:
    config: JSON = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
                    "metadata": {"name": "x"}, "webhooks": [{"name": "x.example.com"}]}
    out = with_ca_bundle([config], CA)
    assert out[0]["webhooks"][0]["clientConfig"] == {"caBundle": base64.b64encode(CA).decode()}
    assert "clientConfig" not in config["webhooks"][0]


def test_tls_secret_shape() -> None:
    secret = tls_secret(CA, b"CERT", b"KEY")
    assert secret["apiVersion"] == "v1"
    assert secret["kind"] == "Secret"
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == TLS_SECRET == "kubectl-gitops-webhook-tls"
    assert secret["metadata"]["namespace"] == SYSTEM_NAMESPACE
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert base64.b64decode(secret["data"]["tls.crt"]) == b"CERT"
    assert base64.b64decode(secret["data"]["tls.key"]) == b"KEY"
    assert base64.b64decode(secret["data"]["ca.crt"]) == CA


def test_tls_secret_is_the_one_the_webhook_deployment_mounts(objs: list[JSON]) -> None:
    deployment = next(o for o in objs if (o["kind"], o["metadata"]["name"]) == ("Deployment", WEBHOOK_NAME))
    secrets = [v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"].get("volumes") or []
               if "secret" in v]
    assert tls_secret(CA, b"c", b"k")["metadata"]["name"] in secrets


def test_webhook_hosts_for_the_service() -> None:
    assert webhook_hosts(None) == (
        "kubectl-gitops-webhook",
        "kubectl-gitops-webhook.kubectl-gitops-system",
        "kubectl-gitops-webhook.kubectl-gitops-system.svc",
        "kubectl-gitops-webhook.kubectl-gitops-system.svc.cluster.local",
    )


def test_webhook_hosts_match_the_service_in_the_manifests(objs: list[JSON]) -> None:
    service = next(o for o in objs if (o["kind"], o["metadata"]["name"]) == ("Service", WEBHOOK_NAME))
    name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
    assert f"{name}.{ns}.svc" in webhook_hosts(None)


@pytest.mark.parametrize(("url", "hosts"), [
    ("https://127.0.0.1:9443", ("127.0.0.1", "localhost")),
    ("https://localhost:9443/", ("localhost", "127.0.0.1")),
    ("https://webhook.example.com/base", ("webhook.example.com", "127.0.0.1", "localhost")),
    ("https://10.0.0.5:8443", ("10.0.0.5", "127.0.0.1", "localhost")),
    ("https://[::1]:9443", ("::1", "127.0.0.1", "localhost")),
    ("https://[::1]/", ("::1", "127.0.0.1", "localhost")),  # IPv6 literal without a port
    ("https://[fd00::5]:8443/hooks", ("fd00::5", "127.0.0.1", "localhost")),
])
def test_webhook_hosts_for_a_url(url: str, hosts: tuple[str, ...]) -> None:
    assert webhook_hosts(url) == hosts
