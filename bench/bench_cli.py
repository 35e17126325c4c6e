"""Wall time of ``mcpkeeper list`` with 10 workloads (target: median <= 300 ms).

``list`` is typed often and scripted in loops, and it must not pay for the HTTP stack
or the MCP SDK: this measures the whole thing a user waits for (interpreter start,
imports, reading 10 configs + 10 statuses, rendering), as a subprocess.

Usage: python bench/bench_cli.py [--runs N] [--workloads N] [--format table|json]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 300.0


def populate(home: Path, count: int) -> None:
    """Write ``count`` workloads and their statuses through the real stores."""
    from mcpkeeper.state.status_store import StatusStore
    from mcpkeeper.state.statuses import WorkloadStatus
    from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore

    configs, statuses = WorkloadStore(home), StatusStore(home)
    cycle = [WorkloadStatus.RUNNING, WorkloadStatus.AUTH_RETRYING, WorkloadStatus.UNAUTHENTICATED]
    for index in range(count):
        name = f"bench-{index:02d}"
        configs.put(
            WorkloadConfig(name=name, remote_url=f"https://mcp{index}.example.com/mcp", port=41000 + index)
        )
        statuses.set(name, cycle[index % len(cycle)], f"benchmark workload {index}", pid=os.getpid())


def command() -> list[str]:
    script = Path(sys.executable).with_name("mcpkeeper")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mcpkeeper"]


def measure(home: Path, runs: int, output: str) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) milliseconds per run.

    CPU time is reported too because wall time on a busy machine measures the machine:
    CPU time is what the command itself costs.
    """
    env = {**os.environ, "MCPKEEPER_HOME": str(home), "COLUMNS": "200"}
    argv = [*command(), "list", "--format", output]
    subprocess.run(argv, env=env, check=True, capture_output=True)  # warm the page cache / .pyc
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, check=True, capture_output=True)
        wall.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if b"bench-09" not in done.stdout:
            raise SystemExit("list did not show the benchmark workloads")
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--workloads", type=int, default=10)
    parser.add_argument("--format", choices=["table", "json"], default=None, help="default: both")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="mcpkeeper-bench-cli-"))
    try:
        populate(home, args.workloads)
        baseline = measure_python(args.runs)
        print(f"mcpkeeper list, {args.workloads} workloads, {args.runs} runs (subprocess wall time)")
        print(f"  bare interpreter start:   median {statistics.median(baseline):6.1f} ms")
        worst = 0.0
        for output in [args.format] if args.format else ["table", "json"]:
            wall, cpu = measure(home, args.runs, output)
            median = statistics.median(wall)
            worst = max(worst, median)
            print(
                f"  list --format {output:<5}:    median {median:6.1f} ms  "
                f"min {min(wall):6.1f}  max {max(wall):6.1f}  (CPU median {statistics.median(cpu):6.1f} ms)"
            )
        verdict = "OK" if worst <= TARGET_MS else "SLOWER THAN TARGET"
        print(
            f"  target <= {TARGET_MS:.0f} ms (median wall): {verdict}; load average {os.getloadavg()[0]:.2f}"
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


def measure_python(runs: int) -> list[float]:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        timings.append((time.perf_counter() - start) * 1000)
    return timings


if __name__ == "__main__":
    sys.exit(main())
