"""The team gateway for real: redis-server, replica processes of the daemon, the fixture AS.

What issue 10 asks of it, each against real parts: one refresh per rotation across 3
replicas under 600 concurrent clients; a lease holder killed with SIGKILL mid-refresh
50 times without a spent token ever reaching the server; Redis stopped and restarted
empty without a lost login; a caller without credentials refused before any upstream
traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from mcpkeeper.testing import FixtureAuthServer
from tests.integration.daemon_support import FAST_TIMINGS, wait_for
from tests.integration.gateway_support import (
    API_KEY,
    RedisServer,
    Replica,
    Upstream,
    call,
    seed,
    write_gateway_files,
)

pytestmark = [pytest.mark.integration, pytest.mark.gateway]


async def _replicas(
    tmp_path: Path, redis: RedisServer, names: list[str], env: dict[str, str], n: int = 3
) -> list[Replica]:
    files = write_gateway_files(tmp_path / "gateway", names)
    replicas = [Replica(tmp_path / f"replica{i}", redis.url, files, env) for i in range(n)]
    for replica in replicas:
        replica.spawn()
    for replica in replicas:
        for name in names:
            await replica.wait_serving(name)
    return replicas


def _stop(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.terminate()


async def test_a_caller_without_valid_credentials_gets_401_and_nothing_goes_upstream(tmp_path: Path) -> None:
    redis = await RedisServer(tmp_path / "redis").start()
    try:
        async with FixtureAuthServer() as auth, Upstream(auth) as upstream:
            await seed(redis.url, auth, upstream, ["notes"])
            replicas = await _replicas(tmp_path, redis, ["notes"], FAST_TIMINGS, n=1)
            try:
                base = replicas[0].base
                before = upstream.requests
                for key in (None, "wrong-key-0123456789abcdef", "x"):
                    response = await call(base, "notes", key=key)
                    assert response.status_code == 401, response.text
                    assert response.headers["www-authenticate"].startswith("Bearer")
                async with httpx.AsyncClient() as http:
                    basic = await http.post(
                        f"{base}/notes/mcp", json={}, headers={"authorization": "Basic eDp5"}
                    )
                    unknown = await http.post(f"{base}/nope/mcp", json={})
                assert basic.status_code == 401 and unknown.status_code == 401
                assert upstream.requests == before, "a refused caller caused upstream traffic"
                # Authenticated but not on the allow-list: 403, still nothing upstream.
                forbidden = await call(base, "notes", key="bob-key-0123456789abcdef0")
                assert forbidden.status_code == 403
                assert upstream.requests == before
                ok = await call(base, "notes", key=API_KEY)
                assert ok.status_code == 200 and upstream.requests == before + 1
                async with httpx.AsyncClient() as http:
                    assert (await http.get(f"{base}/healthz")).status_code == 200
            finally:
                _stop(replicas)
    finally:
        redis.stop()


async def test_three_replicas_and_600_concurrent_clients_make_one_refresh_per_rotation(
    tmp_path: Path,
) -> None:
    # Refresh due at 60 % of 30 s (18 s): replicas start within that, then the load runs
    # across it; the old token is still served until 27 s, time enough for the rotation
    # even with 600 clients saturating the 3 replicas on a 2-core machine.
    lifetime = 30.0
    env = {**FAST_TIMINGS, "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "2s", "MCPKEEPER_TOKEN_REFRESH_AHEAD": "0.6"}
    redis = await RedisServer(tmp_path / "redis").start()
    try:
        async with FixtureAuthServer(access_token_lifetime=lifetime) as auth, Upstream(auth) as upstream:
            await seed(redis.url, auth, upstream, ["notes"])
            seeded = time.monotonic()
            replicas = await _replicas(tmp_path, redis, ["notes"], env)
            try:
                refreshes_before = auth.counters.by_grant["refresh_token"]
                failures: list[str] = []
                calls = 0
                assert refreshes_before == 0
                assert time.monotonic() < seeded + 15.0, "replicas took too long to start for this test"
                await asyncio.sleep(
                    seeded + 15.0 - time.monotonic()
                )  # the load starts 3 s before the refresh
                deadline = seeded + lifetime + 4.0
                refreshed_at: list[float] = []

                def running() -> bool:
                    now = time.monotonic()
                    if not refreshed_at and auth.counters.by_grant["refresh_token"] > refreshes_before:
                        refreshed_at.append(now)
                    # Across the rotation: until 2 s after the refresh (or the bound).
                    return now < deadline and (not refreshed_at or now < refreshed_at[0] + 2.0)

                async def client(base: str, http: httpx.AsyncClient) -> None:
                    nonlocal calls
                    while running():
                        try:
                            response = await call(base, "notes", http=http)
                        except httpx.HTTPError as exc:
                            failures.append(type(exc).__name__)
                            continue
                        calls += 1
                        if response.status_code != 200:
                            failures.append(f"{response.status_code} {response.text[:300]}")

                limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
                clients = [httpx.AsyncClient(timeout=30.0, limits=limits) for _ in replicas]
                try:
                    await asyncio.gather(
                        *(
                            client(r.base, http)
                            for r, http in zip(replicas, clients, strict=True)
                            for _ in range(200)
                        )
                    )
                finally:
                    for http in clients:
                        await http.aclose()
                assert refreshed_at, "no refresh happened while the clients ran"
                refreshes = auth.counters.by_grant["refresh_token"] - refreshes_before
                assert failures == [], f"{len(failures)} failed calls of {calls}: {failures[:5]}"
                assert refreshes == 1, f"{refreshes} refresh requests for one rotation across 3 replicas"
                assert auth.counters.spent_token_reuse == 0
                assert calls > 600
            finally:
                _stop(replicas)
    finally:
        redis.stop()


class _SlowTokenEndpoint:
    """Delays token requests before and after the server handles them, so that a kill can
    land before the rotation (request in flight), or after it (response in flight)."""

    def __init__(self, auth: FixtureAuthServer, rng: random.Random) -> None:
        self._app = auth.app
        self._rng = rng

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http" or scope["path"] != "/token" or scope["method"] != "POST":
            return await self._app(scope, receive, send)
        await asyncio.sleep(self._rng.uniform(0.0, 0.06))
        delay = self._rng.uniform(0.0, 0.06)

        async def late_send(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        return await self._app(scope, receive, late_send)


@pytest.mark.timeout(240)
async def test_killing_the_lease_holder_mid_refresh_50_times_spends_no_token_twice(tmp_path: Path) -> None:
    """SIGKILL of whichever replica holds a lease, at a random moment of its refresh.

    The fixture AS has strict rotation plus the reuse grace (a spent token is honoured until
    the token it was rotated to is used: what Okta, Auth0 and Keycloak offer), and the
    replicas are told of it (``MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE``): that is what lets the
    next holder send again a token whose response died with its holder. A token presented
    after the one it was rotated to was used (real reuse) is counted in spent_token_reuse.
    """
    rng = random.Random(10)
    names = ["a", "b", "c"]
    env = {
        **FAST_TIMINGS,
        "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "500ms",
        "MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE": "60s",
        "MCPKEEPER_STORE_LEASE_TTL": "1s",
        "MCPKEEPER_STORE_POLL_INTERVAL": "500ms",
    }
    redis = await RedisServer(tmp_path / "redis").start()
    try:
        async with (
            FixtureAuthServer(access_token_lifetime=3.0, refresh_reuse_grace=True) as auth,
            Upstream(auth) as upstream,
        ):
            from mcpkeeper.testing._serve import ServedApp

            slow = ServedApp(_SlowTokenEndpoint(auth, rng), lifespan="off")
            await slow.start_listening()
            auth.public_url = slow.url  # token requests go through the delay
            await seed(redis.url, auth, upstream, names)
            replicas = await _replicas(tmp_path, redis, names, env)
            watcher = Redis.from_url(redis.url, decode_responses=True)
            kills = 0
            deadline = time.monotonic() + 150.0
            try:
                while kills < 50 and time.monotonic() < deadline:
                    holder = await _lease_holder(watcher, names, deadline)
                    if holder is None:
                        break
                    name, value = holder
                    pid = int(value.split(" ", 1)[1].split(":")[1])
                    victim = next((r for r in replicas if r.process is not None and r.pid == pid), None)
                    if victim is None:
                        continue
                    await asyncio.sleep(rng.uniform(0.0, 0.12))
                    if await watcher.get(f"mcpkeeper:lease:{name}") != value:
                        continue  # the refresh ended before the kill: not a kill mid-refresh
                    victim.kill()
                    kills += 1
                    victim.spawn()  # a new replica takes its place (a Deployment would do the same)
                assert kills >= 50, f"only {kills} kills mid-refresh within the time bound"
                for replica in replicas:
                    for name in names:
                        await replica.wait_serving(name, timeout=40.0)
                assert auth.counters.spent_token_reuse == 0, auth.counters.to_dict()
                # Every grant alive: a refresh still works for each (the next rotation happens).
                before = auth.counters.by_outcome["ok"]
                await wait_for(
                    lambda: _true(auth.counters.by_outcome["ok"] >= before + len(names)), timeout=15.0
                )
                for name in names:
                    assert (await call(replicas[0].base, name)).status_code == 200
                assert auth.counters.spent_token_reuse == 0
                outcomes = dict(auth.counters.by_outcome)
                print(f"kills={kills} grace_reuse={auth.counters.grace_reuse} outcomes={outcomes}")
            finally:
                await watcher.aclose()
                _stop(replicas)
                await slow.stop_listening()
    finally:
        redis.stop()


async def _true(value: bool) -> bool:
    return value


async def _lease_holder(watcher: Redis, names: list[str], deadline: float) -> tuple[str, str] | None:
    while time.monotonic() < deadline:
        for name in names:
            value = await watcher.get(f"mcpkeeper:lease:{name}")
            if value is not None:
                return name, value
        await asyncio.sleep(0.002)
    return None


async def test_redis_stopped_then_restarted_empty_loses_no_login(tmp_path: Path) -> None:
    """Redis down longer than a token lives, then back *without its data* (no persistence).

    The issue's figure is 60 s; the test uses 8 s (tokens of 4 s run out meanwhile) and
    bench/bench_gateway.py does the full 60 s.
    """
    env = {**FAST_TIMINGS, "MCPKEEPER_TOKEN_REFRESH_MIN_LEAD": "1s", "MCPKEEPER_STORE_POLL_INTERVAL": "500ms"}
    redis = await RedisServer(tmp_path / "redis").start()
    try:
        async with FixtureAuthServer(access_token_lifetime=4.0) as auth, Upstream(auth) as upstream:
            await seed(redis.url, auth, upstream, ["notes"])
            replicas = await _replicas(tmp_path, redis, ["notes"], env)
            try:
                redis.stop()
                # Valid cached tokens keep serving; then they run out and the status says why.
                await wait_for(
                    lambda: _all_retrying(replicas), timeout=12.0, what="auth_retrying on every replica"
                )
                response = await call(replicas[0].base, "notes")
                assert response.status_code == 503, response.text
                await asyncio.sleep(max(0.0, 8.0 - 4.0))
                await redis.start()
                back = time.monotonic()

                async def served() -> bool:
                    codes = [(await call(r.base, "notes", timeout=3.0)).status_code for r in replicas]
                    return codes == [200] * len(replicas)

                await wait_for(served, timeout=10.0, interval=0.1, what="every replica serving again")
                took = time.monotonic() - back
                assert took <= 5.0, f"first good call {took:.1f}s after Redis returned"
                assert auth.counters.spent_token_reuse == 0
                # No lost login: the replicas re-published it, and it refreshes.
                watcher = Redis.from_url(redis.url, decode_responses=True)
                try:
                    await wait_for(lambda: _exists(watcher, "mcpkeeper:login:notes"), timeout=5.0)
                    await wait_for(lambda: _exists(watcher, "mcpkeeper:config:notes"), timeout=5.0)
                finally:
                    await watcher.aclose()
                await wait_for(
                    lambda: _all_status(replicas, "running"), timeout=10.0, what="running everywhere"
                )
            finally:
                _stop(replicas)
    finally:
        redis.stop()


async def _exists(redis: Redis, key: str) -> bool:
    return bool(await redis.exists(key))


async def _all_retrying(replicas: list[Replica]) -> bool:
    return await _all_status(replicas, "auth_retrying", reason="state store unreachable")


async def _all_status(replicas: list[Replica], status: str, reason: str = "") -> bool:
    from mcpkeeper.api.client import AsyncDaemonClient

    for replica in replicas:
        client = AsyncDaemonClient(replica.home, timeout=3.0)
        try:
            record = await client.get_workload("notes")
        finally:
            await client.aclose()
        if record["status"] != status or reason not in str(record.get("status_context", "")):
            return False
    return True
