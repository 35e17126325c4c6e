"""The proxy's upstream HTTP client, side by side: which stack is worth carrying.

The same proxy app (token injection, header filtering, streaming relay) is run once per
upstream stack, each in its own process, all at the same time, and the official ``mcp``
SDK client calls ``tools/call echo`` through each of them and directly, in one run:

* ``own``      the proxy's own HTTP/1.1 client (:mod:`mcpkeeper.proxy._http1`);
* ``httpx``    an ``httpx.AsyncClient`` made by :func:`create_upstream_client`;
* ``httpcore`` httpcore's connection pool used directly (no httpx client layer);
* ``aiohttp``  aiohttp's client session, when aiohttp is installed (it is not a dependency).

LAN: everything on loopback; per path p50/p99 of the latency (calls interleaved path by
path, so load from other processes falls on every path alike), CPU per call of the proxy
process, and calls per second with 16 concurrent client sessions.

WAN (``--no-wan`` to skip): the upstream behind TLS and ``--rtt`` ms of added round-trip
time, made by a relay process that delays every byte by half of it each way (and a new
connection's first bytes by one more round trip, its TCP handshake). ``tc netem`` in a
network namespace would be the usual tool; this machine's kernel is built without netem
(``CONFIG_NET_SCH_NETEM``), and the relay needs no root. The client to proxy hop stays
local. Two client behaviours: one warm session calling repeatedly,
and a new session per call (connect, TLS, initialize, call, close), which is what a
command-line agent or a per-call MCP client does; there the proxy's warm upstream
connections save the handshakes.

    .venv/bin/python bench/bench_http_stacks.py [--calls 400] [--clients 16] [--rtt 30]

Keep a stack only if it beats the others by more than the run-to-run noise: run it twice.
Two runs on the 2-core development machine, shared with other work (run 1 / run 2):

                                   own          httpx        httpcore     aiohttp
    added p50 over direct (ms)     +0.99/+1.62  +3.05/+5.48  +2.83/+3.36  +1.75/+1.98
    proxy CPU per call (ms)        1.67/1.50    3.74/3.45    3.21/2.91    2.38/2.07
    16 clients, % of direct        109%/101%    77%/59%      62%/35%      94%/74%
    WAN warm session p50 (ms)      40.9/39.1    41.4/42.5    40.7/42.2    39.5/39.8   direct 104.3/102.5
    WAN new session per call p50   203/230      209/250      205/262      203/248     direct 519/540

The own client costs the least CPU per call in both runs, by more than the runs differ;
behind a 30 ms link every stack's warm pool makes a call through the proxy 2.5x faster
than the SDK client going direct (which opens a new TLS connection per request).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import os
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpcore
import httpx
import httpx2
import psutil
import uvicorn
from _common import call_echo, interleaved_latencies, ready_child
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from mcpkeeper.auth.token import Token
from mcpkeeper.net.loop import run as run_loop
from mcpkeeper.proxy import create_proxy_app
from mcpkeeper.proxy._headers import RawHeaders
from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.proxy._upstream import (
    KEEPALIVE_EXPIRY,
    MAX_IDLE_PER_ORIGIN,
    UPSTREAM_TIMEOUT,
    UpstreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)

STACKS = ("own", "httpx", "httpcore", "aiohttp")
_START_TIMEOUT = 30.0
_WARMUP = 20
_TOKEN = "bench-token"


# --- the upstream process: an MCP server with one tool, optionally behind TLS ---------------


async def _serve_upstream(certfile: str | None, keyfile: str | None) -> None:
    from mcp.server.mcpserver import MCPServer

    server: MCPServer[Any] = MCPServer("bench-upstream", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        access_log=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )
    await _serve_and_announce(uvicorn.Server(config))


async def _serve_and_announce(server: uvicorn.Server) -> None:
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + _START_TIMEOUT
    while not server.started:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    await task


# --- the proxy process: the proxy app with one upstream stack ---------------------------------


class _StaticProvider:
    """One valid token: the bench measures the HTTP stack, not the monitor."""

    async def token(self) -> Token:
        return Token(access_token=_TOKEN)

    async def force_refresh(self, rejected: Token) -> Token:
        return Token(access_token=_TOKEN)


class _HttpcoreResponse:
    def __init__(self, response: httpcore.Response) -> None:
        self._response = response
        self.status_code = response.status
        self.raw_headers: RawHeaders = list(response.headers)
        self.complete = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_stream():
                yield chunk
        except httpcore.NetworkError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


class _HttpcoreUpstream:
    """httpcore's pool directly: what httpx runs on, without the client layer above it."""

    def __init__(self, origin: Origin) -> None:
        self._origin = origin
        self._authority = str(origin).split("://", 1)[1].encode("ascii")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,  # httpx's default (httpcore's own is 10)
            max_keepalive_connections=MAX_IDLE_PER_ORIGIN,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        self.timeout = UPSTREAM_TIMEOUT.as_dict()
        self.is_closed = False

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> _HttpcoreResponse:
        framing = (
            [(b"content-length", str(len(body)).encode())]
            if isinstance(body, bytes)
            else [(b"transfer-encoding", b"chunked")]
        )
        request = httpcore.Request(
            method.encode("ascii"),
            httpcore.URL(
                scheme=self._origin.scheme.encode(),
                host=self._origin.host.encode(),
                port=self._origin.port,
                target=target,
            ),
            headers=[(b"host", self._authority), *headers, *framing],
            content=body,
            extensions={"timeout": self.timeout},
        )
        try:
            response = await self._pool.handle_async_request(request)
        except httpcore.TimeoutException as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise UpstreamUnreachable(str(exc) or type(exc).__name__) from exc
        return _HttpcoreResponse(response)

    async def aclose(self) -> None:
        self.is_closed = True
        await self._pool.aclose()


