"""The controller at fleet scale: steady-state cost, and commit -> Ready across many Syncs.

Not a test: it prints figures and exits 0 (a missed target is a finding, not a failure).
Against a dev control plane (`--cluster`, started if needed) it creates one Git repository with
SYNCS directories of OBJECTS ConfigMaps each, one GitSource, and SYNCS Syncs on a shard of their
own, then runs `kubectl gitops controller --shard ...` as a child process and measures:

1. initial: Syncs created -> all Ready (every object created);
2. commit -> Ready: one commit changing every object, until every Sync is Ready at that commit;
3. steady state (no Git change) over --window seconds: the controller's CPU (% of one core, from
   /proc/PID/stat), peak RSS (VmHWM) and its API requests by verb (its /metrics), also scaled to
   requests per Sync interval;
4. the baseline: one `kubectl gitops sync` of a single Sync holding all SYNCS x OBJECTS objects,
   changed by the same kind of commit (every object configured), timed end to end.

Targets (issue 11): CPU <= 5% of a core averaged over 5 minutes, RSS <= 250 MB, requests per
interval O(Syncs + kinds), commit -> all Ready <= 2x the single sync.

    .venv/bin/python benchmarks/controller_bench.py --cluster bench-ctl --window 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
GITOPS = str(VENV_BIN / "kubectl-gitops")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def sh(cmd: list[str], env: dict[str, str], *, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, input=input)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=b@e", "-c", "user.name=bench", *args],
                   check=True, capture_output=True)


def write_dir(directory: Path, prefix: str, count: int, value: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    docs = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{prefix}-{j:03d}"},
             "data": {"value": value}} for j in range(count)]
    (directory / "objects.yaml").write_text(yaml.safe_dump_all(docs))


def write_repo(repo: Path, syncs: int, objects: int, value: str) -> None:
    for i in range(syncs):
        write_dir(repo / "fleet" / f"s{i:03d}", f"s{i:03d}", objects, value)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", value)


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def syncs_ready_at(env: dict[str, str], namespace: str, sha: str) -> int:
    out = sh(["kubectl", "-n", namespace, "get", "syncs.kubectl-gitops.dev", "-o",
              "jsonpath={range .items[*]}{.status.lastAppliedRevision}{' '}"
              "{.status.conditions[?(@.type==\"Ready\")].status}{'\\n'}{end}"], env)
    return sum(1 for line in out.splitlines() if line.split()[:2] == [f"main@sha1:{sha}", "True"])


def wait_all(env: dict[str, str], namespace: str, sha: str, total: int, timeout: float) -> float:
    started = time.monotonic()
    while syncs_ready_at(env, namespace, sha) < total:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"not all {total} Syncs Ready at {sha[:12]} within {timeout:.0f}s")
        time.sleep(1.0)
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mb(pid: int, key: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def requests_by_verb(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("gitops_api_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            verb = labels.split('verb="', 1)[1].split('"', 1)[0]
            out[verb] = out.get(verb, 0.0) + float(value)
    return out


def metric_sum(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return sum(float(line.rsplit(" ", 1)[1]) for line in resp.read().decode().splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{"))


def first_new_revision(log: Path, sha: str) -> float | None:
    """When the controller's GitSource fetch first saw `sha` (epoch seconds, from its JSON log)."""
    import datetime as dt
    import json

    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("reason") == "NewRevision" and entry.get("revision", "").endswith(sha):
            return dt.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
    return None


def fleet_objects(ns: str, url: str, syncs: int, interval: str) -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = [{
        "apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
        "metadata": {"name": "fleet", "namespace": ns},
        "spec": {"url": url, "ref": {"branch": "main"}, "interval": interval}}]
    objs += [{"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
              "metadata": {"name": f"s{i:03d}", "namespace": ns, "labels": {"kubectl-gitops.dev/shard": ns}},
              "spec": {"sourceRef": {"kind": "GitSource", "name": "fleet"}, "path": f"fleet/s{i:03d}",
                       "interval": interval, "prune": True}} for i in range(syncs)]
    return objs


