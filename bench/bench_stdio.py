"""What the stdio paths add to a tool call: ``proxy --stdio`` and ``connect`` against direct HTTP.

Clients that spawn a command reach a remote server through ``mcpkeeper proxy URL --stdio``
(one workload in that process) or ``mcpkeeper connect NAME`` (a daemon workload). The
official ``mcp`` SDK client calls ``tools/call echo`` over each, over the daemon
workload's local URL (the HTTP proxy path, for reference) and directly over streamable
HTTP, interleaved call by call so that load from other processes falls on every path
alike. The upstream is an MCP server without authorization on loopback (what is measured
is the transport hops; the token path is ``bench_proxy.py``'s), run by
``bench_http_stacks.py --serve-upstream``; the CLI runs in a temporary home.

    .venv/bin/python bench/bench_stdio.py [--calls 400] [--runs 1]

Target: every path <= 1 ms added at p50 over direct. The CPU per call of the mcpkeeper
processes (daemon and stdio children; each path's calls back to back) is printed too:
it holds still where latency on a shared machine does not.

Before (main at 41273fc) and after the bridge went straight to the proxy (in process
for a ``proxy --stdio`` that hosts the workload, over the proxy's own HTTP/1.1 client for
``connect``) and onto the loop's own pipes; two invocations, each of two runs, on the
2-core development machine at load average ~2 (run 1 / run 2):

                                      proxy (HTTP)   proxy --stdio   connect
    before: added p50 (ms)            +1.08/+1.27    +3.05/+2.73     +3.00/+2.76
    before: mcpkeeper CPU/call (ms)   0.87/1.07      3.33/5.17       4.67/5.23
    after:  added p50 (ms)            +1.09/+1.09    -0.00/+0.03     +0.66/+0.63
    after:  mcpkeeper CPU/call (ms)   1.00/1.03      1.90/1.47       2.87/2.47

(proxy (HTTP), the daemon workload's URL, is unchanged code: its figures are the
machine's.) The direct client pays for httpx2, httpcore2, h11 and, since the SDK closes
each SSE answer before its end, a new connection per call; the stdio paths now pay less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import httpx2
import psutil
from _common import call_echo, interleaved_latencies, ready_child
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

_HERE = Path(__file__).resolve().parent
_CLI = [sys.executable, "-m", "mcpkeeper"]
_WARMUP = 30


@asynccontextmanager
async def _upstream() -> AsyncIterator[str]:
    script = str(_HERE / "bench_http_stacks.py")
    async with ready_child([sys.executable, script, "--serve-upstream"]) as ready:
        yield f"http://127.0.0.1:{ready['port']}/mcp"


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_CLI, *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@asynccontextmanager
async def _daemon_workload(env: dict[str, str], upstream: str) -> AsyncIterator[str]:
    """A daemon workload for ``upstream`` named ``bench``; its local URL. The daemon stops on exit."""
    try:
        done = await asyncio.to_thread(_cli, env, "run", upstream, "--name", "bench", "--format", "json")
        if done.returncode != 0:
            raise RuntimeError(f"mcpkeeper run failed: {done.stderr.strip()}")
        yield str(json.loads(done.stdout)["workload"]["url"])
    finally:
        await asyncio.to_thread(_cli, env, "shutdown")


@contextlib.contextmanager
def _errlog(home: Path) -> Iterator[TextIO]:
    """Where the stdio children's stderr goes (printed if a run fails)."""
    with (home / "stdio.err").open("w+") as errlog:
        try:
            yield errlog
        except BaseException:
            errlog.seek(0)
            print(errlog.read()[-4000:], file=sys.stderr)
            raise


def _http_client(url: str) -> Client:
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=300.0))
    return Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None)


def _stdio_client(env: dict[str, str], errlog: Any, *args: str) -> Client:
    params = StdioServerParameters(command=_CLI[0], args=[*_CLI[1:], *args], env=env)
    return Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None)