class _AiohttpResponse:
    def __init__(self, response: Any) -> None:
        self._response = response
        self.status_code: int = response.status
        self.raw_headers: RawHeaders = list(response.raw_headers)
        self.complete = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        import aiohttp

        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except aiohttp.ClientError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._response.release()


class _AiohttpUpstream:
    """aiohttp's client session (no cookies kept, no redirects, no decompression)."""

    def __init__(self, origin: Origin) -> None:
        import aiohttp

        self._base = str(origin)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, keepalive_timeout=KEEPALIVE_EXPIRY, ssl=httpx.create_ssl_context()
            ),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None, connect=UPSTREAM_TIMEOUT.connect),
        )
        self.timeout = UPSTREAM_TIMEOUT.as_dict()

    @property
    def is_closed(self) -> bool:
        return bool(self._session.closed)

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> _AiohttpResponse:
        import aiohttp
        from multidict import CIMultiDict
        from yarl import URL

        try:
            response = await self._session.request(
                method,
                URL(self._base + target.decode("latin-1"), encoded=True),
                headers=CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers),
                data=body,
                allow_redirects=False,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout("ConnectTimeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable(str(exc) or type(exc).__name__) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


def _upstream(stack: str, upstream_url: str) -> Any:
    """The stack's Upstream for the app (``own`` is the app's default, built by the app)."""
    origin = Origin.of(upstream_url)
    assert origin is not None
    if stack == "httpx":
        from mcpkeeper.proxy import create_upstream_client
        from mcpkeeper.proxy._upstream import http_upstream

        return http_upstream(create_upstream_client(), upstream_url)
    if stack == "httpcore":
        return _HttpcoreUpstream(origin)
    if stack == "aiohttp":
        return _AiohttpUpstream(origin)
    return None


async def _serve_proxy(upstream_url: str, stack: str) -> None:
    app = create_proxy_app(
        upstream_url, _StaticProvider(), name=f"bench-{stack}", upstream=_upstream(stack, upstream_url)
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    await _serve_and_announce(uvicorn.Server(config))


# --- measuring ----------------------------------------------------------------------------------


def _client(url: str, verify: ssl.SSLContext | None = None) -> Client:
    http = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=300.0), verify=verify or True)
    return Client(streamable_http_client(url, http_client=http), mode="legacy", cache=None)


async def _warm_sessions(
    paths: dict[str, str], calls: int, warmup: int, verify: ssl.SSLContext | None = None
) -> dict[str, list[float]]:
    """Per path, the latency (ms) of ``calls`` calls in one long session, paths interleaved."""
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            label: await stack.enter_async_context(_client(url, verify)) for label, url in paths.items()
        }
        latencies = await interleaved_latencies(clients, calls, warmup)
    return latencies


async def _session_per_call(
    paths: dict[str, str], calls: int, verify: ssl.SSLContext | None = None
) -> dict[str, list[float]]:
    """Per path, the latency (ms) of a whole new session per call (connect, initialize, call, close)."""
    latencies: dict[str, list[float]] = {label: [] for label in paths}
    order = list(paths.items())
    for i in range(calls):
        for label, url in order if i % 2 else order[::-1]:
            started = time.perf_counter()
            async with _client(url, verify) as client:
                await call_echo(client, label, f"call {i}")
            latencies[label].append((time.perf_counter() - started) * 1000)
    return latencies


