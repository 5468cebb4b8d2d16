"""`kubectl gitops --help` start-up time beside `kubectl version --client`, measured in the same run.

Both go through the real kubectl: the plugin's figure includes kubectl's plugin dispatch. Prints
the median of N runs each and the ratio (target: at most 3x). Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _median_seconds(cmd: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    _median_seconds(["kubectl", "gitops", "--help"], 2, env)  # warm the page cache
    kubectl = _median_seconds(["kubectl", "version", "--client"], args.runs, env)
    plugin = _median_seconds(["kubectl", "gitops", "--help"], args.runs, env)
    direct = _median_seconds([str(Path(sys.executable).parent / "kubectl-gitops"), "--help"], args.runs, env)
    print(f"{'command':<32}{'median':>10}")
    print(f"{'kubectl version --client':<32}{kubectl * 1000:>8.0f}ms")
    print(f"{'kubectl gitops --help':<32}{plugin * 1000:>8.0f}ms   ratio {plugin / kubectl:.2f}x (target <= 3x)")
    print(f"{'kubectl-gitops --help (direct)':<32}{direct * 1000:>8.0f}ms")


if __name__ == "__main__":
    main()
