"""What the proxy costs an MCP client: latency and throughput of ``tools/call echo``.

Three processes, as in real use: the fixture servers (``python -m mcpkeeper.testing serve``),
the proxy (this file with ``--serve-proxy``, a provider handing out one minted token), and
the measuring client (the official ``mcp`` SDK client over streamable HTTP). The same calls
go once directly to the fixture MCP server (with the bearer token set by the client) and
once through the proxy (no token on the client side).

    .venv/bin/python bench/bench_proxy.py [--calls 1000] [--clients 16] [--per-client 100]

Targets: <= 1 ms added at p50, >= 70 % of direct throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass

import httpx
import httpx2
import psutil
import uvicorn
from _common import ready_child
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcpkeeper.auth.token import Token
from mcpkeeper.net.loop import run as run_loop
from mcpkeeper.proxy import create_proxy_app

_TOKEN_ENV = "MCPKEEPER_BENCH_TOKEN"  # the token goes to the proxy process by environment, not argv
_WARMUP = 30


class _StaticProvider:
    """A TokenProvider with one valid token: the bench measures the proxy, not the monitor."""

    def __init__(self, access_token: str) -> None:
        self._token = Token(access_token=access_token)

    async def token(self) -> Token:
        return self._token

    async def force_refresh(self, rejected: Token) -> Token:
        return self._token


# --- the proxy process ----------------------------------------------------------------------


async def _serve_proxy(upstream_url: str) -> None:
    app = create_proxy_app(upstream_url, _StaticProvider(os.environ[_TOKEN_ENV]), name="bench")
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    await task


# --- the measuring process ------------------------------------------------------------------


@dataclass
class _Latency:
    p50: float
    p99: float
    mean: float


def _client(url: str, headers: dict[str, str]) -> Client:
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0))
    return Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None)


async def _sequential(
    paths: dict[str, tuple[str, dict[str, str]]], calls: int, *, interleave: bool
) -> dict[str, list[float]]:
    """Latency of each of ``calls`` calls per path.

    Back to back (``interleave=False``), one path then the other: every process on the
    path stays warm. Interleaved, call by call: each process sleeps while the other path
    runs and must be woken for every call, as with calls spread out in real use (and load
    from other processes on the machine falls on both paths alike).
    """
    latencies: dict[str, list[float]] = {label: [] for label in paths}
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            label: await stack.enter_async_context(_client(*target)) for label, target in paths.items()
        }
        for client in clients.values():
            for _ in range(_WARMUP):
                await client.call_tool("echo", {"text": "warm-up"})
        order = list(clients.items())
        if interleave:
            rounds = [order if i % 2 else order[::-1] for i in range(calls)]
        else:
            rounds = [[pair] for pair in order for _ in range(calls)]
        for i, round_ in enumerate(rounds):
            for label, client in round_:
                started = time.perf_counter()
                result = await client.call_tool("echo", {"text": f"call {i}"})
                latencies[label].append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    raise RuntimeError(f"echo failed on the {label} path: {result}")
    return latencies


async def _concurrent(url: str, headers: dict[str, str], clients: int, per_client: int) -> tuple[int, float]:
    """``(calls, seconds)`` for ``clients`` sessions calling back to back."""
    ready = asyncio.Barrier(clients + 1)
    done = asyncio.Barrier(clients + 1)

    async def one() -> None:
        async with _client(url, headers) as client:
            await client.call_tool("echo", {"text": "warm-up"})
            await ready.wait()
            for i in range(per_client):
                await client.call_tool("echo", {"text": f"call {i}"})
            await done.wait()

    tasks = [asyncio.create_task(one()) for _ in range(clients)]
    await ready.wait()
    started = time.perf_counter()
    await done.wait()
    elapsed = time.perf_counter() - started
    await asyncio.gather(*tasks)
    return clients * per_client, elapsed


async def _throughput(
    paths: dict[str, tuple[str, dict[str, str]]], clients: int, per_client: int, rounds: int
) -> dict[str, float]:
    """Calls per second of each path, over alternating rounds (same reason as above)."""
    totals = {label: [0, 0.0] for label in paths}
    for _ in range(rounds):
        for label, (url, headers) in paths.items():
            calls, seconds = await _concurrent(url, headers, clients, per_client)
            totals[label][0] += calls
            totals[label][1] += seconds
    return {label: calls / seconds for label, (calls, seconds) in totals.items()}


def _latency(latencies: list[float]) -> _Latency:
    ordered = sorted(latencies)
    return _Latency(
        p50=statistics.median(ordered),
        p99=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        mean=statistics.fmean(ordered),
    )


async def _bench(args: argparse.Namespace) -> int:
    here = os.path.abspath(__file__)
    async with ready_child([sys.executable, "-m", "mcpkeeper.testing", "serve", "--json"]) as fixture:
        async with httpx.AsyncClient() as http:
            minted = (await http.post(fixture["control_url"] + "/mint", json={"client_id": "bench"})).json()
        token = minted["access_token"]
        direct_url = fixture["mcp_url"]
        async with ready_child(
            [sys.executable, here, "--serve-proxy", direct_url], env={_TOKEN_ENV: token}
        ) as proxy:
            paths = {
                "direct": (direct_url, {"authorization": f"Bearer {token}"}),
                "proxy": (f"http://127.0.0.1:{proxy['port']}/mcp", {}),
            }
            print(
                f"{args.calls} sequential calls per path back to back, then {args.interleaved} interleaved",
                flush=True,
            )
            cpu = _CpuMeter(fixture=fixture["pid"], proxy=proxy["pid"])
            warm: dict[str, list[float]] = {}
            cpu_per_call: dict[str, dict[str, float]] = {}
            for label, target in paths.items():
                cpu.start()
                warm.update(await _sequential({label: target}, args.calls, interleave=False))
                cpu_per_call[label] = cpu.per_call(args.calls)
            spread = await _sequential(paths, args.interleaved, interleave=True)
            per_round = max(1, args.per_client // args.rounds)
            print(
                f"{args.clients} concurrent clients x {per_round} calls, "
                f"{args.rounds} alternating rounds per path",
                flush=True,
            )
            rates = await _throughput(paths, args.clients, per_round, args.rounds)
    _report(
        {label: _latency(values) for label, values in warm.items()},
        {label: _latency(values) for label, values in spread.items()},
        rates,
        cpu_per_call,
    )
    return 0


def _report(
    warm: dict[str, _Latency],
    spread: dict[str, _Latency],
    rates: dict[str, float],
    cpu_per_call: dict[str, dict[str, float]],
) -> None:
    def row(name: str, direct: float, proxied: float) -> str:
        return f"{name:34}{direct:10.2f}{proxied:10.2f}   +{proxied - direct:.2f} ms"

    print()
    print(f"{'':34}{'direct':>10}{'proxy':>10}   proxy vs direct")
    for title, figures in (("back to back", warm), ("interleaved", spread)):
        direct, proxied = figures["direct"], figures["proxy"]
        print(row(f"sequential {title}, p50 (ms)", direct.p50, proxied.p50))
        print(row(f"sequential {title}, p99 (ms)", direct.p99, proxied.p99))
        print(row(f"sequential {title}, mean (ms)", direct.mean, proxied.mean))
    ratio = rates["proxy"] / rates["direct"]
    print(f"{'concurrent (calls/s)':34}{rates['direct']:10.2f}{rates['proxy']:10.2f}   {ratio:.0%} of direct")
    _report_cpu(cpu_per_call)
    p50_ok = warm["proxy"].p50 - warm["direct"].p50 <= 1.0
    print()
    print(
        f"added p50 (back to back) <= 1 ms: {'yes' if p50_ok else 'NO'}; "
        f"throughput >= 70 %: {'yes' if ratio >= 0.7 else 'NO'}"
    )


class _CpuMeter:
    """CPU seconds used by each process of the chain: robust where wall-clock time is not
    (on a machine shared with other work, latency measures the scheduler as much as us)."""

    def __init__(self, **pids: int) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._processes["client"] = psutil.Process()
        self._start: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {name: sum(process.cpu_times()[:2]) for name, process in self._processes.items()}

    def start(self) -> None:
        self._start = self._now()

    def per_call(self, calls: int) -> dict[str, float]:
        """Milliseconds of CPU per call in each process since :meth:`start`."""
        now = self._now()
        return {name: (now[name] - self._start[name]) / calls * 1000 for name in now}


def _report_cpu(per_call: dict[str, dict[str, float]]) -> None:
    names = ["client", "proxy", "fixture"]
    print()
    print(
        f"{'CPU per call, back to back (ms)':34}"
        + "".join(f"{name:>10}" for name in names)
        + f"{'total':>10}"
    )
    for label, figures in per_call.items():
        cells = "".join(f"{figures[name]:10.2f}" for name in names)
        print(f"{label:34}{cells}{sum(figures.values()):10.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000, help="sequential calls per path, back to back")
    parser.add_argument("--interleaved", type=int, default=300, help="sequential calls per path, interleaved")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client sessions")
    parser.add_argument(
        "--per-client", type=int, default=100, help="calls per concurrent session, all rounds"
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating throughput rounds per path")
    parser.add_argument("--serve-proxy", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve_proxy:
        run_loop(_serve_proxy(args.serve_proxy))
        return 0
    return asyncio.run(_bench(args))


if __name__ == "__main__":
    sys.exit(main())