async def _throughput(paths: dict[str, str], clients: int, per_client: int, rounds: int) -> dict[str, float]:
    """Calls per second of each path with ``clients`` concurrent sessions, rounds alternating."""
    totals = {label: [0, 0.0] for label in paths}
    for round_ in range(rounds):
        order = list(paths.items())
        for label, url in order if round_ % 2 else order[::-1]:
            ready = asyncio.Barrier(clients + 1)
            done = asyncio.Barrier(clients + 1)

            async def one(url: str = url, label: str = label, ready: Any = ready, done: Any = done) -> None:
                async with _client(url) as client:
                    await call_echo(client, label, "warm-up")
                    await ready.wait()
                    for i in range(per_client):
                        await call_echo(client, label, f"call {i}")
                    await done.wait()

            async with asyncio.TaskGroup() as tg:
                for _ in range(clients):
                    tg.create_task(one())
                await ready.wait()
                started = time.perf_counter()
                await done.wait()
                totals[label][0] += clients * per_client
                totals[label][1] += time.perf_counter() - started
    return {label: calls / seconds for label, (calls, seconds) in totals.items()}


def _cpu_seconds(pid: int) -> float:
    return float(sum(psutil.Process(pid).cpu_times()[:2]))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _stacks() -> list[str]:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        print("aiohttp is not installed: its column is left out (pip install aiohttp to add it)")
        return [stack for stack in STACKS if stack != "aiohttp"]
    return list(STACKS)


@asynccontextmanager
async def _proxies(upstream_url: str, stacks: list[str]) -> AsyncIterator[dict[str, dict[str, Any]]]:
    here = os.path.abspath(__file__)
    async with contextlib.AsyncExitStack() as stack:
        started = {}
        for name in stacks:
            started[name] = await stack.enter_async_context(
                ready_child([sys.executable, here, "--serve-proxy", upstream_url, "--stack", name])
            )
        yield started


async def _lan(args: argparse.Namespace, stacks: list[str]) -> dict[str, Any]:
    here = os.path.abspath(__file__)
    async with ready_child([sys.executable, here, "--serve-upstream"]) as upstream:
        direct = f"http://127.0.0.1:{upstream['port']}/mcp"
        async with _proxies(direct, stacks) as proxies:
            paths = {"direct": direct} | {
                name: f"http://127.0.0.1:{info['port']}/mcp" for name, info in proxies.items()
            }
            cpu_before = {name: _cpu_seconds(info["pid"]) for name, info in proxies.items()}
            latencies = await _warm_sessions(paths, args.calls, _WARMUP)
            cpu = {
                name: (_cpu_seconds(info["pid"]) - cpu_before[name]) / (args.calls + _WARMUP) * 1000
                for name, info in proxies.items()
            }
            rates = await _throughput(paths, args.clients, args.per_client, args.rounds)
    return {"latencies": latencies, "cpu": cpu, "rates": rates}


async def _wan(args: argparse.Namespace, stacks: list[str]) -> dict[str, Any]:
    """A TLS upstream behind the delay relay, the proxies in front of the relay."""
    here = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = _self_signed_certificate(Path(tmp))
        # The proxies' stacks build their TLS context with httpx's helper, which reads it.
        os.environ["SSL_CERT_FILE"] = str(cert)
        trust = ssl.create_default_context(cafile=str(cert))
        upstream_args = ["--serve-upstream", "--certfile", str(cert), "--keyfile", str(key)]
        async with (
            ready_child([sys.executable, here, *upstream_args]) as upstream,
            ready_child(
                [sys.executable, here, "--serve-delay", str(upstream["port"]), "--rtt", str(args.rtt)]
            ) as relay,
        ):
            direct = f"https://127.0.0.1:{relay['port']}/mcp"
            async with _proxies(direct, stacks) as proxies:
                paths = {"direct": direct} | {
                    name: f"http://127.0.0.1:{info['port']}/mcp" for name, info in proxies.items()
                }
                warm = await _warm_sessions(paths, args.wan_calls, 3, verify=trust)
                fresh = await _session_per_call(paths, args.wan_calls, verify=trust)
    return {"warm": warm, "fresh": fresh}


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpkeeper bench upstream")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "upstream.pem", directory / "upstream.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


# --- the delay relay: a long link between the proxies (or the direct client) and the upstream -


