"""Run every benchmark in turn (``make bench``); each prints its own figures.

Run them on an otherwise idle machine: they measure wall-clock latency and RSS.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHES = [
    "bench_token.py",
    "bench_proxy.py",
    "bench_http_stacks.py",
    "bench_stdio.py",
    "bench_memory.py",
    "bench_cli.py",
    "bench_hardening.py",
]


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHES:
        print(f"\n=== {name} " + "=" * (60 - len(name)), flush=True)
        done = subprocess.run([sys.executable, str(here / name)], check=False)
        if done.returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
