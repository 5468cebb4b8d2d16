"""The floor: the same server-side applies any tool must send, from a client that does nothing else.

No Git, no render, no plan, no bookkeeping: read the benchmark's YAML, send one server-side apply
PATCH per object, Namespaces first, then the rest 16 at a time over kept-alive TLS connections.
What this takes is what the API server on this machine can take; a GitOps tool can only add to it.

    python benchmarks/floor.py DIR [--kubeconfig FILE] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# The kinds the benchmark generates and their REST paths: a minimal client needs no discovery.
PATHS = {
    ("v1", "Namespace"): "/api/v1/namespaces/{name}",
    ("v1", "ConfigMap"): "/api/v1/namespaces/{ns}/configmaps/{name}",
    ("v1", "Secret"): "/api/v1/namespaces/{ns}/secrets/{name}",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services/{name}",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{ns}/deployments/{name}",
}


def load(directory: Path) -> list[dict[str, Any]]:
    import yaml

    out: list[dict[str, Any]] = []
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def pool(kubeconfig: str | None, concurrency: int) -> tuple[Any, str, dict[str, str]]:
    """A urllib3 pool from the kubeconfig's current context (client certificate or token users only:
    a floor has no business importing a full API client)."""
    import base64
    import os
    import tempfile

    import urllib3
    import yaml

    cfg = yaml.safe_load(Path(kubeconfig or os.path.expanduser("~/.kube/config")).read_text())
    context = next(c["context"] for c in cfg["contexts"] if c["name"] == cfg["current-context"])
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == context["user"])
    tmp = Path(tempfile.mkdtemp(prefix="floor-"))

    def file_of(key: str, entry: dict[str, Any]) -> str | None:
        if entry.get(f"{key}-data"):
            path = tmp / key
            path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
            return str(path)
        return entry.get(key)

    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    http = urllib3.PoolManager(maxsize=concurrency, cert_reqs="CERT_REQUIRED",
                               ca_certs=file_of("certificate-authority", cluster),
                               cert_file=file_of("client-certificate", user), key_file=file_of("client-key", user))
    return http, cluster["server"], headers


def apply_all(objects: list[dict[str, Any]], kubeconfig: str | None, concurrency: int) -> int:
    http, host, headers = pool(kubeconfig, concurrency)
    failures: list[str] = []
    lock = threading.Lock()

    def send(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        path = PATHS[(obj["apiVersion"], obj["kind"])].format(ns=meta.get("namespace", ""), name=meta["name"])
        resp = http.request("PATCH", f"{host}{path}?fieldManager=floor&force=true", body=json.dumps(obj),
                            headers=headers, preload_content=True)
        if resp.status >= 300:
            with lock:
                failures.append(f"{obj['kind']}/{meta['name']}: HTTP {resp.status}")

    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    rest = [o for o in objects if o["kind"] != "Namespace"]
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(send, namespaces))
        list(ex.map(send, rest))
    for line in failures[:10]:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--kubeconfig")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    return apply_all(load(args.directory), args.kubeconfig, args.concurrency)


if __name__ == "__main__":
    sys.exit(main())