async def _serve_delay(target_port: int, rtt_ms: float) -> None:
    """Forward loopback connections to ``target_port``, each byte arriving ``rtt/2`` late.

    Order is kept and nothing is throttled: a link with latency and ample bandwidth. The
    TCP handshake to the relay itself is local, so a new connection's first bytes to the
    upstream wait one extra round trip: the one its handshake would have cost.
    """
    one_way = rtt_ms / 2000

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(
                _delayed_pump(reader, up_writer, one_way, first_extra=2 * one_way),
                _delayed_pump(up_reader, writer, one_way, first_extra=0.0),
            )
        finally:
            for side in (writer, up_writer):
                side.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
    async with server:
        await server.serve_forever()


async def _delayed_pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, *, first_extra: float
) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    delivery = asyncio.create_task(deliver())
    extra = first_extra
    try:
        while True:
            data = await reader.read(65536)
            queue.put_nowait((loop.time() + delay + extra, data))
            extra = 0.0
            if not data:
                break
        await delivery
    except (ConnectionError, OSError):
        delivery.cancel()
    finally:
        if not delivery.done():
            delivery.cancel()


# --- report -------------------------------------------------------------------------------------


def _report(args: argparse.Namespace, lan: dict[str, Any], wan: dict[str, Any] | None) -> None:
    latencies, cpu, rates = lan["latencies"], lan["cpu"], lan["rates"]
    stacks = [label for label in latencies if label != "direct"]
    direct = latencies["direct"]
    width = 12
    head = f"{'':40}" + "".join(f"{label:>{width}}" for label in latencies)
    print()
    rounds = f"{args.clients} clients x {args.per_client} calls x {args.rounds} rounds"
    print(f"LAN: {args.calls} interleaved calls per path, then {rounds}")
    print(head)

    def row(title: str, cells: list[str]) -> None:
        print(f"{title:40}" + "".join(f"{cell:>{width}}" for cell in cells))

    row("p50 (ms)", [f"{_p(v, 0.5):.2f}" for v in latencies.values()])
    row("p99 (ms)", [f"{_p(v, 0.99):.2f}" for v in latencies.values()])
    for q in (0.5, 0.99):
        added = [f"{_p(latencies[s], q) - _p(direct, q):+.2f}" for s in stacks]
        row(f"added p{q * 100:.0f} over direct (ms)", ["", *added])
    row("proxy CPU per call (ms)", ["", *[f"{cpu[s]:.3f}" for s in stacks]])
    row(f"{args.clients} clients (calls/s)", [f"{rates[label]:.0f}" for label in latencies])
    row("  % of direct", ["", *[f"{rates[s] / rates['direct']:.0%}" for s in stacks]])
    if wan is None:
        return
    print()
    print(f"WAN: upstream behind TLS, +{args.rtt:g} ms RTT (delay relay), {args.wan_calls} calls per path")
    print(head)
    for title, figures in (("warm session", wan["warm"]), ("new session per call", wan["fresh"])):
        row(f"{title}, p50 (ms)", [f"{_p(v, 0.5):.1f}" for v in figures.values()])
        row(f"{title}, p99 (ms)", [f"{_p(v, 0.99):.1f}" for v in figures.values()])
        base = _p(figures["direct"], 0.5)
        row(f"{title}, p50 vs direct", ["", *[f"{_p(figures[s], 0.5) - base:+.1f}" for s in stacks]])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=400, help="LAN: interleaved calls per path")
    parser.add_argument("--clients", type=int, default=16, help="LAN: concurrent client sessions")
    parser.add_argument("--per-client", type=int, default=40, help="LAN: calls per session per round")
    parser.add_argument("--rounds", type=int, default=2, help="LAN: alternating throughput rounds")
    parser.add_argument("--rtt", type=float, default=30.0, help="WAN: added round-trip time (ms)")
    parser.add_argument("--wan-calls", type=int, default=40, help="WAN: calls per path and behaviour")
    parser.add_argument("--no-wan", action="store_true", help="skip the WAN case")
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--certfile", help=argparse.SUPPRESS)
    parser.add_argument("--keyfile", help=argparse.SUPPRESS)
    parser.add_argument("--serve-proxy", metavar="UPSTREAM_URL", help=argparse.SUPPRESS)
    parser.add_argument("--stack", choices=STACKS, help=argparse.SUPPRESS)
    parser.add_argument("--serve-delay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.serve_upstream:
        run_loop(_serve_upstream(args.certfile, args.keyfile))
        return 0
    if args.serve_proxy:
        run_loop(_serve_proxy(args.serve_proxy, args.stack))
        return 0
    if args.serve_delay:
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # connections cut at exit
        run_loop(_serve_delay(args.serve_delay, args.rtt))
        return 0
    stacks = _stacks()
    lan = asyncio.run(_lan(args, stacks))
    wan = None if args.no_wan else asyncio.run(_wan(args, stacks))
    _report(args, lan, wan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
