"""Recovery as fast as the cause clears, within the request budget; hung requests and
rotation; the upstream's 401; a new token that cannot be saved. Virtual time, exact.

The scenario of issue 7's numbers: a 15 s access token, a client calling once a second,
an outage beginning when the refresh falls due.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from mcpkeeper.auth import AuthRetryingError, AuthState, MonitoredTokenSource, UnauthenticatedError
from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.auth.token import Token
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

from .monitor_fakes import FAST, FakeTokenEndpoint, RecordingSink, TiedProbe, in_state, started

RUNNING = WorkloadStatus.RUNNING
RETRYING = WorkloadStatus.AUTH_RETRYING
UNAUTH = WorkloadStatus.UNAUTHENTICATED
CONFIG = FAST.with_overrides(jitter=0.2)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def endpoint(clock: VirtualClock) -> FakeTokenEndpoint:
    return FakeTokenEndpoint(clock, lifetime=15.0)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def monitor(
    endpoint: FakeTokenEndpoint,
    sink: RecordingSink,
    clock: VirtualClock,
    *,
    probe: TiedProbe | None = None,
    config=CONFIG,
) -> MonitoredTokenSource:
    return MonitoredTokenSource(
        endpoint.initial(), endpoint, sink, config=config, clock=clock, probe=probe, name="w"
    )


def collapsed(statuses: list[WorkloadStatus]) -> list[WorkloadStatus]:
    return [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] is not s]


class Client:
    """Calls once a second; records each outcome with its virtual time."""

    def __init__(self, source: MonitoredTokenSource, clock: VirtualClock) -> None:
        self.source = source
        self.clock = clock
        self.outcomes: list[tuple[float, bool]] = []  # (time, served)
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            call = asyncio.ensure_future(self.source.token())
            await self.clock.wait(asyncio.Event(), 0)  # let the call start
            try:
                await call
                self.outcomes.append((self.clock.monotonic(), True))
            except TokenUnavailableError:
                self.outcomes.append((self.clock.monotonic(), False))
            await self.clock.sleep(1.0)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._loop())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def first_good_after(self, t: float) -> float:
        return next(at for at, served in self.outcomes if served and at >= t) - t

    def refused_after(self, t: float) -> int:
        return sum(1 for at, served in self.outcomes if not served and at >= t)


async def outage(
    mode: str,
    endpoint: FakeTokenEndpoint,
    sink: RecordingSink,
    clock: VirtualClock,
    *,
    informative: bool = True,
) -> tuple[Client, float, MonitoredTokenSource]:
    """A 60 s outage of ``mode`` beginning when the refresh falls due; returns the client,
    the restore time and the source."""
    probe = TiedProbe(endpoint, informative=informative)
    source = await started(monitor(endpoint, sink, clock, probe=probe), clock)
    client = Client(source, clock)
    client.start()
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=30)  # a good rotation first
    endpoint.mode = mode
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=30)  # the next one falls due
    await clock.advance(60.0)
    endpoint.mode = "ok"
    restored = clock.monotonic()
    await clock.run_until(
        lambda: any(served and at >= restored for at, served in client.outcomes), max_seconds=700
    )
    await clock.advance(5.0)
    return client, restored, source


@pytest.mark.parametrize(
    ("mode", "bound"),
    [("refused", 5.0), ("waf", 10.0), ("500", 10.0), ("429", 10.0), ("hang", 15.0), ("hang_connect", 15.0)],
)
async def test_first_good_call_comes_within_seconds_of_the_restore(mode, bound, endpoint, sink, clock):
    client, restored, source = await outage(mode, endpoint, sink, clock)
    assert client.first_good_after(restored) <= bound
    first_good = restored + client.first_good_after(restored)
    assert client.refused_after(first_good) == 0
    assert collapsed(sink.statuses) == [RETRYING, RUNNING]  # auth_retrying may say a new reason
    assert endpoint.double_spends == 0
    await client.stop()
    await source.aclose()


@pytest.mark.parametrize("mode", ["refused", "waf", "500", "429", "hang"])
async def test_auth_retrying_is_reported_before_the_first_refused_call(mode, endpoint, sink, clock):
    reported_at: list[float] = []
    sink.on_report = lambda status, reason: (
        reported_at.append(clock.monotonic()) if status is RETRYING else None
    )
    client, _, source = await outage(mode, endpoint, sink, clock)
    first_refused = next(at for at, served in client.outcomes if not served)
    assert reported_at and reported_at[0] <= first_refused
    await client.stop()
    await source.aclose()


async def test_a_probe_blind_to_the_fault_falls_back_on_demand_within_the_budget(endpoint, sink, clock):
    # The WAF blocks POST only: the probe's GET always looks healthy, so recovery rides on
    # demand, whose back-off keeps an hour of outage under 60 token requests.
    probe = TiedProbe(endpoint, informative=False)
    source = await started(monitor(endpoint, sink, clock, probe=probe), clock)
    client = Client(source, clock)
    client.start()
    endpoint.mode = "waf"
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=60)
    calls = endpoint.calls
    await clock.advance(3600.0)
    assert endpoint.calls - calls <= 60
    endpoint.mode = "ok"
    restored = clock.monotonic()
    await clock.run_until(lambda: source.state is AuthState.FRESH, max_seconds=120)
    assert clock.monotonic() - restored <= CONFIG.demand_max_interval + 1
    await client.stop()
    await source.aclose()


@pytest.mark.parametrize("mode", ["refused", "waf", "500", "hang"])
async def test_an_hour_of_outage_under_constant_demand_costs_at_most_60_requests(mode, endpoint, sink, clock):
    source = await started(monitor(endpoint, sink, clock, probe=TiedProbe(endpoint)), clock)
    client = Client(source, clock)
    client.start()
    endpoint.mode = mode
    calls = endpoint.calls
    await clock.advance(3600.0)
    assert endpoint.calls - calls <= 60
    await client.stop()
    await source.aclose()


async def test_the_call_that_triggers_an_attempt_is_served_by_it(endpoint, sink, clock):
    # No probe at all: demand alone. The first call after the cause clears waits for the
    # attempt it triggered (≤ caller_wait) and is served, not refused.
    source = await started(monitor(endpoint, sink, clock), clock)
    endpoint.mode = "500"
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=60)
    await clock.advance(120)
    endpoint.mode = "ok"
    endpoint.latency = 0.5
    call = asyncio.ensure_future(source.token())
    await clock.run_until(call.done, max_seconds=CONFIG.caller_wait)
    assert call.result().access_token.startswith("at-")
    assert sink.statuses == [RETRYING, RUNNING]
    await source.aclose()


async def test_a_retry_after_barrier_lifts_when_the_probe_sees_the_endpoint_answer(endpoint, sink, clock):
    source = await started(monitor(endpoint, sink, clock, probe=TiedProbe(endpoint)), clock)
    endpoint.mode = "429"  # Retry-After: 30 s each time
    await clock.run_until(in_state(source, AuthState.RETRYING), max_seconds=60)
    await clock.advance(3.0)
    endpoint.mode = "ok"
    restored = clock.monotonic()
    await clock.run_until(in_state(source, AuthState.FRESH), max_seconds=60)
    assert clock.monotonic() - restored <= CONFIG.probe_max_interval + 0.01
    await source.aclose()


async def test_expiry_skew_is_a_tenth_of_a_short_lifetime(endpoint, sink, clock):
    source = await started(monitor(endpoint, sink, clock), clock)
    token = await source.token()
    assert token.expires_at is not None and token.issued_at is not None
    endpoint.mode = "500"  # no new token: how long is this one handed out?
    await clock.advance(13.4)
    assert (await source.token()) is token  # 1.5 s skew (10 % of 15 s), not 5 s
    await source.aclose()


# -- hung requests and rotation --------------------------------------------------------
async def test_a_request_stuck_connecting_is_abandoned_when_the_probe_sees_the_endpoint(
    endpoint, sink, clock
):
    probe = TiedProbe(endpoint)
    source = await started(monitor(endpoint, sink, clock, probe=probe), clock)
    endpoint.mode = "hang_connect"  # a black-holed SYN: the request never left
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=30)
    await clock.advance(3.0)
    endpoint.mode = "ok"
    attempt_started = endpoint.attempt_times[-1]
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=30)
    # Abandoned at the first probe after caller_wait, not at the 10 s connect timeout.
    assert endpoint.attempt_times[-1] - attempt_started < 10.0
    await clock.run_until(lambda: source.snapshot().consecutive_failures == 0, max_seconds=5)
    assert endpoint.double_spends == 0
    await source.aclose()


async def test_a_sent_request_is_waited_out_against_a_strictly_rotating_server(endpoint, sink, clock):
    source = await started(monitor(endpoint, sink, clock, probe=TiedProbe(endpoint)), clock)
    endpoint.mode = "hang"  # the POST went out: the server may have rotated the token
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=30)
    first = endpoint.attempt_times[-1]
    await clock.advance(3.0)
    endpoint.mode = "ok"
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=30)
    assert endpoint.attempt_times[-1] - first >= 10.0  # the request's own timeout
    await source.aclose()


@pytest.mark.parametrize("why", ["reuse_grace", "no_rotation"])
async def test_a_sent_request_is_abandoned_when_resending_is_safe(why, clock, sink):
    endpoint = FakeTokenEndpoint(clock, lifetime=15.0)
    config = CONFIG.with_overrides(reuse_grace=30.0) if why == "reuse_grace" else CONFIG
    source = await started(monitor(endpoint, sink, clock, probe=TiedProbe(endpoint), config=config), clock)
    if why == "no_rotation":
        source._rotates = False  # the last refresh kept the refresh token
    endpoint.mode = "hang"
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=30)
    first = endpoint.attempt_times[-1]
    await clock.advance(3.0)
    endpoint.mode = "ok"
    await clock.run_until(lambda: endpoint.calls == 2, max_seconds=30)
    assert endpoint.attempt_times[-1] - first < 10.0
    await source.aclose()


# -- the upstream's 401 ----------------------------------------------------------------
async def test_upstream_401_forces_one_refresh_then_a_rejected_fresh_token_ends_the_grant(
    endpoint, sink, clock
):
    endpoint.lifetime = 3600.0
    source = await started(monitor(endpoint, sink, clock), clock)
    first = await source.token()
    second = await source.force_refresh(first)
    assert second.access_token != first.access_token
    assert endpoint.calls == 1
    # Many requests with the old token come back 401 too: no more refreshes.
    for _ in range(20):
        assert (await source.force_refresh(first)) is second
    assert endpoint.calls == 1
    with pytest.raises(UnauthenticatedError, match="rejected a freshly refreshed token"):
        await source.force_refresh(second)
    assert endpoint.calls == 1
    assert sink.statuses == [UNAUTH]
    assert "mcpkeeper login w" in sink.events[-1][1]
    await source.aclose()


async def test_a_401_on_a_token_from_a_scheduled_refresh_still_gets_its_forced_refresh(endpoint, sink, clock):
    endpoint.lifetime = 60.0
    source = await started(monitor(endpoint, sink, clock), clock)
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=60)  # a scheduled rotation
    scheduled = await source.token()
    forced = await source.force_refresh(scheduled)
    assert forced is not scheduled and endpoint.calls == 2
    assert sink.statuses == []
    await source.aclose()


# -- a new token that cannot be saved --------------------------------------------------
async def test_a_token_that_cannot_be_saved_is_used_and_saved_when_the_disk_frees(endpoint, sink, clock):
    source = await started(monitor(endpoint, sink, clock), clock)
    endpoint.mode = "unsaved"
    await clock.run_until(lambda: endpoint.calls == 1, max_seconds=30)
    endpoint.mode = "ok"
    assert source.snapshot().unsaved is not None
    assert sink.statuses == [RUNNING]
    assert "not saved" in sink.events[-1][1] and "No space left" in sink.events[-1][1]
    unsaved = endpoint.unsaved[-1]
    assert (await source.token()).access_token == unsaved.access_token
    await clock.advance(20)
    assert endpoint.save_attempts >= 3  # retried with back-off
    # The next refresh spends the new refresh token (from memory), never the spent one.
    assert endpoint.double_spends == 0
    endpoint.disk_full = False
    await clock.run_until(lambda: source.snapshot().unsaved is None, max_seconds=120)
    assert sink.events[-1] == (RUNNING, "token saved (the storage error cleared)")
    await source.aclose()


async def test_a_token_without_expiry_and_skew_never_overflows(endpoint, sink, clock):
    source = MonitoredTokenSource(
        Token("at-x", "rt-x", expires_at=None), endpoint, sink, config=CONFIG, clock=clock, name="w"
    )
    await started(source, clock)
    assert source._serving_until == math.inf
    assert (await source.token()).access_token == "at-x"
    with pytest.raises(AuthRetryingError):
        endpoint.mode = "500"
        await source.force_refresh(await source.token())
    await source.aclose()
