"""The token monitor's state machine, one behaviour per test, in virtual time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from mcpkeeper.auth import (
    AuthRetryingError,
    AuthState,
    MonitoredTokenSource,
    RetryConfig,
    UnauthenticatedError,
)
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

from .monitor_fakes import FAST, FakeProbe, FakeTokenEndpoint, RecordingSink, in_state, started

RUNNING = WorkloadStatus.RUNNING
RETRYING = WorkloadStatus.AUTH_RETRYING
UNAUTH = WorkloadStatus.UNAUTHENTICATED


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def endpoint(clock: VirtualClock) -> FakeTokenEndpoint:
    return FakeTokenEndpoint(clock, lifetime=3600.0)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def start(
    endpoint: FakeTokenEndpoint, sink: RecordingSink, clock: VirtualClock
) -> AsyncIterator[Callable[..., Awaitable[MonitoredTokenSource]]]:
    """``await start(**make_options)``: a running monitor, stopped after the test."""
    sources: list[MonitoredTokenSource] = []

    async def _start(**options: Any) -> MonitoredTokenSource:
        source = await started(make(endpoint, sink, clock, **options), clock)
        sources.append(source)
        return source

    yield _start
    for source in sources:
        await source.aclose()


def make(
    endpoint: FakeTokenEndpoint,
    sink: RecordingSink,
    clock: VirtualClock,
    *,
    expires_in: float | None = 3600.0,
    expired: bool = False,
    config: RetryConfig = FAST,
    probe: FakeProbe | None = None,
) -> MonitoredTokenSource:
    """A monitor over a token of ``expires_in`` seconds (``expired``: one that ran out 10 s ago)."""
    if expired:
        token = replace(
            endpoint.initial(expires_in=3600.0), expires_at=clock.wall() - 10, issued_at=clock.wall() - 3610
        )
    elif expires_in is None:
        token = endpoint._issue(None)
    else:
        token = endpoint.initial(expires_in=expires_in)
    return MonitoredTokenSource(token, endpoint, sink, config=config, clock=clock, probe=probe, name="w")


async def enter_retrying(
    source: MonitoredTokenSource, endpoint: FakeTokenEndpoint, clock: VirtualClock
) -> None:
    endpoint.mode = "waf"
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=7200)


async def test_valid_token_passes_through_without_status_write(endpoint, sink, clock, start):
    source = await start()
    tok = await source.token()
    assert tok.access_token == "at-1"
    assert (await source.token()) is tok
    assert endpoint.calls == 0
    assert sink.events == []


async def test_background_refresh_on_schedule(endpoint, sink, clock, start):
    source = await start()
    # 75 % of a one-hour lifetime is 2700 s; 60 s before expiry is later, so 2700 s wins.
    await clock.advance(2699)
    assert endpoint.calls == 0
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=10)
    assert (await source.token()).access_token == "at-2"
    assert sink.events == []


async def test_permanent_error_on_hot_path_gives_exactly_one_unauthenticated(endpoint, sink, clock, start):
    endpoint.mode = "invalid_grant"
    source = await start(expired=True)
    callers = [asyncio.ensure_future(source.token()) for _ in range(5)]
    await clock.settle()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, UnauthenticatedError) for r in results)
    assert endpoint.calls == 1
    assert sink.statuses == [UNAUTH]
    assert "mcpkeeper login w" in sink.events[0][1]
    await clock.advance(86400)
    assert sink.statuses == [UNAUTH]
    assert endpoint.calls == 1


async def test_transient_failure_clearing_inside_short_retry_writes_no_status(endpoint, sink, clock, start):
    source = await start()
    endpoint.script.extend(["waf", "500"])
    await clock.run_until(lambda: endpoint.calls == 3, max_seconds=4000)
    assert source.state is AuthState.FRESH
    assert sink.events == []
    assert (await source.token()).access_token == "at-2"


async def test_transient_then_permanent_ends_unauthenticated(endpoint, sink, clock, start):
    source = await start()
    endpoint.script.extend(["waf", "invalid_grant"])
    await clock.run_until(in_state(source, AuthState.DEAD), max_seconds=4000)
    assert endpoint.calls == 2
    assert sink.statuses == [UNAUTH]


async def test_cancellation_mid_retry_changes_no_status(endpoint, sink, clock, start):
    source = await start()
    endpoint.mode = "waf"
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=4000)
    await source.aclose()
    await clock.advance(86400)
    assert sink.events == []
    assert not source.alive


async def test_auth_retrying_starts_when_the_token_runs_out_not_when_the_budget_does(
    endpoint, sink, clock, start
):
    # 200 s of life: refresh due at 140 s; failing tries at 140, 150, 170 (the back-off of
    # 40 s is cut to the token's end), then the token runs out at 195 s (5 s skew) while
    # the short retry still has budget: callers are blocked from that instant, so the
    # status says auth_retrying from that instant.
    t0 = clock.monotonic()
    source = await start(expires_in=200)
    endpoint.mode = "waf"
    spent = await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=7200)
    assert spent == pytest.approx(195.0)
    assert [t - t0 for t in endpoint.attempt_times[:3]] == pytest.approx([140.0, 150.0, 170.0])
    assert sink.statuses == [RETRYING]
    assert source.alive
    await clock.advance(1800)
    # The rest of the short retry (195, 275), then one attempt per 10-minute tick.
    assert [t - t0 for t in endpoint.attempt_times[3:]] == pytest.approx([195.0, 275.0, 875.0, 1475.0])
    assert sink.statuses == [RETRYING]


async def test_auth_retrying_recovers_to_running_in_order(endpoint, sink, clock, start):
    source = await start()
    await enter_retrying(source, endpoint, clock)
    endpoint.mode = "ok"
    waited = await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=601)
    assert waited <= 600
    assert sink.statuses == [RETRYING, RUNNING]
    assert "recovered" in sink.events[-1][1]
    assert (await source.token()).access_token.startswith("at-")


async def test_ceiling_ends_in_unauthenticated(endpoint, sink, clock, start):
    cfg = FAST.with_overrides(retrying_ceiling=3600.0)
    source = await start(config=cfg)
    await enter_retrying(source, endpoint, clock)
    spent = await clock.run_until(in_state(source, AuthState.DEAD), max_seconds=4000)
    assert 3590 <= spent <= 3601
    assert sink.statuses == [RETRYING, UNAUTH]
    assert "gave up after 1h" in sink.events[-1][1]


async def test_hot_caller_in_auth_retrying_fails_fast_without_a_request(endpoint, sink, clock, start):
    source = await start(expires_in=600)
    await enter_retrying(source, endpoint, clock)
    await clock.advance(700)
    # The first call after a quiet spell is demand: it gets an attempt (and waits for it).
    with pytest.raises(AuthRetryingError):
        await source.token()
    calls = endpoint.calls
    started_at = clock.monotonic()
    t0 = time.perf_counter()
    with pytest.raises(AuthRetryingError) as info:
        await source.token()
    elapsed = time.perf_counter() - t0
    assert clock.monotonic() == started_at  # no virtual time passed: nothing was awaited
    assert endpoint.calls == calls
    assert info.value.retry_after is not None and 1.0 <= info.value.retry_after <= 600
    assert elapsed < 0.5  # generous bound against a hang; the <5 ms figure comes from bench/


async def test_retry_after_is_the_time_to_the_next_attempt(endpoint, sink, clock, start):
    source = await start(expires_in=100)
    await enter_retrying(source, endpoint, clock)
    with pytest.raises(AuthRetryingError) as info:
        await source.token()
    # Demand: the first demand-triggered attempt comes 5 s after the last attempt.
    assert info.value.retry_after is not None and info.value.retry_after <= 5.0
    calls = endpoint.calls
    await clock.run_until(lambda: endpoint.calls == calls + 1, max_seconds=info.value.retry_after + 0.01)


async def test_permanent_error_while_retrying_ends_before_ceiling(endpoint, sink, clock, start):
    source = await start()
    await enter_retrying(source, endpoint, clock)
    endpoint.mode = "invalid_grant"
    spent = await clock.run_until(in_state(source, AuthState.DEAD), max_seconds=700)
    assert spent <= 600
    assert sink.statuses == [RETRYING, UNAUTH]


async def test_once_dead_transient_hot_calls_never_reenter_retrying(endpoint, sink, clock, start):
    endpoint.mode = "invalid_grant"
    source = await start(expired=True)
    with pytest.raises(UnauthenticatedError):
        await source.token()
    endpoint.mode = "waf"
    for _ in range(20):
        with pytest.raises(UnauthenticatedError):
            await source.token()
        await clock.advance(60)
    assert sink.statuses == [UNAUTH]
    assert endpoint.calls == 1


async def test_hot_caller_joining_the_monitors_successful_attempt_ends_running(endpoint, sink, clock, start):
    endpoint.latency = 1.0
    source = await start(expires_in=600)
    await enter_retrying(source, endpoint, clock)
    await clock.advance(700)  # expired
    endpoint.mode = "ok"
    calls = endpoint.calls
    # Let the tick start an attempt, then arrive while it is in flight.
    await clock.run_until(lambda: endpoint.in_flight == 1, max_seconds=600)
    caller = asyncio.ensure_future(source.token())
    await clock.run_until(caller.done, max_seconds=5)
    assert caller.result().access_token.startswith("at-")
    assert source.state is AuthState.FRESH
    assert sink.statuses == [RETRYING, RUNNING]
    assert endpoint.calls == calls + 1
    assert (await source.token()) is caller.result()


async def test_token_without_expiry(endpoint, sink, clock, start):
    source = await start(expires_in=None)
    await clock.advance(86400)
    assert endpoint.calls == 0
    tok = await source.token()
    assert tok.expires_at is None
    # The upstream rejecting it still makes the hot path refresh and classify.
    endpoint.mode = "waf"
    with pytest.raises(AuthRetryingError):
        await source.force_refresh(tok)
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=600)
    assert sink.statuses == [RETRYING]
    endpoint.mode = "ok"
    await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=700)
    assert sink.statuses == [RETRYING, RUNNING]


async def test_concurrent_callers_share_one_request(endpoint, sink, clock, start):
    endpoint.latency = 0.5
    source = await start(expired=True)
    callers = [asyncio.ensure_future(source.token()) for _ in range(100)]
    await clock.run_until(lambda: all(c.done() for c in callers), max_seconds=5)
    tokens = {c.result().access_token for c in callers}
    assert tokens == {"at-2"}
    assert endpoint.calls == 1
    assert endpoint.max_in_flight == 1


async def test_valid_token_keeps_serving_through_an_outage_shorter_than_its_life(
    endpoint, sink, clock, start
):
    source = await start()
    endpoint.mode = "refused"
    await clock.advance(2700 + 300)  # refresh is due and failing past the short-retry budget
    assert endpoint.calls >= FAST.max_tries
    for _ in range(10):
        assert (await source.token()).access_token == "at-1"
        await clock.advance(30)
    endpoint.mode = "ok"
    await clock.run_until(lambda: source.snapshot().consecutive_failures == 0, max_seconds=600)
    assert (await source.token()).access_token == "at-2"
    assert sink.statuses == []


async def test_permanent_invalid_client_says_the_registration_is_stale(endpoint, sink, clock, start):
    endpoint.mode = "invalid_client"
    source = await start(expired=True)
    with pytest.raises(UnauthenticatedError):
        await source.token()
    assert "registration is likely stale" in sink.events[0][1]
    assert "mcpkeeper login w" in sink.events[0][1]


async def test_retry_after_from_the_token_endpoint_is_honoured(endpoint, sink, clock, start):
    endpoint.script.extend(["429"])
    source = await start(expired=True)
    with pytest.raises(AuthRetryingError) as info:
        await source.token()
    assert info.value.retry_after is not None and info.value.retry_after >= 30
    await clock.advance(29.9)
    assert endpoint.calls == 1
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=1)
    assert source.state is AuthState.FRESH


async def test_network_failure_recovers_through_the_probe_not_the_tick(endpoint, sink, clock, start):
    probe = FakeProbe()
    source = await start(probe=probe)
    endpoint.mode = "refused"
    probe.reachable = False
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=7200)
    await clock.advance(1800)
    calls = endpoint.calls
    endpoint.mode = "ok"
    probe.reachable = True
    waited = await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=600)
    assert waited <= FAST.probe_interval + 0.01
    assert endpoint.calls == calls + 1
    assert sink.statuses == [RETRYING, RUNNING]


async def test_probe_success_without_a_prior_outage_does_not_hammer(endpoint, sink, clock, start):
    probe = FakeProbe()  # always reachable: the failure is above TCP (e.g. reset after connect)
    source = await start(probe=probe)
    endpoint.mode = "refused"
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=7200)
    calls = endpoint.calls
    await clock.advance(3600)
    # Flapping reachability must not cost more than the demand cap allows (one per minute).
    assert endpoint.calls - calls <= 3600 / FAST.demand_max_interval + 6


async def test_demand_triggers_attempts_with_their_own_backoff(endpoint, sink, clock, start):
    source = await start(expires_in=600)
    await enter_retrying(source, endpoint, clock)
    calls = endpoint.calls
    attempts_at: list[float] = []
    start = clock.monotonic()
    for _ in range(3600):  # one request a second for an hour
        with pytest.raises(AuthRetryingError):
            await source.token()
        before = endpoint.calls
        await clock.advance(1.0)
        if endpoint.calls > before:
            attempts_at.append(clock.monotonic() - start)
    made = endpoint.calls - calls
    assert made <= FAST.max_attempts_per_hour
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    # Doubling to the cap, until the hourly budget is spent (then the tick alone).
    assert max(gaps[:45]) <= FAST.demand_max_interval + 1
    assert attempts_at[0] <= FAST.demand_initial_interval + 1


async def test_wall_clock_jump_triggers_an_attempt(endpoint, sink, clock, start):
    source = await start()
    await enter_retrying(source, endpoint, clock)
    endpoint.mode = "ok"
    clock.jump_wall(3 * 3600)  # the laptop slept for three hours
    waited = await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=600)
    assert waited <= FAST.wake_check_interval + 0.01


async def test_relogin_leaves_dead_for_running(endpoint, sink, clock, start):
    endpoint.mode = "invalid_grant"
    source = await start(expired=True)
    with pytest.raises(UnauthenticatedError):
        await source.token()
    fresh = endpoint.initial()
    source.relogin(fresh)
    assert (await source.token()) is fresh
    assert sink.statuses == [UNAUTH, RUNNING]


async def test_no_stored_token_is_dead_without_a_status_write(endpoint, sink, clock):
    source = MonitoredTokenSource(None, endpoint, sink, config=FAST, clock=clock, name="w")
    await started(source, clock)
    with pytest.raises(UnauthenticatedError, match="mcpkeeper login w"):
        await source.token()
    assert sink.events == []


async def test_hanging_endpoint_does_not_hang_callers(endpoint, sink, clock, start):
    endpoint.mode = "hang"
    source = await start(expired=True)
    caller = asyncio.ensure_future(source.token())
    await clock.run_until(caller.done, max_seconds=FAST.caller_wait + 1)
    assert isinstance(caller.exception(), AuthRetryingError)


async def test_snapshot_never_contains_secrets(endpoint, sink, clock, start):
    source = await start()
    text = repr(source.snapshot()) + repr(await source.token())
    assert "at-1" not in text and "rt-1" not in text


async def test_suspend_past_the_ceiling_gets_one_last_attempt(endpoint, sink, clock, start):
    cfg = FAST.with_overrides(retrying_ceiling=3600.0)
    source = await start(config=cfg)
    await enter_retrying(source, endpoint, clock)
    endpoint.mode = "ok"  # the network came back while the laptop slept for two days
    clock.jump_wall(2 * 86400)
    await clock.run_until(lambda: source.state is not AuthState.RETRYING, max_seconds=60)
    assert source.state is AuthState.FRESH
    assert sink.statuses == [RETRYING, RUNNING]


async def test_demand_does_not_hammer_an_unreachable_endpoint(endpoint, sink, clock, start):
    probe = FakeProbe()
    source = await start(expires_in=600, probe=probe)
    endpoint.mode = "refused"
    probe.reachable = False
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=3600)
    calls = endpoint.calls
    for _ in range(1800):  # a request a second for half an hour
        with pytest.raises(AuthRetryingError) as info:
            await source.token()
        assert info.value.retry_after is not None and info.value.retry_after <= FAST.probe_interval + 1
        await clock.advance(1.0)
    assert endpoint.calls - calls <= 3  # the 10-minute tick only: the probe watches the network
    probe.reachable = True
    endpoint.mode = "ok"
    waited = await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=60)
    assert waited <= FAST.probe_interval + 0.01


async def test_a_call_after_a_suspend_during_an_outage_says_auth_retrying_before_it_is_refused(
    endpoint, sink, clock, start
):
    # The refresh is failing quietly (token still valid); the laptop sleeps past expiry and
    # a call arrives on wake, before the monitor's own wake check: the refusal must not
    # leave the status at running.
    source = await start(expires_in=600)
    endpoint.mode = "429"  # Retry-After: 30 s, so the call cannot ask for an attempt
    await clock.run_until(lambda: endpoint.calls >= 1, max_seconds=600)
    assert sink.statuses == []
    clock.jump_wall(3600)
    reported: list[WorkloadStatus] = []
    sink.on_report = lambda status, reason: reported.append(status)
    with pytest.raises(AuthRetryingError):
        await source.token()
    assert reported[:1] == [RETRYING]
