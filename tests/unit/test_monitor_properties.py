"""Random schedules of faults, recoveries and callers against the monitor, in virtual time.

Properties checked for every schedule:
* the reported history is a legal path of the state machine (and never repeats itself);
* ``auth_retrying`` is never the current status without a live monitor behind it;
* once the endpoint recovers, the next attempt succeeds (unless the grant is dead);
* a spent refresh token is never sent again.
"""

from __future__ import annotations

import asyncio
import random

from hypothesis import given
from hypothesis import strategies as st

from mcpkeeper.auth import AuthState, MonitoredTokenSource, TokenUnavailableError
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

from .monitor_fakes import FAST, FakeProbe, FakeTokenEndpoint, RecordingSink
from .property_settings import monitor_property

R, A, U = WorkloadStatus.RUNNING, WorkloadStatus.AUTH_RETRYING, WorkloadStatus.UNAUTHENTICATED
# The status before the first report is running (the workload layer writes it at start).
LEGAL = {(R, A), (A, R), (R, U), (A, U), (U, R)}
TRANSIENT = ["waf", "500", "429", "refused", "hang"]
CONFIG = FAST.with_overrides(retrying_ceiling=4 * 3600.0, caller_wait=10.0, wake_check_interval=30.0)

op = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0.5, max_value=1500.0)),
    st.tuples(st.just("mode"), st.sampled_from(["ok", "ok", "invalid_grant", *TRANSIENT])),
    st.tuples(st.just("callers"), st.integers(min_value=1, max_value=20)),
    st.tuples(st.just("reachable"), st.booleans()),
    st.tuples(st.just("jump"), st.floats(min_value=60.0, max_value=8 * 3600.0)),
    st.tuples(st.just("relogin"), st.just(0)),
)


async def _scenario(ops: list[tuple[str, float]], lifetime: float, latency: float, seed: int) -> None:
    clock = VirtualClock()
    endpoint = FakeTokenEndpoint(clock, lifetime=lifetime, latency=latency)
    probe = FakeProbe()
    history: list[WorkloadStatus] = [R]
    source: MonitoredTokenSource

    reasons: list[str] = [""]

    def on_report(status: WorkloadStatus, reason: str) -> None:
        if (history[-1], status) == (A, A):
            assert reason != reasons[-1], "auth_retrying reported twice with the same reason"
        else:
            assert (history[-1], status) in LEGAL, f"illegal transition {history[-1]} -> {status}"
        history.append(status)
        reasons.append(reason)

    sink = RecordingSink(on_report=on_report)
    source = MonitoredTokenSource(
        endpoint.initial(),
        endpoint,
        sink,
        config=CONFIG,
        clock=clock,
        probe=probe,
        name="p",
        rng=random.Random(seed),
    )
    callers: list[asyncio.Future[object]] = []
    async with source:
        await clock.settle()
        for kind, value in ops:
            if kind == "advance":
                await clock.advance(value)
            elif kind == "mode":
                endpoint.mode = str(value)
            elif kind == "callers":
                callers.extend(asyncio.ensure_future(source.token()) for _ in range(int(value)))
                await clock.settle()
            elif kind == "reachable":
                probe.reachable = bool(value)
            elif kind == "jump":
                clock.jump_wall(value)
            elif kind == "relogin" and source.state is AuthState.DEAD:
                source.relogin(endpoint.initial())
            if history[-1] is A:
                assert source.alive, "auth_retrying without a live monitor"
        # Recovery: the endpoint and the network come back for good.
        endpoint.mode = "ok"
        probe.reachable = True
        if source.state is not AuthState.DEAD:
            calls = endpoint.calls
            horizon = max(lifetime, CONFIG.retrying_tick) + 300.0
            await clock.run_until(lambda: endpoint.calls > calls, max_seconds=horizon)
            await clock.run_until(lambda: endpoint.in_flight == 0, max_seconds=60.0)
            assert source.state is AuthState.FRESH, "the first attempt after recovery failed"
            assert endpoint.calls == calls + 1
        await clock.advance(1.0)
        for caller in callers:
            if caller.done() and not caller.cancelled():
                exc = caller.exception()
                assert exc is None or isinstance(exc, TokenUnavailableError), repr(exc)
    assert endpoint.double_spends == 0, "a spent refresh token was sent again"
    assert not source.alive
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)


@monitor_property
@given(
    ops=st.lists(op, min_size=1, max_size=14),
    lifetime=st.sampled_from([30.0, 300.0, 3600.0]),
    latency=st.sampled_from([0.0, 0.2, 3.0]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_random_schedules_keep_the_invariants(
    ops: list[tuple[str, float]], lifetime: float, latency: float, seed: int
) -> None:
    asyncio.run(_scenario(ops, lifetime, latency, seed))
