"""Time `kubectl gitops diff` of a 1,000-object Sync with one change against a no-change sync.

Not a test: it prints a table and always exits 0 (a missed target is a finding, not a failure).
The target (docs/inspect.md): a diff that finds one changed object costs at most 2x a sync that
changes nothing, since both render the same build and read the same live objects, and a diff
adds one server-side dry run per object that needs a write. Beside it, for scale, `kubectl diff
--server-side` of the same files with kubectl at the server's version (`ensure_kubectl()`), which
dry-runs every object.

Each figure is the median of `--repeat` runs, every command a child process (interpreter
start-up included, as for kubectl). Uses the private dev cluster `--cluster` (started if needed)
and the generator of benchmarks/sync_bench.py (ConfigMaps, Secrets, headless Services and
Deployments with 0 replicas over 10 namespaces).

    .venv/bin/python benchmarks/diff_bench.py [--objects 1000] [--repeat 3] [--cluster bench]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sync_bench as sb  # the sibling benchmark: its generator and timer


def median_of(repeat: int, once: Callable[[], sb.Run], want_rc: int, what: str) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        run = once()
        if run.rc != want_rc:
            print(f"  ! {what} exited {run.rc} (expected {want_rc}):\n{sb._tail(run.out)}", file=sys.stderr)
        times.append(run.seconds)
    return statistics.median(times), times


def change_one(directory: Path, namespace_file: str) -> None:
    """Change one ConfigMap value in one file (the plugin's and kubectl's copies alike)."""
    file = directory / namespace_file
    text = file.read_text()
    assert "LOG_LEVEL: info" in text
    file.write_text(text.replace("LOG_LEVEL: info", "LOG_LEVEL: debug", 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cluster", default="bench")
    args = parser.parse_args(argv)

    from kubectl_gitops.devcluster.build import ensure_kubectl

    kubectl = str(ensure_kubectl(lambda line: print(line, file=sys.stderr)))
    env = sb.start_cluster(args.cluster)
    prefix = f"d{args.objects}"
    work = Path(tempfile.mkdtemp(prefix="diff-bench-"))
    try:
        sb._cleanup(env, prefix, args.namespaces)
        repo = sb.make_repo(work, prefix, args.objects, args.namespaces, env)
        kdir = work / f"kubectl-{prefix}"
        sb.write_manifests(kdir, prefix, args.objects, args.namespaces, suffix="-kubectl")
        ns = sb.SYNC_NS
        sb.sh([sb.GITOPS, "-n", ns, "create", "source", prefix, "--url", f"file://{repo}", "--branch", "main"], env)
        sb.sh([sb.GITOPS, "-n", ns, "create", "sync", prefix, "--source", prefix, "--path", ".", "--prune"], env)
        sb.sh([sb.GITOPS, "-n", ns, "sync", prefix], env)
        kapply = [kubectl, "apply", "-f", str(kdir), "--server-side", "--field-manager=bench-kubectl"]
        sb.sh(kapply, env)
        sb.settle(env)

        sync_cmd = [sb.GITOPS, "-n", ns, "sync", prefix]
        diff_cmd = [sb.GITOPS, "-n", ns, "diff", prefix]
        kdiff = [kubectl, "diff", "-f", str(kdir), "--server-side", "--field-manager=bench-kubectl",
                 "--force-conflicts"]
        rows: list[tuple[str, float, list[float]]] = []
        rows.append(("no-change sync (baseline)", *median_of(args.repeat, lambda: sb.timed(sync_cmd, env), 0,
                                                               "sync")))
        rows.append(("diff, no change", *median_of(args.repeat, lambda: sb.timed(diff_cmd, env), 0, "diff")))
        rows.append(("kubectl diff --server-side, no change",
                     *median_of(args.repeat, lambda: sb.timed(kdiff, env), 0, "kubectl diff")))

        victim_file = f"{prefix}-{args.namespaces // 2:02d}.yaml"
        change_one(repo, victim_file)
        change_one(kdir, victim_file)
        local = [*diff_cmd, "--path", str(repo)]
        rows.append(("diff --path (work tree), one change",
                     *median_of(args.repeat, lambda: sb.timed(local, env), 1, "diff --path")))
        sb.sh(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@x", "commit", "-qam", "one"], env)
        rows.append(("diff (source revision), one change",
                     *median_of(args.repeat, lambda: sb.timed(diff_cmd, env), 1, "diff")))
        rows.append(("kubectl diff --server-side, one change",
                     *median_of(args.repeat, lambda: sb.timed(kdiff, env), 1, "kubectl diff")))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0][1]
    print(f"{args.objects} objects, median of {args.repeat} (seconds); ratio = vs the no-change sync")
    width = max(len(r[0]) for r in rows)
    for name, median, times in rows:
        print(f"  {name:<{width}}  {median:6.2f}  {median / base:5.2f}x   runs {', '.join(f'{t:.2f}' for t in times)}")
    worst = max(r[1] for r in rows if r[0].startswith("diff") and "one change" in r[0])
    print(f"target: diff with one change <= 2x the no-change sync: {worst / base:.2f}x "
          f"({'met' if worst <= 2 * base else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
