"""A real workload proxy under hostile load: its peak RSS, and what a well-behaved client sees.

Processes, as in real use: a small upstream (``--serve-upstream``: ``/mcp`` answers at
once, ``/slow`` after 0.5 to 1.5 s, like a tool call), the proxy (``--serve-proxy``: the
token-injecting proxy served exactly as the daemon serves it, ``mcpkeeper.net`` with its
default listener limits, on uvloop), a well-behaved client (``--well-behaved``: one
keep-alive connection, one small JSON-RPC POST every 20 ms, latency of each), and this
process, the attacker. A fresh proxy process serves each scenario, so its peak RSS
(``VmHWM``) is that scenario's:

* **idle**: the well-behaved client alone (the baseline);
* **header flood**: 20 sockets each streaming an endless header as fast as they can,
  reconnecting whenever the proxy cuts them off;
* **slow loris**: 300 sockets each sending a request head one line per second, never
  finishing it, reconnecting whenever the proxy closes them;
* **500 concurrent**: 500 connections each with one request in flight at all times (to
  ``/slow``: 500 requests held open by the proxy at once, ~500 requests/s). With
  ``--synchronized`` every ``/slow`` takes exactly 1 s, so the 500 answers come back in
  one burst each second: the worst case for the well-behaved client's latency.

    .venv/bin/python bench/bench_hardening.py [--duration 15]

Targets: peak RSS < 150 MB in every scenario; well-behaved p99 < 50 ms in every scenario.
(MB here are MiB, as ``VmHWM`` counts them.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from mcpkeeper.auth.token import Token
from mcpkeeper.net import InLoopServer, ListenerLimits, bind_loopback
from mcpkeeper.net.loop import run as run_loop
from mcpkeeper.proxy import create_proxy_app

_START_TIMEOUT = 20.0
_RSS_TARGET_MB = 150.0
_P99_TARGET_MS = 50.0
_RPC = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}}).encode()


def _raise_file_limit() -> None:
    """500 client connections and 500 upstream ones do not fit the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _announce(**facts: Any) -> None:
    print(json.dumps(facts), flush=True)


# --- the upstream and the proxy processes ---------------------------------------------------


@dataclass(frozen=True)
class _Upstream:
    synchronized: bool = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["path"] == "/slow":
            # Like tool calls: each takes its own time (0.5-1.5 s), so the 500 requests in
            # flight complete spread out; --synchronized: all in the same millisecond.
            await asyncio.sleep(1.0 if self.synchronized else random.uniform(0.5, 1.5))
        await _answer(send)


async def _answer(send: Any) -> None:
    body = b'{"jsonrpc": "2.0", "id": 1, "result": {"content": []}}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _serve(app: Any, limits: ListenerLimits | None = None) -> None:
    sock = bind_loopback(0)
    kwargs = {"limits": limits} if limits is not None else {}
    server = InLoopServer(app, sock, name="bench", lifespan="off", **kwargs)
    await server.start()
    _announce(port=sock.getsockname()[1], pid=os.getpid())
    await server.wait_closed()


class _StaticProvider:
    """A TokenProvider with one valid token: the bench measures the listener, not the monitor."""

    def __init__(self) -> None:
        self._token = Token(access_token="bench-upstream-token-0123456789")

    async def token(self) -> Token:
        return self._token

    async def force_refresh(self, rejected: Token) -> Token:
        return self._token


# --- the well-behaved client ----------------------------------------------------------------


async def _well_behaved(url: str, duration: float, interval: float) -> None:
    latencies: list[float] = []
    errors = 0
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as http:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = await http.post(url, content=_RPC, headers=headers)
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                latencies.append(elapsed)
            else:
                errors += 1
            await asyncio.sleep(max(0.0, interval - elapsed / 1000))
    _announce(latencies=latencies, errors=errors)


# --- the attackers ----------------------------------------------------------------------------


@dataclass
class _Tally:
    connections: int = 0
    cut_off: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def describe(self) -> str:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(self.statuses.items())) or "-"
        return (
            f"{self.connections} connections opened, {self.cut_off} closed by the proxy, "
            f"{self.requests} responses ({statuses})"
        )


async def _open(port: int, tally: _Tally) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tally.connections += 1
    return reader, writer


async def _header_flood_socket(port: int, stop: asyncio.Event, tally: _Tally) -> None:
    chunk = b"a" * 65536
    while not stop.is_set():
        try:
            _, writer = await _open(port, tally)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        try:
            writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: ")
            while not stop.is_set() and not writer.is_closing():
                writer.write(chunk)
                await writer.drain()
        except OSError:
            tally.cut_off += 1
        finally:
            writer.close()


