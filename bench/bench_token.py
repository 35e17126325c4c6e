"""Token monitor benchmarks: hot path, refresh storm, recovery after outages.

    .venv/bin/python bench/bench_token.py [--scale 0.005] [--outage-hours 1]

Recovery runs against the real fixture authorization server over loopback HTTP with
every monitor timing multiplied by ``--scale`` (so one hour of outage takes 18 s at the
default), and reports times and rates scaled back to the default timings, next to the
reference design (a fixed 10-minute tick: recovery 0-600 s after restore, 6 requests/h).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import time

from mcpkeeper.auth import (
    AuthRetryingError,
    AuthState,
    ClientCredentials,
    MonitoredTokenSource,
    RetryConfig,
    Token,
    TokenEndpoint,
)
from mcpkeeper.auth.probe import tcp_probe
from mcpkeeper.state import WorkloadStatus
from mcpkeeper.testing import FixtureAuthServer


class _NullSink:
    def report(self, status: WorkloadStatus, reason: str) -> None:
        pass


async def _unused_refresher(token: Token) -> Token:
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


async def _minted(auth: FixtureAuthServer, timeout: float) -> tuple[Token, TokenEndpoint]:
    minted = auth.mint("bench")
    endpoint = TokenEndpoint(auth.token_endpoint, ClientCredentials("bench"), timeout=timeout)
    seed = Token(minted["access_token"], minted["refresh_token"])
    return await endpoint.refresh(seed), endpoint


async def bench_storm() -> None:
    async with FixtureAuthServer(access_token_lifetime=3600) as auth:
        token, endpoint = await _minted(auth, 10.0)
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
    print(f"  p50 {_pct(samples, 0.5) * 1e6:6.1f} us   p99 {_pct(samples, 0.99) * 1e6:6.1f} us   "
          f"max {max(samples) * 1e3:5.2f} ms   (target < 5 ms)   token requests meanwhile: {during}")


def _scaled(scale: float) -> RetryConfig:
    base = RetryConfig()
    changes = {
        f.name: getattr(base, f.name) * scale
        for f in dataclasses.fields(base)
        if f.name not in ("max_tries", "refresh_ahead", "jitter")
    }
    return dataclasses.replace(base, **changes)


@dataclasses.dataclass
class RecoveryResult:
    fault: str
    demand: bool
    recovery_s: float
    requests_per_hour: float


async def _recovery(fault: str, demand: bool, scale: float, outage_hours: float) -> RecoveryResult:
    cfg = _scaled(scale)
    outage = outage_hours * 3600 * scale
    async with FixtureAuthServer(access_token_lifetime=3600 * scale) as auth:
        token, endpoint = await _minted(auth, cfg.request_timeout)
        probe = tcp_probe(auth.token_endpoint, timeout=max(0.05, 2 * scale))
        source = MonitoredTokenSource(
            token, endpoint.refresh, _NullSink(), config=cfg, probe=probe, name="rec"
        )
        async with source:
            await auth.set_fault(fault)
            served = asyncio.Event()
            stop = asyncio.Event()

            async def client() -> None:
                # A client sending one request a second (scaled), as an agent in use does.
                while not stop.is_set():
                    try:
                        await source.token()
                        if auth.fault == "ok":
                            served.set()
                    except AuthRetryingError:
                        pass
                    await asyncio.sleep(scale)

            task = asyncio.create_task(client()) if demand else None
            start_requests = auth.counters.total
            await asyncio.sleep(outage)
            outage_requests = auth.counters.total - start_requests
            assert source.state is AuthState.RETRYING, source.snapshot()
            await auth.set_fault("ok")
            restored = time.perf_counter()
            if demand:
                await asyncio.wait_for(served.wait(), timeout=700 * scale + 5)
            else:
                while source.state is not AuthState.FRESH:
                    if time.perf_counter() - restored > 700 * scale + 5:
                        raise TimeoutError("no recovery")
                    await asyncio.sleep(scale / 10)
            took = (time.perf_counter() - restored) / scale
            stop.set()
            if task is not None:
                await task
    return RecoveryResult(fault, demand, took, outage_requests / outage_hours)


async def bench_recovery(scale: float, outage_hours: float) -> None:
    print(
        f"recovery: real fixture AS, timings x{scale} (figures scaled back to defaults), "
        f"{outage_hours:g} h outage"
    )
    print(f"  {'outage':<14}{'load':<9}{'restore->served':>17}{'requests/h':>12}   reference (10 min tick)")
    for fault in ("refused", "waf_html_403"):
        for demand in (False, True):
            r = await _recovery(fault, demand, scale, outage_hours)
            target = "<= 5 s" if fault == "refused" else ("<= 60 s" if demand else "next tick")
            print(
                f"  {fault:<14}{'demand' if demand else 'idle':<9}{r.recovery_s:>14.1f} s "
                f"{r.requests_per_hour:>11.1f}   0-600 s, 6/h   (target {target}; <= 60 req/h under demand)"
            )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.005)
    parser.add_argument("--outage-hours", type=float, default=1.0)
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args()
    await bench_hot_path()
    await bench_storm()
    await bench_fail_fast()
    if not args.skip_recovery:
        await bench_recovery(args.scale, args.outage_hours)


if __name__ == "__main__":
    asyncio.run(main())
