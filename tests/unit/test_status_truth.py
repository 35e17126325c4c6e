"""The status says what a client gets: random fault schedules, every token lifetime.

Hypothesis drives a monitor (virtual time, the scripted token endpoint, a probe that sees
what a GET would) through random schedules of faults, restores, suspends, upstream 401s
and calls, with token lifetimes from 5 s to 24 h. The status is read back from a real
status file (the same :class:`StatusStore` the daemon writes), and compared with what
the proxy would answer (:func:`reply_for_token_error` on the monitor's outcome):

* every call served with a token happens while the status file says ``running``, and the
  token handed out is not expired;
* every call refused for want of a token happens while the file already says
  ``auth_retrying`` (transient) or ``unauthenticated`` (permanent) — never ``running``;
* between calls: ``running`` while callers would be blocked (refreshes failing, no
  usable token, nothing in flight) never lasts — it is checked after every step that is
  not a suspend (after a suspend the monitor notices within its wake-check interval,
  and a call in that window flips the status itself, which the per-call check covers);
* ``auth_retrying`` only while no usable token is served.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from mcpkeeper.auth import AuthRetryingError, MonitoredTokenSource, UnauthenticatedError
from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.proxy._replies import reply_for_token_error
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

from .monitor_fakes import FAST, FakeTokenEndpoint, TiedProbe
from .property_settings import monitor_property

R, A, U = WorkloadStatus.RUNNING, WorkloadStatus.AUTH_RETRYING, WorkloadStatus.UNAUTHENTICATED
LIFETIMES = [5.0, 15.0, 30.0, 120.0, 300.0, 3600.0, 86400.0]
MODES = ["ok", "ok", "ok", "waf", "500", "429", "refused", "hang", "hang_connect", "invalid_grant", "unsaved"]
CONFIG = FAST.with_overrides(retrying_ceiling=6 * 3600.0)

op = st.one_of(
    st.tuples(st.just("advance"), st.floats(min_value=0.1, max_value=900.0)),
    st.tuples(st.just("mode"), st.sampled_from(MODES)),
    st.tuples(st.just("call"), st.integers(min_value=1, max_value=5)),
    st.tuples(st.just("jump"), st.floats(min_value=60.0, max_value=4 * 3600.0)),
    # A call right after waking from a suspend, before the monitor's own check notices.
    st.tuples(st.just("jump_call"), st.floats(min_value=60.0, max_value=4 * 3600.0)),
    st.tuples(st.just("reject"), st.just(0)),
    st.tuples(st.just("relogin"), st.just(0)),
    st.tuples(st.just("disk"), st.booleans()),
)


class _Truth:
    """The status file, and the checks against it."""

    def __init__(self, root: Path, source_name: str) -> None:
        self.store = StatusStore(root)
        self.store.set(source_name, R, "token loaded; proxying")
        self.name = source_name

    @property
    def status(self) -> WorkloadStatus:
        record = self.store.get(self.name)
        assert record is not None
        return record.status


async def _call(source: MonitoredTokenSource, clock: VirtualClock, truth: _Truth) -> None:
    try:
        token = await source.token()
    except TokenUnavailableError as exc:
        reply = reply_for_token_error(exc, "p")
        assert reply.status == 503, reply
        expected = U if isinstance(exc, UnauthenticatedError) else A
        assert isinstance(exc, AuthRetryingError | UnauthenticatedError), repr(exc)
        assert truth.status is expected, f"refused ({reply.kind}) while the status file says {truth.status}"
        return
    assert truth.status is R, f"served while the status file says {truth.status}"
    assert token.expires_at is None or token.expires_at > clock.wall(), "an expired token was handed out"


def _blocked_without_saying_so(
    source: MonitoredTokenSource, clock: VirtualClock, truth: _Truth
) -> str | None:
    usable = clock.wall() < source._serving_until
    status = truth.status
    if status is A and usable:
        return "auth_retrying while a usable token is served"
    outage = source._outage
    failing = outage is not None and outage.last_failure is not None
    idle = source._in_flight is None and not source._refresh_requested
    if status is R and not usable and failing and idle:
        return "running while refreshes fail and no usable token remains"
    return None


async def _scenario(ops: list[tuple[str, object]], lifetime: float, latency: float, seed: int) -> None:
    clock = VirtualClock()
    endpoint = FakeTokenEndpoint(clock, lifetime=lifetime, latency=latency)
    probe = TiedProbe(endpoint, informative=seed % 3 != 0)
    with tempfile.TemporaryDirectory() as home:
        truth = _Truth(Path(home), "p")
        source = MonitoredTokenSource(
            endpoint.initial(),
            endpoint,
            truth.store.sink("p"),
            config=CONFIG,
            clock=clock,
            probe=probe,
            name="p",
            rng=random.Random(seed),
        )
        calls: list[asyncio.Task[None]] = []
        jumped_at = -1e18
        async with source:
            await clock.settle()
            for kind, value in ops:
                if kind == "advance":
                    await clock.advance(float(value))  # type: ignore[arg-type]
                elif kind == "mode":
                    endpoint.mode = str(value)
                elif kind == "call":
                    for _ in range(int(value)):  # type: ignore[call-overload]
                        calls.append(asyncio.ensure_future(_call(source, clock, truth)))
                    await clock.settle()
                elif kind in ("jump", "jump_call"):
                    clock.jump_wall(float(value))  # type: ignore[arg-type]
                    jumped_at = clock.monotonic()
                    if kind == "jump_call":
                        calls.append(asyncio.ensure_future(_call(source, clock, truth)))
                        await clock.settle()
                elif kind == "reject":
                    served = source._serving
                    if served is not None:
                        calls.append(asyncio.ensure_future(_reject(source, served, clock, truth)))
                        await clock.settle()
                elif kind == "relogin":
                    source.relogin(endpoint.initial())
                elif kind == "disk":
                    endpoint.disk_full = bool(value)
                await clock.settle()  # callers handed a token see it before time moves on
                if clock.monotonic() - jumped_at > CONFIG.wake_check_interval:
                    problem = _blocked_without_saying_so(source, clock, truth)
                    assert problem is None, problem
            await clock.advance(CONFIG.request_timeout + CONFIG.caller_wait + 1)
            for task in calls:
                if task.done():
                    task.result()  # re-raises a failed check
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
    assert endpoint.double_spends == 0, "a spent refresh token was sent again"


async def _reject(source: MonitoredTokenSource, served: object, clock: VirtualClock, truth: _Truth) -> None:
    """The upstream answered 401 to ``served``: the proxy asks for another token."""
    try:
        await source.force_refresh(served)  # type: ignore[arg-type]
    except TokenUnavailableError as exc:
        expected = U if isinstance(exc, UnauthenticatedError) else A
        assert truth.status is expected, f"401 replay refused while the status file says {truth.status}"
        return
    assert truth.status is R, f"401 replay served while the status file says {truth.status}"


@monitor_property
@given(
    ops=st.lists(op, min_size=1, max_size=16),
    lifetime=st.sampled_from(LIFETIMES),
    latency=st.sampled_from([0.0, 0.3, 1.5]),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_the_status_file_says_what_a_client_gets(
    ops: list[tuple[str, object]], lifetime: float, latency: float, seed: int
) -> None:
    asyncio.run(_scenario(ops, lifetime, latency, seed))
