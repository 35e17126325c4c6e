"""The team gateway's numbers (issue 10): refreshes per rotation, added latency, failover, outage.

Real parts throughout: ``redis-server`` on loopback (no persistence), replica processes
of ``mcpkeeper serve --store redis://… --listen``, the fixture authorization server with
strict rotation, and a light protected upstream (one token check per request).

    .venv/bin/python bench/bench_gateway.py [--rotations 3] [--calls 2000] [--failovers 3] [--outage 60]

1. **Refresh requests per rotation** across 3 replicas (target 1): tokens of 6 s, a
   light load on every replica, ``--rotations`` rotations.
2. **Added latency** at p50/p99 of a gateway replica with the Redis store vs the same
   gateway with the file store, each against the upstream directly (target: Redis ≤ 0.5 ms
   more at p50: the token is cached in process, Redis is off the hot path).
3. **Failover** after the lease holder dies mid-refresh (SIGKILL while its token request
   is held by the server for 3 s, before the server handles it): time from the kill to the
   next successful refresh by
   another replica (target ≤ lease TTL + 1 s; default TTL 5 s). The AS and the replicas
   have the reuse grace (that is what makes taking over a possibly spent token safe).
4. **Redis outage** of ``--outage`` seconds (60 by default) with tokens that run out
   meanwhile, then Redis back *empty*: seconds from its return to the first good call
   through every replica (target ≤ 5 s), and whether the login survived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.testing import FixtureAuthServer
from mcpkeeper.testing._serve import ServedApp
from tests.integration.daemon_support import FAST_TIMINGS, store_login, wait_for
from tests.integration.gateway_support import (
    RedisServer,
    Replica,
    Upstream,
    call,
    seed,
    write_gateway_files,
)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _start(
    tmp: Path, redis_url: str | None, names: list[str], env: dict[str, str], n: int
) -> list[Replica]:
    files = write_gateway_files(tmp / "gateway", names)
    replicas = [Replica(tmp / f"replica{i}", redis_url or "file", files, env) for i in range(n)]
    for replica in replicas:
        replica.spawn()
    for replica in replicas:
        for name in names:
            await replica.wait_serving(name, timeout=60.0)
    return replicas


def _stop(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.terminate()


async def bench_rotations(tmp: Path, rotations: int) -> dict[str, Any]:
    env = {**FAST_TIMINGS, "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s"}
    redis = await RedisServer(tmp / "redis").start()
    try:
        async with FixtureAuthServer(access_token_lifetime=6.0) as auth, Upstream(auth) as upstream:
            await seed(redis.url, auth, upstream, ["notes"])
            replicas = await _start(tmp, redis.url, ["notes"], env, 3)
            try:
                start_requests = auth.counters.by_grant["refresh_token"]
                start_ok = auth.counters.by_outcome["ok"]
                failures = calls = 0
                deadline = time.monotonic() + 6.0 * rotations + 20.0
                async with httpx.AsyncClient(timeout=10.0) as http:
                    while (
                        auth.counters.by_outcome["ok"] - start_ok < rotations and time.monotonic() < deadline
                    ):
                        for replica in replicas:
                            response = await call(replica.base, "notes", http=http)
                            calls += 1
                            failures += response.status_code != 200
                        await asyncio.sleep(0.05)
                done = auth.counters.by_outcome["ok"] - start_ok
                requests = auth.counters.by_grant["refresh_token"] - start_requests
                return {
                    "rotations": done,
                    "refresh_requests": requests,
                    "requests_per_rotation": requests / done if done else float("nan"),
                    "spent_token_reuse": auth.counters.spent_token_reuse,
                    "calls": calls,
                    "failed_calls": failures,
                }
            finally:
                _stop(replicas)
    finally:
        redis.stop()


async def _latencies(base: str | None, upstream: Upstream, calls: int) -> list[float]:
    samples: list[float] = []
    async with httpx.AsyncClient(timeout=10.0) as http:
        for i in range(calls + 50):
            started = time.perf_counter()
            if base is None:
                response = await http.post(
                    upstream.url, json={}, headers={"authorization": f"Bearer {upstream_token}"}
                )
            else:
                response = await call(base, "notes", http=http)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            if i >= 50:
                samples.append(elapsed * 1000.0)
    return samples


upstream_token = ""


async def bench_latency(tmp: Path, calls: int) -> dict[str, Any]:
    global upstream_token
    env = dict(FAST_TIMINGS)
    redis = await RedisServer(tmp / "redis-lat").start()
    results: dict[str, Any] = {}
    try:
        async with FixtureAuthServer(access_token_lifetime=3600.0) as auth, Upstream(auth) as upstream:
            upstream_token = auth.mint("bench-direct", resource=upstream.url)["access_token"]
            await seed(redis.url, auth, upstream, ["notes"])
            redis_gw = await _start(tmp / "redis-gw", redis.url, ["notes"], env, 1)
            file_home = tmp / "file-gw" / "replica0"
            store_login(file_home, "notes", auth, _as_mcp(upstream))
            WorkloadStore(file_home).put(WorkloadConfig(name="notes", remote_url=upstream.url, port=_free()))
            file_gw = await _start(tmp / "file-gw", None, ["notes"], env, 1)
            try:
                # Interleaved rounds, so that a noisy neighbour hurts all three alike.
                direct: list[float] = []
                via_redis: list[float] = []
                via_file: list[float] = []
                rounds = 4
                for _ in range(rounds):
                    direct += await _latencies(None, upstream, calls // rounds)
                    via_redis += await _latencies(redis_gw[0].base, upstream, calls // rounds)
                    via_file += await _latencies(file_gw[0].base, upstream, calls // rounds)
                for label, values in (("direct", direct), ("redis", via_redis), ("file", via_file)):
                    results[label] = {"p50_ms": _pct(values, 0.5), "p99_ms": _pct(values, 0.99)}
                for label in ("redis", "file"):
                    results[label]["added_p50_ms"] = results[label]["p50_ms"] - results["direct"]["p50_ms"]
                    results[label]["added_p99_ms"] = results[label]["p99_ms"] - results["direct"]["p99_ms"]
                results["redis_minus_file_p50_ms"] = results["redis"]["p50_ms"] - results["file"]["p50_ms"]
                results["redis_minus_file_p99_ms"] = results["redis"]["p99_ms"] - results["file"]["p99_ms"]
                results["calls_each"] = len(direct)
            finally:
                _stop(redis_gw + file_gw)
    finally:
        redis.stop()
    return results


class _HeldTokenEndpoint:
    """Once armed, holds the next refresh request ``hold`` seconds before the server handles it.

    Only one: the monitor abandons a request that outlives ``caller_wait`` when a new one
    is safe (the reuse grace), so holding every request would hold every refresh forever.
    """

    def __init__(self, auth: FixtureAuthServer, hold: float) -> None:
        self._app = auth.app
        self.hold = hold
        self.armed = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.armed and scope["type"] == "http" and scope["path"] == "/token" and scope["method"] == "POST":
            self.armed = False
            await asyncio.sleep(self.hold)
        await self._app(scope, receive, send)


async def bench_failover(tmp: Path, failovers: int) -> dict[str, Any]:
    ttl = 5.0
    env = {
        **FAST_TIMINGS,
        "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s",
        "MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE": "60s",
        "MCPKEEPER_STORE_LEASE_TTL": f"{ttl:g}s",
    }
    from redis.asyncio import Redis

    redis = await RedisServer(tmp / "redis-fo").start()
    times: list[float] = []
    try:
        async with (
            FixtureAuthServer(access_token_lifetime=8.0, refresh_reuse_grace=True) as auth,
            Upstream(auth) as upstream,
        ):
            held = _HeldTokenEndpoint(auth, 3.0)
            front = ServedApp(held, lifespan="off")
            await front.start_listening()
            auth.public_url = front.url
            await seed(redis.url, auth, upstream, ["notes"])
            replicas = await _start(tmp / "fo", redis.url, ["notes"], env, 3)
            watcher = Redis.from_url(redis.url, decode_responses=True)
            try:
                for _ in range(failovers):
                    held.armed = True
                    holder = None
                    deadline = time.monotonic() + 30.0
                    while holder is None and time.monotonic() < deadline:
                        holder = await watcher.get("mcpkeeper:lease:notes")
                        await asyncio.sleep(0.005)
                    assert holder is not None, "no refresh started"
                    await asyncio.sleep(0.5)  # its request is now held by the server
                    pid = int(holder.split(" ", 1)[1].split(":")[1])
                    victim = next(r for r in replicas if r.process is not None and r.pid == pid)
                    ok_before = auth.counters.by_outcome["ok"]
                    victim.kill()
                    killed = time.monotonic()
                    await wait_for(
                        lambda before=ok_before: _true(auth.counters.by_outcome["ok"] > before),
                        timeout=30.0,
                        interval=0.01,
                    )
                    times.append(time.monotonic() - killed)
                    victim.spawn()
                    await victim.wait_serving("notes", timeout=60.0)
                return {
                    "lease_ttl_s": ttl,
                    "failover_s": times,
                    "max_failover_s": max(times),
                    "spent_token_reuse": auth.counters.spent_token_reuse,
                    "grace_reuse": auth.counters.grace_reuse,
                }
            finally:
                await watcher.aclose()
                _stop(replicas)
                await front.stop_listening()
    finally:
        redis.stop()


async def bench_outage(tmp: Path, outage: float) -> dict[str, Any]:
    env = {**FAST_TIMINGS, "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s", "MCPKEEPER_STORE_POLL_INTERVAL": "1s"}
    redis = await RedisServer(tmp / "redis-out").start()
    try:
        async with FixtureAuthServer(access_token_lifetime=10.0) as auth, Upstream(auth) as upstream:
            await seed(redis.url, auth, upstream, ["notes"])
            replicas = await _start(tmp / "out", redis.url, ["notes"], env, 3)
            try:
                redis.stop()
                down = time.monotonic()
                refused = 0
                while time.monotonic() - down < outage:
                    for replica in replicas:
                        response = await call(replica.base, "notes", timeout=3.0)
                        refused += response.status_code != 200
                    await asyncio.sleep(0.5)
                await redis.start()
                back = time.monotonic()

                async def served() -> bool:
                    codes = [(await call(r.base, "notes", timeout=3.0)).status_code for r in replicas]
                    return codes == [200] * len(replicas)

                await wait_for(served, timeout=60.0, interval=0.05)
                recovered = time.monotonic() - back
                from redis.asyncio import Redis

                watcher = Redis.from_url(redis.url, decode_responses=True)
                try:
                    await wait_for(lambda: _exists(watcher, "mcpkeeper:login:notes"), timeout=10.0)
                finally:
                    await watcher.aclose()
                return {
                    "outage_s": outage,
                    "calls_refused_during_outage": refused,
                    "first_good_call_after_return_s": recovered,
                    "login_survived": True,
                    "spent_token_reuse": auth.counters.spent_token_reuse,
                }
            finally:
                _stop(replicas)
    finally:
        redis.stop()


async def _exists(redis: Any, key: str) -> bool:
    return bool(await redis.exists(key))


async def _true(value: bool) -> bool:
    return value


def _free() -> int:
    from mcpkeeper.net import free_port

    return free_port()


class _as_mcp:
    def __init__(self, upstream: Upstream) -> None:
        self.url = upstream.url


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rotations", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--outage", type=float, default=60.0)
    args = parser.parse_args()
    random.seed(10)
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as directory:
        tmp = Path(directory)
        report = {
            "refreshes_per_rotation": await bench_rotations(tmp / "rot", args.rotations),
            "latency": await bench_latency(tmp / "lat", args.calls),
            "failover": await bench_failover(tmp / "fo", args.failovers),
            "redis_outage": await bench_outage(tmp / "out", args.outage),
        }
    rot, lat, fo, out = (report[k] for k in ("refreshes_per_rotation", "latency", "failover", "redis_outage"))
    print("bench_gateway (3 replicas, redis-server on loopback, fixture AS with strict rotation)")
    print(
        f"  refresh requests per rotation: {rot['requests_per_rotation']:.2f} (target 1; "
        f"{rot['refresh_requests']} requests / {rot['rotations']} rotations, "
        f"{rot['failed_calls']} failed calls, "
        f"spent reuse {rot['spent_token_reuse']})"
    )
    print(
        f"  {'':8} {'p50 ms':>8} {'p99 ms':>8} {'added p50':>10} {'added p99':>10}"
        f"   ({lat['calls_each']} calls each)"
    )
    print(f"  {'direct':8} {lat['direct']['p50_ms']:8.3f} {lat['direct']['p99_ms']:8.3f}")
    for label in ("file", "redis"):
        row = lat[label]
        print(
            f"  {label:8} {row['p50_ms']:8.3f} {row['p99_ms']:8.3f}"
            f" {row['added_p50_ms']:10.3f} {row['added_p99_ms']:10.3f}"
        )
    print(
        f"  redis - file: p50 {lat['redis_minus_file_p50_ms']:+.3f} ms,"
        f" p99 {lat['redis_minus_file_p99_ms']:+.3f} ms "
        "(target <= 0.5 ms at p50)"
    )
    print(
        f"  failover after the lease holder dies: {', '.join(f'{t:.2f}' for t in fo['failover_s'])} s "
        f"(max {fo['max_failover_s']:.2f} s; target <= TTL {fo['lease_ttl_s']:g} s + 1 s; "
        f"spent reuse {fo['spent_token_reuse']}, grace reuse {fo['grace_reuse']})"
    )
    print(
        f"  Redis down {out['outage_s']:g} s, back empty: first good call on every replica "
        f"{out['first_good_call_after_return_s']:.2f} s after (target <= 5 s); login survived: "
        f"{out['login_survived']}; spent reuse {out['spent_token_reuse']}"
    )
    print(json.dumps(report, default=str))


if __name__ == "__main__":
    asyncio.run(main())