def steady_state(pid: int, metrics: int, window: float, interval: str, syncs: int, total: int) -> None:
    fetches0 = metric_sum(metrics, "gitops_git_fetch_duration_seconds_count")
    runs0 = metric_sum(metrics, "gitops_reconcile_duration_seconds_count")
    req0, cpu0, w0 = requests_by_verb(metrics), cpu_seconds(pid), time.monotonic()
    time.sleep(window)
    req1, cpu1, w1 = requests_by_verb(metrics), cpu_seconds(pid), time.monotonic()
    runs = metric_sum(metrics, "gitops_reconcile_duration_seconds_count") - runs0
    fetches = metric_sum(metrics, "gitops_git_fetch_duration_seconds_count") - fetches0
    elapsed = w1 - w0
    interval_s = float(interval.rstrip("s"))
    print(f"steady state over {elapsed:.0f}s: CPU {100 * (cpu1 - cpu0) / elapsed:.1f}% of one core; "
          f"RSS peak {rss_mb(pid):.0f} MB (now {rss_mb(pid, 'VmRSS'):.0f} MB); {runs:.0f} reconciles, "
          f"{fetches:.0f} Git fetches")
    deltas = {verb: req1.get(verb, 0) - req0.get(verb, 0) for verb in sorted(set(req0) | set(req1))}
    per_interval = {verb: round(n * interval_s / elapsed) for verb, n in deltas.items() if n}
    print(f"API requests per interval ({interval}) by verb: {per_interval} "
          f"= {sum(per_interval.values())} for {syncs} Syncs / {total} objects")


def baseline(env: dict[str, str], ns: str, repo: Path, syncs: int, objects: int) -> float:
    """One `kubectl gitops sync` of every object in one Sync, after a commit changing them all."""
    objs = [{"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
             "metadata": {"name": "fleet", "namespace": ns},
             "spec": {"url": repo.as_uri(), "ref": {"branch": "main"}, "interval": "10m"}},
            {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "all", "namespace": ns},
             "spec": {"sourceRef": {"kind": "GitSource", "name": "fleet"}, "path": "fleet", "interval": "10m",
                      "prune": True}}]
    sh(["kubectl", "create", "namespace", ns], env)
    sh(["kubectl", "apply", "--server-side", "-f", "-"], env, input=yaml.safe_dump_all(objs))
    sh([GITOPS, "-n", ns, "sync", "all"], env)
    write_repo(repo, syncs, objects, "v3")
    t0 = time.monotonic()
    sh([GITOPS, "-n", ns, "sync", "all"], env)
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", default="bench-ctl")
    parser.add_argument("--syncs", type=int, default=100)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--interval", default="60s", help="Sync and GitSource interval (seconds)")
    parser.add_argument("--window", type=float, default=60.0, help="steady-state window, seconds")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    sh([GITOPS, "dev", "up", "--name", args.cluster], env)
    env["KUBECONFIG"] = sh([GITOPS, "dev", "kubeconfig", "--name", args.cluster, "--path"], env).strip()
    sh([GITOPS, "install", "--no-webhook"], env)
    ns = f"fleet-{int(time.time()) % 100000}"
    sh(["kubectl", "create", "namespace", ns], env)
    work = Path(tempfile.mkdtemp(prefix="controller-bench-"))
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write_repo(repo, args.syncs, args.objects, "v1")
    total = args.syncs * args.objects
    print(f"{args.syncs} Syncs x {args.objects} ConfigMaps = {total} objects; interval {args.interval}; "
          f"namespace {ns}; {os.cpu_count()} cores (shared)", flush=True)

    metrics, health = free_port(), free_port()
    log = (work / "controller.log").open("wb")
    ctl = subprocess.Popen([GITOPS, "controller", "--shard", ns, "--allow-file-urls", "--concurrency",
                            str(args.concurrency), "--metrics-addr", f"127.0.0.1:{metrics}", "--health-addr",
                            f"127.0.0.1:{health}", "--log-format", "json"], env=env, stdout=log, stderr=log)
    try:
        t0 = time.monotonic()
        sh(["kubectl", "apply", "--server-side", "-f", "-"], env,
           input=yaml.safe_dump_all(fleet_objects(ns, repo.as_uri(), args.syncs, args.interval)))
        wait_all(env, ns, head(repo), args.syncs, 1800)
        print(f"initial: {args.syncs} Syncs created -> all Ready in {time.monotonic() - t0:.1f}s", flush=True)
        write_repo(repo, args.syncs, args.objects, "v2")
        committed = time.time()
        commit_to_ready = wait_all(env, ns, head(repo), args.syncs, 1800)
        fetched = first_new_revision(work / "controller.log", head(repo))
        seen = f"; fetch -> all Ready {committed + commit_to_ready - fetched:.1f}s" if fetched else ""
        print(f"commit -> all {args.syncs} Syncs Ready: {commit_to_ready:.1f}s (includes the wait for the "
              f"GitSource's next fetch, up to {args.interval}{seen})", flush=True)
        time.sleep(5)
        steady_state(ctl.pid, metrics, args.window, args.interval, args.syncs, total)
    finally:
        ctl.terminate()
        ctl.wait(60)
        log.close()
    if not args.skip_baseline:
        single = baseline(env, f"{ns}-one", repo, args.syncs, args.objects)
        print(f"baseline: one `kubectl gitops sync` of {total} objects, every one changed: {single:.1f}s; "
              f"controller commit -> all Ready / single sync = {commit_to_ready / single:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
