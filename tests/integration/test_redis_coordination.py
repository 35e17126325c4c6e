"""The lease, the fencing token and the dead-holder rule, against a real redis-server.

In one process (several refreshers standing for several replicas), so each rule can be
driven to its edge: the fence never goes back (not even after Redis lost its data), a
commit with an older fence is refused, and a refresh token that a dead holder may have
spent is never sent again unless that is safe.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcpkeeper.auth.cluster_refresher import ClusterRefresher
from mcpkeeper.auth.credentials import StoredLogin
from mcpkeeper.auth.errors import PeerRefreshPendingError, RefreshInDoubtError, classify
from mcpkeeper.state.redis_lease import GrantLeases, Lease, token_digest
from mcpkeeper.state.redis_store import RedisStore
from mcpkeeper.testing import FixtureAuthServer
from tests.integration.daemon_support import wait_for
from tests.integration.gateway_support import RedisServer, Upstream, ring, seed

pytestmark = [pytest.mark.integration, pytest.mark.gateway]


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = await RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


async def _store(url: str) -> RedisStore:
    store = RedisStore(url, ring(), poll_interval=0.2)
    await store.start()
    return store


async def test_one_holder_at_a_time_and_the_fence_only_grows_even_after_redis_lost_its_data(
    redis: RedisServer,
) -> None:
    a, b = await _store(redis.url), await _store(redis.url)
    try:
        leases_a, leases_b = GrantLeases(a, ttl=0.3), GrantLeases(b, ttl=0.3)
        first = await leases_a.acquire("g")
        assert isinstance(first, Lease)
        held = await leases_b.acquire("g")
        assert not isinstance(held, Lease) and 0 < held <= 0.3
        assert await leases_a.commit("g", first.fence, '{"v": 1}', "", rotates=True)
        await first.release()
        second = await leases_b.acquire("g")
        assert isinstance(second, Lease) and second.fence > first.fence
        # A late holder with the older fence cannot overwrite the newer generation.
        assert await leases_b.commit("g", second.fence, '{"v": 2}', "", rotates=True)
        assert not await leases_a.commit("g", first.fence, '{"v": "stale"}', "", rotates=True)
        await second.release()
        # Redis restarted empty: the login comes back (re-published) and the fence stays ahead of it.
        await a.redis.flushall()
        await b.refresh_login("g")  # b holds generation second.fence: it re-publishes it
        third = await leases_a.acquire("g")
        assert isinstance(third, Lease) and third.fence > second.fence
        await third.release()
    finally:
        await a.aclose()
        await b.aclose()


async def test_an_expired_lease_passes_to_the_next_holder(redis: RedisServer) -> None:
    store = await _store(redis.url)
    try:
        leases = GrantLeases(store, ttl=0.2)
        dead = await leases.acquire("g")
        assert isinstance(dead, Lease)  # its holder "dies": never released, never renewed

        async def free() -> bool:
            return isinstance(await leases.acquire("g"), Lease)

        await wait_for(free, timeout=2.0, interval=0.02, what="the lease to expire")
    finally:
        await store.aclose()


async def _refresher_setup(redis: RedisServer, auth: FixtureAuthServer, upstream: Upstream) -> RedisStore:
    await seed(redis.url, auth, upstream, ["g"])
    store = await _store(redis.url)
    await wait_for(lambda: _has(store, "g"), timeout=3.0)
    return store


async def _has(store: RedisStore, name: str) -> bool:
    return name in store.logins


def _stored(store: RedisStore) -> StoredLogin:
    return StoredLogin.from_dict(json.loads(store.logins["g"].text))


async def _orphan(store: RedisStore, leases: GrantLeases) -> None:
    """What a holder that died after announcing its request leaves behind."""
    lease = await leases.acquire("g")
    assert isinstance(lease, Lease)
    token = _stored(store).token
    assert token is not None and token.refresh_token is not None
    assert await leases.mark_inflight(lease, token_digest(token.refresh_token))
    await store.redis.delete(store.key("lease", "g"))  # its TTL ran out


async def test_a_token_a_dead_holder_may_have_spent_is_not_sent_again_under_strict_rotation(
    redis: RedisServer,
) -> None:
    async with FixtureAuthServer() as auth, Upstream(auth) as upstream:
        store = await _refresher_setup(redis, auth, upstream)
        try:
            leases = GrantLeases(store, ttl=0.1)
            await _orphan(store, leases)
            refresher = ClusterRefresher("g", store, leases, timeout=0.2)
            token = _stored(store).token
            assert token is not None
            sent_before = auth.counters.by_grant["refresh_token"]
            with pytest.raises(PeerRefreshPendingError):
                await refresher(token)  # first: wait for a holder that may only be cut off
            await asyncio.sleep(0.45)  # past request timeout + two lease TTLs
            with pytest.raises(RefreshInDoubtError) as verdict:
                await refresher(token)
            assert classify(verdict.value).permanent
            assert auth.counters.by_grant["refresh_token"] == sent_before, "the doubtful token was sent"
        finally:
            await store.aclose()


async def test_the_reuse_grace_or_a_non_rotating_server_makes_sending_again_safe(redis: RedisServer) -> None:
    async with FixtureAuthServer(refresh_reuse_grace=True) as auth, Upstream(auth) as upstream:
        store = await _refresher_setup(redis, auth, upstream)
        try:
            leases = GrantLeases(store, ttl=0.1)
            await _orphan(store, leases)
            token = _stored(store).token
            assert token is not None
            refresher = ClusterRefresher("g", store, leases, timeout=2.0, reuse_grace=30.0)
            fresh = await refresher(token)
            assert fresh.refresh_token != token.refresh_token
            assert auth.counters.spent_token_reuse == 0
            # Another replica asked to refresh the same old token adopts the result: no request.
            sent = auth.counters.by_grant["refresh_token"]
            other = ClusterRefresher("g", store, GrantLeases(store, ttl=0.1), timeout=2.0)
            assert (await other(token)).access_token == fresh.access_token
            assert auth.counters.by_grant["refresh_token"] == sent
            assert await store.redis.exists(store.key("inflight", "g")) == 0
        finally:
            await store.aclose()


async def test_concurrent_refreshers_spend_the_token_once(redis: RedisServer) -> None:
    async with FixtureAuthServer() as auth, Upstream(auth) as upstream:
        store = await _refresher_setup(redis, auth, upstream)
        others = [await _store(redis.url) for _ in range(4)]
        try:
            token = _stored(store).token
            assert token is not None
            refreshers = [
                ClusterRefresher("g", s, GrantLeases(s, ttl=2.0), timeout=5.0) for s in [store, *others]
            ]
            results = await asyncio.gather(*(r(token) for r in refreshers))
            assert len({t.access_token for t in results}) == 1
            assert auth.counters.by_grant["refresh_token"] == 1
            assert auth.counters.spent_token_reuse == 0
        finally:
            for s in [store, *others]:
                await s.aclose()


async def test_replicas_that_waited_on_a_failed_attempt_take_its_verdict_without_a_request(
    redis: RedisServer,
) -> None:
    async with FixtureAuthServer() as auth, Upstream(auth) as upstream:
        store = await _refresher_setup(redis, auth, upstream)
        other = await _store(redis.url)
        try:
            token = _stored(store).token
            assert token is not None
            await auth.set_fault("hang")  # the holder's request waits at the server
            holder = ClusterRefresher("g", store, GrantLeases(store, ttl=2.0), timeout=5.0)
            follower = ClusterRefresher("g", other, GrantLeases(other, ttl=2.0), timeout=5.0)
            first = asyncio.ensure_future(holder(token))
            await wait_for(lambda: _true(auth.counters.total == 1), timeout=3.0, what="the holder's request")
            second = asyncio.ensure_future(follower(token))
            await asyncio.sleep(0.3)  # the follower is waiting on the lease now
            await auth.set_fault("ok")  # the hung request is answered 503, never processed
            results = await asyncio.gather(first, second, return_exceptions=True)
            assert all(isinstance(r, Exception) for r in results), results
            verdicts = [classify(r) for r in results if isinstance(r, Exception)]
            assert verdicts[0].kind == verdicts[1].kind and verdicts[0].reason == verdicts[1].reason
            assert not verdicts[1].permanent
            assert auth.counters.total == 1, "the follower sent a request of its own"
        finally:
            await store.aclose()
            await other.aclose()


async def _true(value: bool) -> bool:
    return value
