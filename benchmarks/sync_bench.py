"""Time `kubectl gitops sync` against `kubectl apply --server-side` on the same YAML, same cluster, same run.

Not a test: it prints a table and always exits 0 (a missed target is a finding, not a failure).
It uses the private dev control plane (`kubectl gitops dev up --name CLUSTER`, started if needed),
generates a Git repository of N objects (Namespaces, ConfigMaps, Secrets, headless Services and
Deployments with 0 replicas, spread over 10 namespaces), and for each size measures back to back:

- first sync          `kubectl gitops sync` of an empty cluster  vs  `kubectl apply -f DIR --server-side`
- no-change re-sync   the same sync again                         vs  the same `kubectl apply` again
- one drifted object  a ConfigMap edited by someone else, re-sync vs  the same edit, `kubectl apply` again

kubectl works on a copy of the same files whose namespaces carry a `-kubectl` suffix, so both
start from the same empty state. The plugin runs as a child process (the console script's own
code, through `_sync_child` below) so that its wall time includes interpreter start-up like
kubectl's does, its peak RSS can be read from wait4(), and its API requests are counted by
wrapping `Kube.request` (object writes are counted apart from the run's record: Sync/GitSource
status, the Event and the identity review).

Why 0 replicas and headless Services: the dev cluster has a /24 Service range (254 ClusterIPs)
and 2x1100 pod slots; and controller work triggered by one tool's run would otherwise bill
the next measurement. Between measurements the script waits until the controllers are idle.

    .venv/bin/python benchmarks/sync_bench.py                       # 1,000 and 10,000 objects
    .venv/bin/python benchmarks/sync_bench.py --objects 1000 --big 0 --cluster bench
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
GITOPS = str(VENV_BIN / "kubectl-gitops")
SYNC_NS = "bench"
KINDS = ("ConfigMap", "Secret", "Service", "Deployment")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Requests that record the run rather than change a synced object.
RECORD_MARKERS = ("/syncs/", "/gitsources/", "/events", "selfsubjectreviews")


# ---------------------------------------------------------------- child: the plugin with a request counter


def _sync_child(count_file: str, argv: list[str]) -> None:
    """Run the plugin's CLI in this process with Kube.request counted; write the counts at exit."""
    import atexit
    import threading

    from kubectl_gitops.adapters import kube as kube_mod
    from kubectl_gitops.cli.main import main

    counts: dict[str, int] = {}
    lock = threading.Lock()
    original = kube_mod.Kube.request

    def counted(self: Any, method: str, path: str, **kwargs: Any) -> Any:
        kind = "read" if method == "GET" else (
            "record" if any(m in path for m in RECORD_MARKERS) else "write")
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
            counts[method] = counts.get(method, 0) + 1
        return original(self, method, path, **kwargs)

    kube_mod.Kube.request = counted  # type: ignore[method-assign]
    atexit.register(lambda: Path(count_file).write_text(json.dumps(counts)))
    sys.argv = ["kubectl-gitops", *argv]
    main()


# ---------------------------------------------------------------- running and timing children


@dataclass
class Run:
    seconds: float
    rss_mb: float
    rc: int
    out: str
    cpu: float = 0.0          # the command's own user+system CPU seconds
    cluster_cpu: float = 0.0  # CPU seconds the dev cluster's processes used meanwhile
    other_cpu: float = 0.0    # CPU seconds everything else on the machine used meanwhile
    counts: dict[str, int] = field(default_factory=dict)


# The dev cluster's state directory (set by start_cluster): its processes name it in their command lines.
CLUSTER_HOME: list[str] = []


def _cluster_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if CLUSTER_HOME and CLUSTER_HOME[0].encode() in cmdline:
                pids.append(int(entry))
    return pids


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def timed(cmd: Sequence[str], env: dict[str, str]) -> Run:
    """Wall time, exit code, output, CPU and peak RSS (wait4: this child only) of one command,
    plus the CPU the dev cluster and the rest of the machine burnt meanwhile."""
    pids = _cluster_pids()
    cluster0 = {p: _proc_cpu(p) for p in pids}
    busy0 = _machine_busy()
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    cluster = sum(_proc_cpu(p) - c for p, c in cluster0.items())
    own = usage.ru_utime + usage.ru_stime
    other = max(0.0, _machine_busy() - busy0 - cluster - own)
    return Run(seconds, usage.ru_maxrss / 1024, proc.returncode, text, own, cluster, other)