async def _slow_loris_socket(port: int, stop: asyncio.Event, tally: _Tally) -> None:
    while not stop.is_set():
        try:
            reader, writer = await _open(port, tally)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        try:
            writer.write(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = 0
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        if await reader.read(1024) == b"":
                            raise ConnectionResetError("closed by the proxy")
                line += 1
                writer.write(b"X-Slow-%d: x\r\n" % line)
                await writer.drain()
        except OSError:
            tally.cut_off += 1
        finally:
            writer.close()


async def _concurrent_socket(port: int, stop: asyncio.Event, tally: _Tally) -> None:
    request = (
        b"POST /slow HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(_RPC), _RPC)
    )
    while not stop.is_set():
        try:
            reader, writer = await _open(port, tally)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        try:
            while not stop.is_set():
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                await reader.readexactly(_content_length(head))
                tally.requests += 1
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.cut_off += 1
        finally:
            writer.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


Attack = Callable[[int, asyncio.Event, _Tally], Awaitable[None]]


@dataclass(frozen=True)
class _Scenario:
    title: str
    attack: Attack | None
    sockets: int


_SCENARIOS = [
    _Scenario("idle (baseline)", None, 0),
    _Scenario("header flood, 20 sockets", _header_flood_socket, 20),
    _Scenario("slow loris, 300 sockets", _slow_loris_socket, 300),
    _Scenario("500 concurrent requests", _concurrent_socket, 500),
]


# --- orchestration ------------------------------------------------------------------------------


class _Child:
    """A child process of this script that announces one JSON line when it is ready."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, *args], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )

    async def announcement(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), timeout)
        if not line:
            raise RuntimeError(f"child {self.process.args} exited with {self.process.wait()}")
        facts: dict[str, Any] = json.loads(line)
        return facts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM; the current RSS where /proc is missing)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _rss_mb(pid)


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


@dataclass
class _Result:
    title: str
    rss_start_mb: float
    rss_peak_mb: float
    latencies: list[float]
    errors: int
    tally: _Tally

    def p(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run_scenario(scenario: _Scenario, upstream_port: int, duration: float) -> _Result:
    proxy = _Child("--serve-proxy", f"http://127.0.0.1:{upstream_port}/mcp")
    try:
        facts = await proxy.announcement(_START_TIMEOUT)
        port, pid = int(facts["port"]), int(facts["pid"])
        rss_start = _rss_mb(pid)
        stop = asyncio.Event()
        tally = _Tally()
        attackers = [
            asyncio.create_task(scenario.attack(port, stop, tally))
            for _ in range(scenario.sockets)
            if scenario.attack is not None
        ]
        await asyncio.sleep(2.0 if attackers else 0.0)  # let the attack build up first
        client = _Child("--well-behaved", f"http://127.0.0.1:{port}/mcp", "--duration", str(duration))
        try:
            measured = await client.announcement(duration + _START_TIMEOUT)
        finally:
            client.stop()
        stop.set()
        for task in attackers:
            task.cancel()
        await asyncio.gather(*attackers, return_exceptions=True)
        return _Result(
            scenario.title,
            rss_start,
            _peak_rss_mb(pid),
            [float(x) for x in measured["latencies"]],
            int(measured["errors"]),
            tally,
        )
    finally:
        proxy.stop()


async def _bench(duration: float, synchronized: bool) -> int:
    _raise_file_limit()
    upstream = _Child("--serve-upstream", *(["--synchronized"] if synchronized else []))
    try:
        upstream_port = int((await upstream.announcement(_START_TIMEOUT))["port"])
        results = [await _run_scenario(s, upstream_port, duration) for s in _SCENARIOS]
    finally:
        upstream.stop()
    print(f"well-behaved client: one keep-alive connection, a POST every 20 ms, {duration:g} s per scenario")
    print()
    columns = ("RSS start", "RSS peak", "p50 ms", "p99 ms", "max ms", "ok", "failed")
    widths = (11, 10, 9, 9, 9, 7, 8)
    print(f"{'scenario':28}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    for r in results:
        print(
            f"{r.title:28}{r.rss_start_mb:9.1f}MB{r.rss_peak_mb:8.1f}MB{r.p(0.5):9.2f}{r.p(0.99):9.2f}"
            f"{max(r.latencies, default=float('nan')):9.2f}{len(r.latencies):7d}{r.errors:8d}"
        )
    print()
    for r in results[1:]:
        print(f"{r.title}: {r.tally.describe()}")
    rss_ok = all(r.rss_peak_mb < _RSS_TARGET_MB for r in results)
    p99_ok = all(r.p(0.99) < _P99_TARGET_MS and r.errors == 0 for r in results)
    print()
    print(
        f"peak RSS < {_RSS_TARGET_MB:g} MB: {'yes' if rss_ok else 'NO'}; "
        f"well-behaved p99 < {_P99_TARGET_MS:g} ms, no failures: {'yes' if p99_ok else 'NO'}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per scenario (at most 30)")
    parser.add_argument(
        "--synchronized", action="store_true", help="every /slow answer takes exactly 1 s (bursts)"
    )
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-proxy", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    parser.add_argument("--well-behaved", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    duration = min(args.duration, 30.0)
    if args.serve_upstream:
        _raise_file_limit()
        run_loop(_serve(_Upstream(args.synchronized), ListenerLimits(max_connections=4096)))
    elif args.serve_proxy:
        _raise_file_limit()
        run_loop(_serve(create_proxy_app(args.serve_proxy, _StaticProvider(), name="bench")))
    elif args.well_behaved:
        run_loop(_well_behaved(args.well_behaved, duration, 0.02))
    else:
        return asyncio.run(_bench(duration, args.synchronized))
    return 0


if __name__ == "__main__":
    sys.exit(main())
