"""Token monitor benchmarks: hot path, refresh storm, recovery after outages.

    .venv/bin/python bench/bench_token.py [--outage-hours 1] [--skip-recovery]

Recovery is measured twice. With the default timings in virtual time (the monitor's
real code, a token endpoint that fails as a refused port, a WAF, a 500, a 429 with
Retry-After: 30 or a hang would, a probe that sees what a GET would, a client sending one
request a second) the outages of issue 7 run in a moment and every figure is exact:
15 s and 1 h tokens, a 60 s outage beginning when the refresh falls due, and a long one
for the hourly request count. Then once for real over loopback HTTP against the fixture
server, for a refused outage. The same scenarios with real processes, the real CLI and a
certified third-party server: bench/bench_outage.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import math
import time

import httpx

from mcpkeeper.auth import (
    AuthRetryingError,
    AuthState,
    ClientCredentials,
    MonitoredTokenSource,
    RetryConfig,
    Token,
    TokenEndpoint,
)
from mcpkeeper.auth.errors import TokenEndpointError, TokenUnavailableError
from mcpkeeper.auth.probe import http_probe
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.state import WorkloadStatus
from mcpkeeper.testing import FixtureAuthServer
from mcpkeeper.testing.clock import VirtualClock


class _NullSink:
    def report(self, status: WorkloadStatus, reason: str) -> None:
        pass


async def _unused_refresher(token: Token, progress: object = None) -> Token:
    raise AssertionError("the hot path must not refresh")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_hot_path() -> None:
    token = Token("a" * 40, "r" * 40, expires_at=time.time() + 3600, issued_at=time.time())
    source = MonitoredTokenSource(token, _unused_refresher, _NullSink(), name="bench")
    async with source:
        n = 200_000
        t0 = time.perf_counter_ns()
        for _ in range(n):
            await source.token()
        one = (time.perf_counter_ns() - t0) / n

        async def worker(k: int) -> None:
            for _ in range(k):
                await source.token()

        tasks, per = 100, 2_000
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(worker(per) for _ in range(tasks)))
        many = (time.perf_counter_ns() - t0) / (tasks * per)
    print("hot path: await token() with a valid token")
    print(f"  1 task      : {one:8.0f} ns/call   (target <= 2000 ns)")
    print(f"  100 tasks   : {many:8.0f} ns/call   (target <= 2000 ns)")


async def _minted(
    auth: FixtureAuthServer, timeout: float, http: httpx.AsyncClient | None = None
) -> tuple[Token, TokenEndpoint]:
    minted = auth.mint("bench")
    endpoint = TokenEndpoint(auth.token_endpoint, ClientCredentials("bench"), timeout=timeout, http=http)
    seed = Token(minted["access_token"], minted["refresh_token"])
    return await endpoint.refresh(seed), endpoint


async def bench_storm() -> None:
    # The daemon shares one HTTP client (and its connection pool) across refreshes; so does this.
    async with FixtureAuthServer(access_token_lifetime=3600) as auth, httpx.AsyncClient() as http:
        token, endpoint = await _minted(auth, 10.0, http)
        expired = dataclasses.replace(token, expires_at=time.time() - 1)
        source = MonitoredTokenSource(expired, endpoint.refresh, _NullSink(), name="storm")
        async with source:
            auth.reset_counters()
            latencies: list[float] = []

            async def caller() -> None:
                t0 = time.perf_counter()
                await source.token()
                latencies.append(time.perf_counter() - t0)

            await asyncio.gather(*(caller() for _ in range(1000)))
            requests = auth.counters.by_grant["refresh_token"]
    print("refresh storm: 1000 concurrent callers at expiry, real fixture AS")
    print(f"  token requests : {requests}   (target 1)")
    print(f"  latency p50    : {_pct(latencies, 0.5) * 1000:7.2f} ms")
    print(f"  latency p99    : {_pct(latencies, 0.99) * 1000:7.2f} ms")


async def bench_fail_fast() -> None:
    async with FixtureAuthServer(access_token_lifetime=3600) as auth:
        token, endpoint = await _minted(auth, 2.0)
        cfg = RetryConfig(initial_retry_interval=0.01, max_retry_interval=0.02, max_tries=1, max_elapsed=1)
        expired = dataclasses.replace(token, expires_at=time.time() - 1)
        await auth.set_fault("waf_html_403")
        source = MonitoredTokenSource(expired, endpoint.refresh, _NullSink(), config=cfg, name="ff")
        async with source:
            while source.state is not AuthState.RETRYING:
                try:
                    await source.token()
                except AuthRetryingError:
                    await asyncio.sleep(0.01)
            before = auth.counters.total
            samples = []
            for _ in range(2000):
                t0 = time.perf_counter()
                with contextlib.suppress(AuthRetryingError):
                    await source.token()
                samples.append(time.perf_counter() - t0)
            during = auth.counters.total - before
    print("fail fast: token() while auth_retrying without a valid token")
    print(
        f"  p50 {_pct(samples, 0.5) * 1e6:6.1f} us   p99 {_pct(samples, 0.99) * 1e6:6.1f} us   "
        f"max {max(samples) * 1e3:5.2f} ms   (target < 5 ms)   token requests meanwhile: {during}"
    )


_PROBE_SEES = {
    "refused": "unreachable",
    "waf_html_403": "http 403 text/html",
    "server_error_500": "http 500 text/plain",
    "rate_limited_429": "http 429 text/plain",
    "hang": "timeout",
}


class _OutageEndpoint:
    """A token endpoint in virtual time: rotates tokens, fails while ``down`` as ``kind`` would."""

    def __init__(self, clock: VirtualClock, kind: str, lifetime: float, latency: float = 0.05) -> None:
        self.clock, self.kind, self.lifetime, self.latency = clock, kind, lifetime, latency
        self.down = False
        self.attempts: list[float] = []
        self._n = 0

    def issue(self) -> Token:
        self._n += 1
        now = self.clock.wall()
        return Token(f"at{self._n:08d}", f"rt{self._n:08d}", expires_at=now + self.lifetime, issued_at=now)

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token:
        self.attempts.append(self.clock.monotonic())
        await self.clock.sleep(self.latency)
        if self.down:
            if self.kind == "hang":
                if progress is not None:
                    progress.sent = True
                await self.clock.sleep(RetryConfig().request_timeout)
                raise httpx.ReadTimeout("timed out")
            raise _failure(self.kind)
        return self.issue()


def _failure(kind: str) -> Exception:
    if kind == "refused":
        return httpx.ConnectError("[Errno 111] Connection refused")
    status, ctype, retry_after = {
        "waf_html_403": (403, "text/html", None),
        "server_error_500": (500, "text/plain", None),
        "rate_limited_429": (429, "text/plain", 30.0),
    }[kind]
    return TokenEndpointError(
        status, detail="with a non-OAuth body", content_type=ctype, retry_after=retry_after
    )


class _VirtualProbe:
    """What a GET of the token endpoint shows (``blind``: a fault on POST alone, invisible)."""

    def __init__(self, endpoint: _OutageEndpoint, *, blind: bool = False) -> None:
        self.endpoint, self.blind = endpoint, blind

    async def __call__(self) -> str:
        if self.endpoint.down and not self.blind:
            if self.endpoint.kind == "hang":
                await self.endpoint.clock.sleep(2.0)
            return _PROBE_SEES[self.endpoint.kind]
        return "http 405 text/plain"


@dataclasses.dataclass
class _Outcome:
    first_good: float  # s after the restore
    refused_after_good: int
    status_delay: float  # s from the first refused call to auth_retrying (negative: before)
    requests_in_outage: int


async def _virtual_outage(kind: str, lifetime: float, outage: float, *, blind: bool = False) -> _Outcome:
    """Default timings; ``outage`` seconds starting when the refresh falls due; a client
    calling once a second throughout."""
    clock = VirtualClock()
    endpoint = _OutageEndpoint(clock, kind, lifetime)
    reported: list[float] = []

    class _Sink:
        def report(self, status: WorkloadStatus, reason: str) -> None:
            if status is WorkloadStatus.AUTH_RETRYING and not reported:
                reported.append(clock.monotonic())

    source = MonitoredTokenSource(
        endpoint.issue(), endpoint, _Sink(), clock=clock, probe=_VirtualProbe(endpoint, blind=blind), name="v"
    )
    outcomes: list[tuple[float, bool]] = []

    async def one_call() -> None:
        try:
            await source.token()
            outcomes.append((clock.monotonic(), True))
        except TokenUnavailableError:
            outcomes.append((clock.monotonic(), False))

    calls: set[asyncio.Task[None]] = set()

    async def client_for(seconds: float) -> None:
        end = clock.monotonic() + seconds
        while clock.monotonic() < end:
            task = asyncio.ensure_future(one_call())  # never awaited inline: only we move time
            calls.add(task)
            task.add_done_callback(calls.discard)
            await clock.advance(1.0)

    async with source:
        await clock.settle()
        due = source._refresh_due(endpoint.issue()) - clock.wall()  # the due time of this lifetime
        await client_for(max(0.0, due - 0.5))
        endpoint.down = True
        start = clock.monotonic()
        await client_for(outage)
        during = sum(1 for t in endpoint.attempts if t >= start)
        endpoint.down = False
        restored = clock.monotonic()
        await client_for(120.0)
        good = [t for t, ok in outcomes if ok and t >= restored]
        first_good = good[0] - restored if good else float("inf")
        refused_after = sum(1 for t, ok in outcomes if not ok and good and t >= good[0])
        refused = [t for t, ok in outcomes if not ok]
        delay = (reported[0] - refused[0]) if refused and reported else float("nan")
    return _Outcome(first_good, refused_after, delay, during)


async def _real_refused_recovery() -> tuple[float, int]:
    """Real HTTP, default timings: a refused outage long enough to reach auth_retrying."""
    cfg = RetryConfig(initial_retry_interval=0.1, max_retry_interval=0.2, max_tries=2, max_elapsed=1.0)
    async with FixtureAuthServer(access_token_lifetime=3600) as auth:
        token, endpoint = await _minted(auth, cfg.request_timeout)
        expired = dataclasses.replace(token, expires_at=time.time() - 1)
        probe = http_probe(auth.token_endpoint)
        await auth.set_fault("refused")
        source = MonitoredTokenSource(
            expired, endpoint.refresh, _NullSink(), config=cfg, probe=probe, name="real"
        )
        async with source:
            while source.state is not AuthState.RETRYING:
                await asyncio.sleep(0.05)
            await asyncio.sleep(5)  # the probe sees the endpoint down for a while
            before = auth.counters.total
            await auth.set_fault("ok")
            restored = time.perf_counter()
            while source.state is not AuthState.FRESH:
                await asyncio.sleep(0.01)
            took = time.perf_counter() - restored
            return took, auth.counters.total - before


_TARGET = {
    "refused": 5.0,
    "waf_html_403": 10.0,
    "server_error_500": 10.0,
    "rate_limited_429": 10.0,
    "hang": 15.0,
}


async def bench_recovery(hours: float) -> None:
    print("recovery: default timings, a client calling once a second (virtual time, exact)")
    print("  first good = first served call after the restore; status = first refused call -> auth_retrying")
    header = (
        f"  {'token':<6}{'outage':<22}{'first good':>11}{'refused after':>15}{'status':>9}"
        f"{'req in 60s':>11}{f'req/h ({hours:g} h)':>14}   target"
    )
    for lifetime, label in ((15.0, "15 s"), (3600.0, "1 h")):
        print(header if lifetime == 15.0 else "")
        for kind, blind in [(k, False) for k in _TARGET] + [("waf_html_403", True)]:
            short = await _virtual_outage(kind, lifetime, 60.0, blind=blind)
            long = await _virtual_outage(kind, lifetime, hours * 3600.0, blind=blind)
            name = kind + (" (POST only)" if blind else "")
            status = "-" if math.isnan(short.status_delay) else f"{short.status_delay:+.1f}s"
            target = (
                f"<= {_TARGET[kind]:g} s, 0 after, <= +1 s, <= 60/h"
                if lifetime == 15.0
                else "no refused call (outage < token life)"
            )
            print(
                f"  {label:<6}{name:<22}{short.first_good:>10.1f}s{short.refused_after_good:>15}{status:>9}"
                f"{short.requests_in_outage:>11}{long.requests_in_outage / hours:>14.1f}   {target}"
            )
    took, requests = await _real_refused_recovery()
    print(
        f"  real HTTP, refused, default probe interval: restore -> running in {took:.2f} s "
        f"with {requests} token request(s) (target <= 5 s)"
    )


async def main() -> None:
    logging.disable(logging.WARNING)  # the monitor's own warnings would drown the tables
    parser = argparse.ArgumentParser()
    parser.add_argument("--outage-hours", type=float, default=1.0)
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args()
    await bench_hot_path()
    await bench_storm()
    await bench_fail_fast()
    if not args.skip_recovery:
        await bench_recovery(args.outage_hours)


if __name__ == "__main__":
    asyncio.run(main())