def _mcpkeeper_processes(home: str) -> list[psutil.Process]:
    """The daemon and the stdio children (what the paths cost beyond the client and upstream)."""
    from mcpkeeper.api.paths import pid_path

    found = [psutil.Process(int(pid_path(Path(home)).read_text().split()[0]))]
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "mcpkeeper" in " ".join(child.cmdline()) and (
                "--stdio" in child.cmdline() or "connect" in child.cmdline()
            ):
                found.append(child)
    return found


async def _cpu_per_call(
    clients: dict[str, Client], processes: list[psutil.Process], calls: int
) -> dict[str, float]:
    """Per path, CPU ms per call of every mcpkeeper process, the path's calls back to back."""

    def total() -> float:
        return sum(sum(process.cpu_times()[:2]) for process in processes)

    cpu: dict[str, float] = {}
    for label, client in clients.items():
        before = total()
        for i in range(calls):
            await call_echo(client, label, f"cpu {i}")
        cpu[label] = (total() - before) / calls * 1000
    return cpu


async def _run(calls: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    with tempfile.TemporaryDirectory() as home, _errlog(Path(home)) as errlog:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MCPKEEPER_", "BROWSER"))}
        env |= {"MCPKEEPER_HOME": home, "MCPKEEPER_SECRET_BACKEND": "file"}
        async with (
            _upstream() as upstream,
            # A second one: `proxy URL --stdio` attaches to a daemon workload serving URL.
            _upstream() as own_upstream,
            _daemon_workload(env, upstream) as local_url,
            contextlib.AsyncExitStack() as stack,
        ):
            paths = {
                "direct": _http_client(upstream),
                "proxy (HTTP)": _http_client(local_url),
                "proxy --stdio": _stdio_client(
                    env, errlog, "proxy", own_upstream, "--name", "piped", "--stdio"
                ),
                "connect": _stdio_client(env, errlog, "connect", "bench"),
            }
            clients = {label: await stack.enter_async_context(client) for label, client in paths.items()}
            latencies = await interleaved_latencies(clients, calls, _WARMUP)
            cpu = await _cpu_per_call(clients, _mcpkeeper_processes(home), calls)
    return latencies, cpu


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _report(results: list[tuple[dict[str, list[float]], dict[str, float]]], calls: int) -> None:
    runs = [latencies for latencies, _ in results]
    labels = list(runs[0])
    width = 16
    print(f"\n{calls} interleaved tools/call per path and run (official SDK client)")
    print(f"{'':30}" + "".join(f"{label:>{width}}" for label in labels))
    for n, latencies in enumerate(runs, 1):
        base50, base99 = _p(latencies["direct"], 0.5), _p(latencies["direct"], 0.99)
        print(f"{f'run {n}: p50 (ms)':30}" + "".join(f"{_p(v, 0.5):>{width}.2f}" for v in latencies.values()))
        print(
            f"{f'run {n}: p99 (ms)':30}" + "".join(f"{_p(v, 0.99):>{width}.2f}" for v in latencies.values())
        )
        added50 = "".join(f"{_p(latencies[label], 0.5) - base50:>+{width}.2f}" for label in labels[1:])
        added99 = "".join(f"{_p(latencies[label], 0.99) - base99:>+{width}.2f}" for label in labels[1:])
        print(f"{f'run {n}: added p50 (ms)':30}{'':>{width}}{added50}")
        print(f"{f'run {n}: added p99 (ms)':30}{'':>{width}}{added99}")
        cpu = results[n - 1][1]
        cells = "".join(f"{cpu[label]:>{width}.2f}" for label in labels[1:])
        print(f"{f'run {n}: mcpkeeper CPU/call (ms)':30}{'':>{width}}{cells}")
    worst = max(_p(run[label], 0.5) - _p(run["direct"], 0.5) for run in runs for label in labels[1:])
    print(
        f"\nevery path <= 1 ms added at p50 in every run: {'yes' if worst <= 1.0 else 'NO'}"
        f" (worst {worst:+.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400, help="interleaved calls per path and run")
    parser.add_argument("--runs", type=int, default=2, help="independent runs (fresh processes each)")
    args = parser.parse_args()
    runs = [asyncio.run(_run(args.calls)) for _ in range(args.runs)]
    _report(runs, args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