def run_gitops_sync(name: str, env: dict[str, str]) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        count_file = f.name
    try:
        run = timed([sys.executable, __file__, "_sync_child", count_file, "-n", SYNC_NS, "sync", name], env)
        text = Path(count_file).read_text()
        run.counts = json.loads(text) if text else {}
    finally:
        os.unlink(count_file)
    if run.rc != 0:
        print(f"  ! kubectl gitops sync {name} exited {run.rc}:\n{_tail(run.out)}", file=sys.stderr)
    return run


def run_kubectl_apply(directory: Path, env: dict[str, str]) -> Run:
    # --force-conflicts: the plugin forces too (it owns Git's fields), and the drift scenario needs it.
    run = timed(["kubectl", "apply", "-f", str(directory), "--server-side", "--field-manager=bench-kubectl",
                 "--force-conflicts"], env)
    if run.rc != 0:
        print(f"  ! kubectl apply exited {run.rc}:\n{_tail(run.out)}", file=sys.stderr)
    return run


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])


def sh(cmd: Sequence[str], env: dict[str, str], check: bool = True) -> str:
    proc = subprocess.run(list(cmd), check=False, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


# ---------------------------------------------------------------- the manifests


def namespaces(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:02d}" for i in range(count)]


def objects_for(namespace: str, count: int) -> list[dict[str, Any]]:
    """`count` objects for one namespace, the Namespace first, then the four kinds in turn."""
    out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    for i in range(count - 1):
        kind = KINDS[i % len(KINDS)]
        name = f"app-{i // len(KINDS):05d}"
        labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"}
        meta = {"name": name, "namespace": namespace, "labels": labels}
        if kind == "ConfigMap":
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                        "data": {"LOG_LEVEL": "info", "FEATURE_X": "true", "REPLICA_NAME": name,
                                 "config.yaml": f"server:\n  port: 8080\n  name: {name}\n  timeout: 30s\n"}})
        elif kind == "Secret":
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta, "type": "Opaque",
                        "data": {"password": base64.b64encode(f"pw-{name}".encode()).decode(),
                                 "token": base64.b64encode(f"token-{namespace}-{name}".encode()).decode()}})
        elif kind == "Service":
            out.append({"apiVersion": "v1", "kind": kind, "metadata": meta,
                        "spec": {"clusterIP": "None", "selector": {"app.kubernetes.io/name": name},
                                 "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
        else:
            container = {"name": "app", "image": "registry.example/app:1.0",
                         "ports": [{"containerPort": 8080, "name": "http"}],
                         "env": [{"name": "LOG_LEVEL", "value": "info"}],
                         "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                       "limits": {"cpu": "500m", "memory": "256Mi"}}}
            out.append({"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
                        "spec": {"replicas": 0, "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
    return out


def write_manifests(directory: Path, prefix: str, total: int, ns_count: int, suffix: str = "") -> None:
    """One file per namespace (Namespace document first, so kubectl creates it before its objects)."""
    import yaml

    directory.mkdir(parents=True, exist_ok=True)
    per_ns = [total // ns_count + (1 if i < total % ns_count else 0) for i in range(ns_count)]
    for ns, count in zip(namespaces(prefix, ns_count), per_ns, strict=True):
        docs = objects_for(ns + suffix, count)
        (directory / f"{ns}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))


def make_repo(base: Path, prefix: str, total: int, ns_count: int, env: dict[str, str]) -> Path:
    repo = base / f"repo-{prefix}"
    write_manifests(repo, prefix, total, ns_count)
    git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    sh(["git", "init", "-q", "-b", "main", str(repo)], env)
    sh([*git, "add", "-A"], env)
    sh([*git, "commit", "-q", "-m", f"{total} objects"], env)
    return repo


# ---------------------------------------------------------------- cluster helpers


def start_cluster(name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    sh([GITOPS, "dev", "up", "--name", name], env)
    env["KUBECONFIG"] = sh([GITOPS, "dev", "kubeconfig", "--name", name, "--path"], env).strip()
    CLUSTER_HOME[:] = [str(Path(env["KUBECONFIG"]).parent) + "/"]
    sh([GITOPS, "install", "--no-webhook"], env)
    sh(["kubectl", "create", "namespace", SYNC_NS], env, check=False)
    return env


def settle(env: dict[str, str], timeout: float = 300) -> None:
    """Wait until the deployment controller has caught up (every Deployment observed), then a beat."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = sh(["kubectl", "get", "deployments", "-A", "-o",
                  "jsonpath={range .items[*]}{.metadata.generation}/{.status.observedGeneration} {end}"], env)
        pending = [p for p in out.split() if len(set(p.split("/"))) != 1]
        if not pending:
            break
        time.sleep(1)
    time.sleep(2)


def drift(env: dict[str, str], namespace: str, name: str) -> None:
    patch = json.dumps({"data": {"LOG_LEVEL": "debug"}})
    sh(["kubectl", "-n", namespace, "patch", "configmap", name, "--type", "merge", "-p", patch,
        "--field-manager=someone-else"], env)


def drift_value(env: dict[str, str], namespace: str, name: str) -> str:
    return sh(["kubectl", "-n", namespace, "get", "configmap", name, "-o", "jsonpath={.data.LOG_LEVEL}"], env)


# ---------------------------------------------------------------- one size


@dataclass
class Row:
    scenario: str
    objects: int
    gitops: Run
    kubectl: Run | None
    ratio: float
    target: str
    met: bool
    note: str = ""


def bench_size(total: int, ns_count: int, env: dict[str, str], work: Path, *, first_only: bool = False,
               with_kubectl: bool = True) -> list[Row]:
    prefix = f"s{total}"
    name = prefix
    print(f"== {total} objects ({prefix}-NN vs {prefix}-NN-kubectl)", file=sys.stderr)
    repo = make_repo(work, prefix, total, ns_count, env)
    kdir = work / f"kubectl-{prefix}"
    if with_kubectl:
        write_manifests(kdir, prefix, total, ns_count, suffix="-kubectl")
    sh([GITOPS, "-n", SYNC_NS, "create", "source", name, "--url", f"file://{repo}", "--branch", "main"], env)
    sh([GITOPS, "-n", SYNC_NS, "create", "sync", name, "--source", name, "--path", ".", "--prune"], env)
    rows: list[Row] = []

    settle(env)
    g = run_gitops_sync(name, env)
    settle(env)
    k = run_kubectl_apply(kdir, env) if with_kubectl else None
    rows.append(_vs_kubectl("first sync", total, g, k, 0.5, ""))
    settle(env)

    g0 = run_gitops_sync(name, env)
    k0 = run_kubectl_apply(kdir, env) if with_kubectl else None
    rows.append(_vs_kubectl("no-change re-sync", total, g0, k0, 0.25, ", 0 writes"))
    if first_only:
        return rows

    victim_ns, victim = f"{prefix}-{ns_count // 2:02d}", "app-00007"
    drift(env, victim_ns, victim)
    drift(env, victim_ns + "-kubectl", victim)
    g1 = run_gitops_sync(name, env)
    fixed = drift_value(env, victim_ns, victim) == "info"
    k1 = run_kubectl_apply(kdir, env)
    rel = g1.seconds / g0.seconds
    rows.append(Row("one drifted object", total, g1, k1, rel, "<=1.5x no-change, fixed",
                    rel <= 1.5 and fixed and g1.counts.get("write", 0) == 1,
                    note=f"drift {'corrected' if fixed else 'NOT corrected'}; ratio is vs the no-change re-sync"))
    return rows


def _vs_kubectl(scenario: str, total: int, g: Run, k: Run | None, target: float, extra: str) -> Row:
    writes_ok = not extra or g.counts.get("write", 0) == 0
    if k is None:  # scale run without kubectl: its target is per object against the main run (see table)
        return Row(scenario, total, g, None, float("nan"), "see per-object line", writes_ok and g.rc == 0)
    ratio = g.seconds / k.seconds
    return Row(scenario, total, g, k, ratio, f"<={target:.2f}x kubectl{extra}",
               ratio <= target and writes_ok and g.rc == 0)


# ---------------------------------------------------------------- report


def _cpu(run: Run) -> str:
    return f"{run.cpu:.1f}/{run.cluster_cpu:.1f}/{run.other_cpu:.1f}"


def table(rows: list[Row], small: int, big: int) -> str:
    head = ("scenario", "objects", "gitops s", "kubectl s", "ratio", "target", "met",
            "requests total/writes/record", "gitops RSS MB", "CPU s gitops/cluster/other",
            "CPU s kubectl/cluster/other")
    lines = [head]
    for r in rows:
        c = r.gitops.counts
        total = sum(v for k, v in c.items() if k in ("read", "write", "record"))
        lines.append((r.scenario, str(r.objects), f"{r.gitops.seconds:.2f}",
                      f"{r.kubectl.seconds:.2f}" if r.kubectl else "-", f"{r.ratio:.2f}x" if r.kubectl or
                      r.scenario == "one drifted object" else "-", r.target,
                      "yes" if r.met else "NO", f"{total}/{c.get('write', 0)}/{c.get('record', 0)}",
                      f"{r.gitops.rss_mb:.0f}", _cpu(r.gitops), _cpu(r.kubectl) if r.kubectl else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    by = {(r.scenario, r.objects): r for r in rows}
    for scenario in ("first sync", "no-change re-sync"):
        a, b = by.get((scenario, small)), by.get((scenario, big))
        if a and b:
            per_a, per_b = a.gitops.seconds / small, b.gitops.seconds / big
            rel = per_b / per_a
            cpu_a = (a.gitops.cpu + a.gitops.cluster_cpu) / small
            cpu_b = (b.gitops.cpu + b.gitops.cluster_cpu) / big
            out.append(f"{scenario} per object: {per_b * 1000:.2f} ms at {big} vs {per_a * 1000:.2f} ms at {small} "
                       f"= {rel:.2f}x (target <=1.2x: {'yes' if rel <= 1.2 else 'NO'}); CPU (plugin+cluster) "
                       f"{cpu_b * 1000:.2f} vs {cpu_a * 1000:.2f} ms = {cpu_b / cpu_a:.2f}x")
    peak = max(r.gitops.rss_mb for r in rows)
    out.append(f"plugin peak RSS over all runs: {peak:.0f} MB (target <=300 MB: {'yes' if peak <= 300 else 'NO'})")
    for r in rows:
        if r.note:
            out.append(f"{r.scenario} ({r.objects}): {r.note}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000, help="objects in the main run (default 1000)")
    parser.add_argument("--big", type=int, default=10000, help="objects in the scale run; 0 skips it")
    parser.add_argument("--big-kubectl", action="store_true",
                        help="also time kubectl at the scale size (about 40 ms/object: minutes at 10,000)")
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--cluster", default="bench", help="name of the private dev cluster")
    parser.add_argument("--down", action="store_true", help="stop the dev cluster at the end")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)

    env = start_cluster(args.cluster)
    work = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    rows: list[Row] = []
    try:
        for ns_prefix in (f"s{args.objects}", f"s{args.big}"):
            _cleanup(env, ns_prefix, args.namespaces)
        rows += bench_size(args.objects, args.namespaces, env, work)
        if args.big:
            rows += bench_size(args.big, args.namespaces, env, work, first_only=True, with_kubectl=args.big_kubectl)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = table(rows, args.objects, args.big)
    print(report)
    if args.json:
        Path(args.json).write_text(json.dumps([{
            "scenario": r.scenario, "objects": r.objects, "gitops_s": r.gitops.seconds,
            "kubectl_s": r.kubectl.seconds if r.kubectl else None, "ratio": r.ratio, "met": r.met,
            "counts": r.gitops.counts, "gitops_rss_mb": r.gitops.rss_mb, "gitops_cpu": r.gitops.cpu,
            "gitops_cluster_cpu": r.gitops.cluster_cpu, "gitops_other_cpu": r.gitops.other_cpu,
            "kubectl_cpu": r.kubectl.cpu if r.kubectl else None,
            "kubectl_cluster_cpu": r.kubectl.cluster_cpu if r.kubectl else None} for r in rows], indent=1))
    if args.down:
        sh([GITOPS, "dev", "down", "--name", args.cluster], env, check=False)
    return 0


def _cleanup(env: dict[str, str], prefix: str, ns_count: int) -> None:
    """Leftovers of an earlier run on a reused cluster: its Sync, source and namespaces."""
    name = prefix
    for kind in ("syncs.kubectl-gitops.dev", "gitsources.kubectl-gitops.dev"):
        sh(["kubectl", "-n", SYNC_NS, "delete", kind, name, "--ignore-not-found", "--wait=false"], env, check=False)
    nss = [n for ns in namespaces(prefix, ns_count) for n in (ns, ns + "-kubectl")]
    existing = set(sh(["kubectl", "get", "namespaces", "-o", "name"], env).split())
    stale = [n for n in nss if f"namespace/{n}" in existing]
    if stale:
        print(f"  deleting {len(stale)} namespaces left by an earlier run...", file=sys.stderr)
        sh(["kubectl", "delete", "namespace", *stale, "--wait=true", "--timeout=600s"], env, check=False)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_sync_child":
        _sync_child(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(main())
