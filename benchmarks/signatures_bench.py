"""What manifest signatures cost: at admission (per review) and offline (`kubectl gitops verify`).

Not a test: it prints numbers and never fails on time.

1. Admission. The same update review of a realistic Deployment (2 containers, env, resources,
   probes, securityContext; signed; managedFields as the API server writes them for the applier's
   server-side apply and a controller's update) is sent through the webhook app (Flask, in
   process, no TLS) to /validate (the drift guard) and to /signatures, `--reviews` times each.
   Reported: p50/p90/p99 per endpoint, and the signature decision alone (`webhook.trust.review`,
   request already parsed) with a warm verification cache (the same signature seen before: a
   re-sync, a controller's write) and a cold one (every review a signature never seen).
2. Offline. `kubectl gitops sign` then `kubectl gitops verify` of a directory of `--objects`
   objects (half Deployments, half ConfigMaps), wall clock of the whole command (Python start-up,
   rendering, canonical forms, ed25519 checks).

    .venv/bin/python benchmarks/signatures_bench.py
    .venv/bin/python benchmarks/signatures_bench.py --reviews 5000 --objects 1000
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import FIELD_MANAGER, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.admission import parse_review
from kubectl_gitops.core.drift import SyncInfo
from kubectl_gitops.core.trust import parse_trust_policy

JSON = dict[str, Any]
APPLIER = "system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"


def container(name: str, image: str) -> JSON:
    return {"name": name, "image": image, "ports": [{"name": "http", "containerPort": 8080}],
            "env": [{"name": "MODE", "value": "production"}, {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "REGION", "value": "eu-west-1"}],
            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
            "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                                "allowPrivilegeEscalation": False}}


def manifest(name: str = "web", namespace: str = "shop") -> JSON:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app": name, "team": "checkout"}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"serviceAccountName": name,
                                           "containers": [container(name, "ghcr.io/acme/web:1.42.0"),
                                                          container("sidecar", "ghcr.io/acme/proxy:2.1.0")]}}}}


def fields(value: Any, top: bool = True) -> JSON:
    """fieldsV1 as the API server writes it: `k:` items for lists keyed by name."""
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return {f'k:{{"name":{json.dumps(i["name"])}}}': {".": {}, **fields(i, False)} for i in value}
    if not isinstance(value, dict):
        return {}
    out: JSON = {}
    for key, child in value.items():
        if top and key in ("apiVersion", "kind", "status"):
            continue
        kept = {k: v for k, v in child.items() if k in ("labels", "annotations")} if top and key == "metadata" \
            else child
        out[f"f:{key}"] = fields(kept, False)
    return out


def live_object(key: Path) -> JSON:
    desired = manifest()
    data = ms.canonical(desired)
    obj = copy.deepcopy(desired)
    obj["metadata"]["labels"].update({LABEL_SYNC: "shop", LABEL_SYNC_NAMESPACE: "gitops"})
    obj["metadata"]["annotations"] = {"kubectl-gitops.dev/revision": "main@sha1:" + "a" * 40}
    ms.with_annotation(obj, ms.encode_annotation(data, keys.sign(data, key, ms.SSHSIG_NAMESPACE)))
    applied = fields(obj)
    obj["metadata"].update({"uid": "0f6b", "resourceVersion": "4711", "generation": 3,
                            "creationTimestamp": "2026-01-01T00:00:00Z"})
    obj["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "3"
    obj["metadata"]["managedFields"] = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": applied, "time": "2026-01-01T00:00:00Z"},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
         "fieldsType": "FieldsV1", "time": "2026-01-01T00:00:01Z",
         "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "subresource": "status",
         "fieldsType": "FieldsV1", "time": "2026-01-01T00:00:01Z", "fieldsV1": {"f:status": {"f:replicas": {}}}}]
    obj["spec"].update({"replicas": 2, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
                                                                                "maxUnavailable": "25%"}}})
    for c in obj["spec"]["template"]["spec"]["containers"]:
        c.update({"imagePullPolicy": "IfNotPresent", "terminationMessagePath": "/dev/termination-log",
                  "terminationMessagePolicy": "File"})
    obj["spec"]["template"]["spec"].update({"dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                                            "schedulerName": "default-scheduler", "securityContext": {}})
    obj["status"] = {"replicas": 2, "readyReplicas": 2, "observedGeneration": 3}
    return obj


def review_body(obj: JSON) -> bytes:
    new = copy.deepcopy(obj)
    new["metadata"]["resourceVersion"] = "4712"
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
        "resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "operation": "UPDATE",
        "name": "web", "namespace": "shop", "userInfo": {"username": APPLIER, "groups": []},
        "object": new, "oldObject": obj}}).encode()


def percentiles(samples: list[tuple[float, float]]) -> str:
    """Wall-clock p50/p90/p99, and the p50 of the CPU time this thread spent (robust to a loaded machine)."""
    walls = sorted(w for w, _ in samples)
    cpus = sorted(c for _, c in samples)
    pick = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return (f"wall p50 {pick(walls, 0.5):.3f} ms  p90 {pick(walls, 0.9):.3f} ms  p99 {pick(walls, 0.99):.3f} ms; "
            f"CPU p50 {pick(cpus, 0.5):.3f} ms")


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.thread_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample = (time.perf_counter() - self.wall, time.thread_time() - self.cpu)


def admission(reviews: int, key: Path, public: str) -> None:
    from kubectl_gitops_webhook import trust
    from kubectl_gitops_webhook.app import create_app
    from kubectl_gitops_webhook.tenants import Watched

    keys_spec = [{"name": "alice", "type": "ssh", "publicKey": public}]
    policy_obj = {"metadata": {"name": "shop"}, "spec": {"keys": keys_spec, "scope": {"namespaces": ["shop"]}}}
    watched = Watched("TrustPolicies", lambda: ([policy_obj], "1"), lambda rv: iter(()))
    watched.relist()
    facts = trust.TrustFacts(watched)
    sync = SyncInfo(name="shop", namespace="gitops", source_url="https://git.example.com/shop.git", path="apps",
                    revision="main@sha1:abc", appliers=frozenset({APPLIER}))
    app = create_app(lambda: (lambda ns, name: sync), trust_factory=lambda: facts)
    client = app.test_client()
    obj = live_object(key)
    body = review_body(obj)
    print(f"review body {len(body):,} bytes; signature annotation "
          f"{len(obj['metadata']['annotations'][ms.ANNOTATION_SIGNATURE]):,} bytes")
    for path in ("/validate", "/signatures"):
        answer = client.post(path, data=body, content_type="application/json").get_json()["response"]
        assert answer["allowed"], answer
        samples = []
        for _ in range(reviews):
            with Timer() as t:
                client.post(path, data=body, content_type="application/json")
            samples.append(t.sample)
        print(f"  {path:<12} through the app: {percentiles(samples)}")
    req = parse_review(body)
    policies = facts.policies()
    now = datetime.now(UTC)
    for label, clear in (("warm cache", False), ("cold cache", True)):
        samples = []
        for _ in range(reviews):
            if clear:
                keys._verified_manifest.cache_clear()
            with Timer() as t:
                out = trust.review(req, policies, tenant_of=lambda ns: "", parent_fetcher=None,
                                   break_glass_group="bg", now=now)
            samples.append(t.sample)
            assert out.allowed
        print(f"  signature decision alone, {label}: {percentiles(samples)}")


def offline(objects: int, key: Path, public: str) -> None:
    plugin = str(Path(sys.executable).parent / "kubectl-gitops")
    with tempfile.TemporaryDirectory() as tmp:
        apps = Path(tmp) / "apps"
        apps.mkdir()
        docs = []
        for i in range(objects):
            if i % 2:
                docs.append(json.dumps(manifest(f"web-{i}")))
            else:
                docs.append(json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cfg-{i}"},
                                        "data": {"config.yaml": "x: 1\n" * 20}}))
        (apps / "all.yaml").write_text("\n---\n".join(docs))
        (Path(tmp) / "allowed").write_text(f"alice {public}\n")
        for command in (["sign", str(apps), "--key", str(key), "-n", "shop"],
                        ["verify", str(apps), "-n", "shop", "--trust", str(Path(tmp) / "allowed")]):
            times = []
            for _ in range(3):
                started = time.perf_counter()
                out = subprocess.run([plugin, *command], capture_output=True, text=True, check=False)
                times.append(time.perf_counter() - started)
                assert out.returncode == 0, out.stderr
            print(f"  kubectl gitops {command[0]} of {objects} objects: median {statistics.median(times):.2f} s "
                  f"(runs {', '.join(f'{t:.2f}' for t in times)}); {out.stdout.strip()[:60]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=2000)
    parser.add_argument("--objects", type=int, default=1000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "alice"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(key)], check=True)
        public = Path(f"{key}.pub").read_text().strip()
        parse_trust_policy({"metadata": {"name": "x"}, "spec": {"keys": [{"name": "a", "type": "ssh",
                                                                            "publicKey": public}]}})
        print("admission (one Deployment, 2 containers):")
        admission(args.reviews, key, public)
        print("offline:")
        offline(args.objects, key, public)


if __name__ == "__main__":
    main()
