"""Recovery from token-endpoint outages, end to end (issue 7's table).

    .venv/bin/python bench/bench_outage.py [--backend oidc|fixture|both] [--outage 60]

For each fault (connection refused, WAF HTML 403, 500, 429 with ``Retry-After: 5``, a
hanging token endpoint), one scenario of :mod:`tests.thirdparty.outage`: the real
``mcpkeeper proxy URL --port N`` logged in with a scripted browser, the official MCP
client calling ``echo`` once a second, and an outage of ``--outage`` seconds beginning
when the refresh falls due (after one good rotation). Two tables:

- a 15 s access token: the outage begins at the refresh, so the token runs out inside it;
- a 1 h access token, the outage beginning at refresh-ahead time. Waiting 45 minutes for
  the default refresh-ahead (75 %) is not a benchmark, so this run sets
  ``MCPKEEPER_TOKEN_REFRESH_AHEAD=0.01`` (refresh due 36 s after issue): the outage then
  begins with ~59 minutes of token life left, and no call should be refused at all.

Backends: ``oidc`` is oidc-provider (``make oracles``) behind our fault proxy, whose
``hang`` holds requests until the client gives up, as a real hung server does;
``fixture`` is our own fixture AS (``mcpkeeper.testing``), whose faults are switched at
the predicted refresh time and whose ``hang`` releases held requests on restore.

The scenarios of a table run in parallel processes. Figures are printed, not asserted.
Columns: first good call after the restore (s); refused calls after the first good one;
first refused call -> status ``auth_retrying`` (s; ``-`` never shown; negative: shown
before the first refusal); refused calls during the outage; token requests that reached
the server during the outage, and per hour of outage (a refused port counts none); first
successful refresh after the restore (s); statuses seen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAULTS = ["refused", "waf_html_403", "server_error_500", "rate_limited_429", "hang"]
_ONE_HOUR_ENV = "MCPKEEPER_TOKEN_REFRESH_AHEAD=0.01"


def _scenario_args(fault: str, backend: str, ttl: int, outage: float) -> list[str]:
    args = ["--fault", fault, "--mode", "port", "--backend", backend, "--access-ttl", str(ttl)]
    args += ["--outage", str(outage), "--after-restore", "60", "--settle", "6", "--wait-refresh"]
    if ttl >= 3600:
        args += ["--env", _ONE_HOUR_ENV]
    return args


def _start_table(
    backend: str, ttl: int, outage: float, faults: list[str], work: Path
) -> dict[str, subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    processes: dict[str, subprocess.Popen[str]] = {}
    for fault in faults:
        scenario_dir = work / f"{backend}-{ttl}-{fault}"
        scenario_dir.mkdir(parents=True)
        processes[fault] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.thirdparty.outage",
                "--json",
                "--workdir",
                str(scenario_dir),
                *_scenario_args(fault, backend, ttl, outage),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(1.0)  # spread the start-up work over the two cores
    return processes


def _collect_table(processes: dict[str, subprocess.Popen[str]], outage: float) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for fault, process in processes.items():
        try:
            out, _ = process.communicate(timeout=outage + 600)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        try:
            results[fault] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            results[fault] = {"error": f"no result (exit {process.returncode})"}
    return results


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


#: (heading, second heading line, result key, decimals)
_COLUMNS = [
    ("good after", "restore s", "first_good_after_restore", 1),
    ("refused", "after good", "refused_after_first_good", 0),
    ("->retrying", "s", "auth_retrying_delay", 2),
    ("refused", "in outage", "failed_during_outage", 0),
    ("token req", "in outage", "token_requests_during_outage", 0),
    ("req/h", "of outage", "token_requests_per_hour_of_outage", 0),
    ("refreshed", "after s", "refreshed_after_restore", 1),
]


def _print_table(title: str, results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'fault':<18}" + "".join(f"{head:>11}" for head, _, _, _ in _COLUMNS) + "  statuses seen")
    print(f"{'':<18}" + "".join(f"{sub:>11}" for _, sub, _, _ in _COLUMNS))
    for fault, r in results.items():
        if r.get("error"):
            print(f"{fault:<18} failed to run: {str(r['error']).splitlines()[0][:100]}")
            continue
        cells = "".join(f"{_fmt(r.get(key), digits):>11}" for _, _, key, digits in _COLUMNS)
        print(f"{fault:<18}{cells}  {','.join(r.get('statuses_seen', []))}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["oidc", "fixture", "both"], default="oidc")
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help="comma-separated subset of " + ",".join(FAULTS)
    )
    parser.add_argument("--tables", default="15,3600", help="access-token lifetimes, comma-separated seconds")
    args = parser.parse_args()
    backends = ["oidc", "fixture"] if args.backend == "both" else [args.backend]
    faults = [f for f in args.faults.split(",") if f]
    targets = (
        "targets: good after restore <= 5 s refused, <= 10 s 403/500/429, <= 15 s hang; 0 refused after good;"
    )
    print(
        "outage benchmark: client calls echo once a second; outage",
        f"{args.outage:g} s from the refresh due time",
    )
    print(targets, "retrying <= 1 s after first refusal; <= 60 token requests per hour of outage")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        for backend in backends:  # one backend at a time; its tables side by side
            ttls = [int(t) for t in args.tables.split(",")]
            running = {ttl: _start_table(backend, ttl, args.outage, faults, Path(tmp)) for ttl in ttls}
            for ttl, processes in running.items():
                results = _collect_table(processes, args.outage)
                label = "15 s" if ttl == 15 else ("1 h (refresh-ahead 0.01)" if ttl == 3600 else f"{ttl} s")
                _print_table(f"backend {backend}, access token {label}", results)
    print(f"\n(ran in {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
