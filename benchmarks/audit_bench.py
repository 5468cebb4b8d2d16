"""Time and measure `kubectl gitops audit -A` over N live objects on the dev control plane.

Not a test: it prints a table and always exits 0 (a missed target is a finding, not a failure).
Target (issue 14): 10,000 objects audited in at most 10 s and 300 MB on this machine.

It uses a private dev control plane (`kubectl gitops dev up --name CLUSTER`, started if needed;
no webhook, so the seeding is not judged) and seeds it once per size: ConfigMaps spread over 10
namespaces, written by server-side apply as the applier would (field manager `kubectl-gitops`, the
ownership labels and the record of what Git declares), most of them in a Sync's inventory; 9% are
strays no Sync owns (orphans) and 1% were edited since by another manager (drift), so every object
goes through every rule and some make findings. Then the audit runs as a child process, like a
user runs it (interpreter start-up included): wall time from the parent, peak RSS and CPU time
from wait4(), and the load average (the machine is shared: the wall time follows the load, the
CPU time much less).

    .venv/bin/python benchmarks/audit_bench.py                       # 10,000 objects
    .venv/bin/python benchmarks/audit_bench.py --objects 1000 --runs 3 --cluster bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GITOPS = str(ROOT / ".venv" / "bin" / "kubectl-gitops")
SYNC_NS = "audit-bench"
TARGET_SECONDS = 10.0
TARGET_MB = 300.0
JSON = dict[str, Any]


def start_cluster(name: str) -> str:
    up = subprocess.run([GITOPS, "dev", "up", "--name", name], check=False, capture_output=True, text=True,
                        timeout=5400)
    if up.returncode != 0:
        sys.exit(f"dev up failed:\n{up.stdout}\n{up.stderr}")
    path = subprocess.run([GITOPS, "dev", "kubeconfig", "--name", name, "--path"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run([GITOPS, "install", "--no-webhook"], check=True, capture_output=True, timeout=600,
                   env={**os.environ, "KUBECONFIG": path})
    return path


def managed(name: str, namespace: str) -> JSON:
    from kubectl_gitops.constants import ANNOTATION_FIELDS, LABEL_SYNC, LABEL_SYNC_NAMESPACE
    from kubectl_gitops.core import declared

    obj: JSON = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": name, "namespace": namespace,
                              "labels": {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: SYNC_NS, "app": name}},
                 "data": {"key": "value", "other": "x" * 64}}
    obj["metadata"]["annotations"] = {ANNOTATION_FIELDS: declared.encode(declared.with_declared(obj))}
    return obj


def seed(kubeconfig: str, total: int, ns_count: int = 10) -> None:
    """The objects, the Sync listing the managed ones, and the edits; skipped when already there."""
    from kubectl_gitops.adapters.kube import Kube, Target
    from kubectl_gitops.core import resources
    from kubectl_gitops.core.discovery import ResourceInfo
    from kubectl_gitops.engine.record import SYNCS

    kube = Kube.connect(Target(kubeconfig))
    cms = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
    nss = ResourceInfo("", "v1", "Namespace", "namespaces", False)
    namespaces = [f"audit-bench-{i}" for i in range(ns_count)]
    for ns in [SYNC_NS, *namespaces]:
        kube.apply(nss, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                   field_manager="kubectl-gitops")
    have = sum(len(kube.list(cms, namespace=ns)) for ns in namespaces)
    names = [(namespaces[i % ns_count], f"cm-{i:06d}") for i in range(total)]
    strays = {n for i, n in enumerate(names) if i % 11 == 5}  # spread over every namespace
    if have < total:
        started = time.perf_counter()

        def write(item: tuple[str, str]) -> None:
            ns, name = item
            if item in strays:
                obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                       "data": {"made": "by hand"}}
                kube.apply(cms, obj, field_manager="kubectl-client-side-apply")
            else:
                kube.apply(cms, managed(name, ns), field_manager="kubectl-gitops")

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(write, names))
        for ns, name in [n for i, n in enumerate(names) if i % 100 == 0]:
            kube.merge_patch(cms, name, ns, {"data": {"key": "edited"}})  # drift, by another manager
        print(f"seeded {total:,} ConfigMaps in {time.perf_counter() - started:.0f} s", flush=True)
    sync = resources.sync("s", SYNC_NS, "src", ".")
    kube.apply(SYNCS, sync, field_manager="kubectl-gitops-cli")
    entries = [{"id": f"{ns}_{name}__ConfigMap", "v": "v1"} for ns, name in sorted(names) if (ns, name) not in strays]
    ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "bench",
             "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}
    kube.merge_patch(SYNCS, "s", SYNC_NS, {"status": {"inventory": {"entries": entries}, "conditions": [ready]}},
                     subresource="status")


def timed_audit(kubeconfig: str) -> tuple[float, float, float, JSON]:
    """One `audit -A -o json` as a child: wall time, its own peak RSS and CPU time (wait4), its JSON."""
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    started = time.perf_counter()
    proc = subprocess.Popen([GITOPS, "audit", "-A", "-o", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()  # stderr carries one summary line: no risk of a full pipe
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.exit(f"audit failed ({proc.returncode}):\n{err.decode()}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, json.loads(out)


def timed_kubectl(kubeconfig: str) -> tuple[float, float]:
    """The reference on the same machine at the same moment: kubectl only reading the ConfigMaps,
    in pages of the same size (wall time, peak RSS)."""
    from kubectl_gitops.devcluster.build import ensure_kubectl

    env = {**os.environ, "KUBECONFIG": kubeconfig}
    started = time.perf_counter()
    kubectl = str(ensure_kubectl(lambda _line: None))
    proc = subprocess.Popen([kubectl, "get", "configmaps", "-A", "-o", "json", "--chunk-size=500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cluster", default="audit-bench")
    args = parser.parse_args(argv)
    kubeconfig = start_cluster(args.cluster)
    seed(kubeconfig, args.objects)
    rows = []
    for run in range(args.runs):
        load = os.getloadavg()[0]
        seconds, mb, cpu, doc = timed_audit(kubeconfig)
        rows.append((seconds, mb, cpu))
        summary = doc["summary"]
        k_seconds, k_mb = timed_kubectl(kubeconfig)
        print(f"run {run + 1}: {seconds:5.2f} s wall, {cpu:4.2f} s CPU, peak RSS {mb:3.0f} MB, load {load:4.1f} "
              f"on {os.cpu_count()} cores; {summary['objects']:,} objects, {summary['findings']:,} findings "
              f"| kubectl get configmaps -A: {k_seconds:5.2f} s, {k_mb:3.0f} MB", flush=True)
    best = min(s for s, _, _ in rows)
    worst = max(s for s, _, _ in rows)
    peak = max(m for _, m, _ in rows)
    cpu = max(c for _, _, c in rows)
    met = sum(1 for s, m, _ in rows if s <= TARGET_SECONDS and m <= TARGET_MB)
    print(f"\n{args.objects:,} seeded objects: audit -A in {best:.2f}-{worst:.2f} s wall (at most {cpu:.2f} s CPU), "
          f"peak RSS {peak:.0f} MB; target {TARGET_SECONDS:.0f} s and {TARGET_MB:.0f} MB met in {met} of "
          f"{len(rows)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
