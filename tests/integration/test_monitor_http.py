"""The monitor against the real fixture authorization server, one test per fault mode.

Real time with shortened timings (the virtual-time unit tests cover the default ones):
the refresh goes over HTTP to 127.0.0.1, the fault is switched on the running server,
and every assertion waits on a condition with a bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from mcpkeeper.auth import (
    AuthRetryingError,
    AuthState,
    ClientCredentials,
    MonitoredTokenSource,
    RetryConfig,
    Token,
    TokenEndpoint,
    UnauthenticatedError,
)
from mcpkeeper.auth.probe import http_probe
from mcpkeeper.state import WorkloadStatus
from mcpkeeper.testing import FixtureAuthServer

from ..unit.monitor_fakes import RecordingSink
from ..waiting import eventually

R, A, U = WorkloadStatus.RUNNING, WorkloadStatus.AUTH_RETRYING, WorkloadStatus.UNAUTHENTICATED
SHORT = RetryConfig(
    initial_retry_interval=0.1,
    max_retry_interval=0.2,
    max_tries=2,
    max_elapsed=2.0,
    retrying_tick=30.0,  # long on purpose: recovery must come from the triggers, not the tick
    retrying_ceiling=3600.0,
    refresh_min_lead=0.5,
    probe_interval=0.2,
    demand_initial_interval=0.2,
    demand_max_interval=1.0,
    wake_check_interval=0.5,
    request_timeout=1.0,
    expiry_skew=0.2,
    caller_wait=2.0,
    jitter=0.0,
)


@asynccontextmanager
async def monitored(
    auth: FixtureAuthServer, *, config: RetryConfig = SHORT, lifetime: float = 1.0
) -> AsyncIterator[tuple[MonitoredTokenSource, RecordingSink]]:
    auth.access_token_lifetime = lifetime
    minted = auth.mint("cli")
    token = Token(
        access_token=minted["access_token"],
        refresh_token=minted["refresh_token"],
        expires_at=None,
        issued_at=None,
    )
    endpoint = TokenEndpoint(auth.token_endpoint, ClientCredentials("cli"), timeout=config.request_timeout)
    fresh = await endpoint.refresh(token)  # a token with a real expiry and issue time
    sink = RecordingSink()
    source = MonitoredTokenSource(
        fresh,
        endpoint.refresh,
        sink,
        config=config,
        probe=http_probe(auth.token_endpoint, timeout=0.5),
        name="it",
    )
    async with source:
        yield source, sink
    assert auth.counters.spent_token_reuse == 0


@pytest.fixture
async def auth() -> AsyncIterator[FixtureAuthServer]:
    async with FixtureAuthServer(access_token_lifetime=1.0) as server:
        yield server


def collapsed(sink: RecordingSink) -> list[WorkloadStatus]:
    """The statuses reported, a repeat (auth_retrying with a new reason) counted once."""
    seen = sink.statuses
    return [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] is not s]


async def _outage(source: MonitoredTokenSource, sink: RecordingSink) -> None:
    await eventually(lambda: source.state is AuthState.RETRYING, timeout=10)
    assert collapsed(sink) == [A]
    with pytest.raises(AuthRetryingError) as info:
        await source.token()
    assert info.value.retry_after is not None and info.value.retry_after >= 1


async def _demand_until_served(source: MonitoredTokenSource) -> float:
    """A client that retries now and then, as MCP clients do after a 503; returns the wait."""
    start = time.monotonic()
    for _ in range(200):
        try:
            await source.token()
        except AuthRetryingError:
            await asyncio.sleep(0.05)  # the client's own pause; nothing is asserted on it
        else:
            return time.monotonic() - start
    raise AssertionError("never served")


async def test_waf_html_403_retries_then_recovers(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("waf_html_403")
        await _outage(source, sink)
        assert "403" in sink.events[0][1]
        await auth.set_fault("ok")
        took = await _demand_until_served(source)
        assert took <= 5.0  # demand-triggered, not the 30 s tick
        await eventually(lambda: source.state is AuthState.FRESH, timeout=5)
        assert collapsed(sink) == [A, R]
        assert (await source.token()).access_token


async def test_refused_recovers_through_the_probe_within_seconds(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("refused")
        await _outage(source, sink)
        assert source.snapshot().last_failure is not None
        await auth.set_fault("ok")  # the same port listens again
        took = await eventually(lambda: source.state is AuthState.FRESH, timeout=10)
        assert took <= 5.0  # probe cadence 0.2 s; the 30 s tick could not have done it
        assert collapsed(sink) == [A, R]


async def test_hang_is_cut_by_the_request_timeout(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("hang")
        await _outage(source, sink)
        await eventually(lambda: "timed out" in sink.events[-1][1], timeout=5)
        await auth.set_fault("ok")
        await eventually(lambda: source.state is AuthState.FRESH, timeout=10, interval=0.05)


async def test_invalid_grant_is_unauthenticated_at_once(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("invalid_grant")
        await eventually(lambda: source.state is AuthState.DEAD, timeout=10)
        assert sink.statuses == [U]
        assert auth.counters.by_fault["invalid_grant"] == 1
        with pytest.raises(UnauthenticatedError, match="mcpkeeper login it"):
            await source.token()


async def test_rate_limited_429_retry_after_is_respected(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("rate_limited_429", retry_after=2)
        await eventually(lambda: auth.counters.by_fault["rate_limited_429"] >= 1, timeout=5)
        first = auth.counters.request_times[-1]
        await eventually(lambda: auth.counters.by_fault["rate_limited_429"] >= 2, timeout=10)
        second = next(t for t in auth.counters.request_times if t > first)
        assert second - first >= 1.9  # the 0.1 s back-off was stretched to Retry-After
        await auth.set_fault("ok")
        await _demand_until_served(source)
        assert sink.statuses[-1] is R


async def test_unparsable_200_is_transient(auth: FixtureAuthServer) -> None:
    async with monitored(auth) as (source, sink):
        await auth.set_fault("unparsable_200")
        await _outage(source, sink)
        await auth.set_fault("unparsable_200", body="json")
        failures = source.snapshot().consecutive_failures
        for _ in range(200):  # a client retrying after each 503 keeps attempts coming
            if source.snapshot().consecutive_failures >= failures + 2:
                break
            with pytest.raises(AuthRetryingError):
                await source.token()
            await asyncio.sleep(0.05)
        assert source.snapshot().consecutive_failures >= failures + 2
        assert "not JSON" in (source.snapshot().last_failure or "")
        assert source.state is AuthState.RETRYING
        assert collapsed(sink) == [A]


async def test_ceiling_reached(auth: FixtureAuthServer) -> None:
    config = SHORT.with_overrides(retrying_ceiling=1.5, retrying_tick=0.5)
    async with monitored(auth, config=config) as (source, sink):
        await auth.set_fault("server_error_500")
        await eventually(lambda: source.state is AuthState.DEAD, timeout=15)
        assert collapsed(sink) == [A, U]
        assert "gave up after" in sink.events[-1][1]
