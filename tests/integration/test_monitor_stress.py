"""1000 iterations racing enter-retrying, mark-unauthenticated and recovery.

Each iteration drives one monitor (virtual time, so the races are exact and repeatable)
whose status goes to a real status file through the real ``StatusStore``. Attempts are
slow, so faults, relogins and recoveries land while a request is in flight. At the end
of every iteration the monitor's in-memory state and the file on disk must agree, and
the history on disk must be the same sequence the monitor reported.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from mcpkeeper.auth import AuthState, MonitoredTokenSource, RetryConfig
from mcpkeeper.state import StatusStore, WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

from ..unit.monitor_fakes import FakeTokenEndpoint, RecordingSink

ITERATIONS = 1000
EXPECTED_STATUS = {
    AuthState.FRESH: WorkloadStatus.RUNNING,
    AuthState.RETRYING: WorkloadStatus.AUTH_RETRYING,
    AuthState.DEAD: WorkloadStatus.UNAUTHENTICATED,
}
CONFIG = RetryConfig(
    initial_retry_interval=1.0,
    max_retry_interval=2.0,
    max_tries=2,
    max_elapsed=10.0,
    retrying_tick=5.0,
    retrying_ceiling=40.0,
    demand_initial_interval=1.0,
    demand_max_interval=4.0,
    wake_check_interval=5.0,
    refresh_min_lead=2.0,
    expiry_skew=0.5,
    jitter=0.0,
)


class _TeeSink:
    """The real status-file sink, plus a record of what was reported, in order."""

    def __init__(self, store: StatusStore, name: str) -> None:
        self.file_sink = store.sink(name)
        self.recorded = RecordingSink()

    def report(self, status: WorkloadStatus, reason: str) -> None:
        self.file_sink.report(status, reason)
        self.recorded.report(status, reason)


async def _iteration(store: StatusStore, i: int, rng: random.Random) -> None:
    name = f"w{i % 7}"
    store.delete(name)
    store.set(name, WorkloadStatus.RUNNING, "started")
    clock = VirtualClock()
    endpoint = FakeTokenEndpoint(
        clock, lifetime=rng.choice([4.0, 8.0, 20.0]), latency=rng.choice([0.0, 0.5, 1.5])
    )
    sink = _TeeSink(store, name)
    source = MonitoredTokenSource(
        endpoint.initial(expires_in=rng.choice([1.0, 6.0])),
        endpoint,
        sink,
        config=CONFIG,
        clock=clock,
        name=name,
        rng=rng,
    )
    callers: list[asyncio.Future[object]] = []
    async with source:
        for _ in range(rng.randint(3, 10)):
            action = rng.random()
            if action < 0.30:
                endpoint.mode = rng.choice(["waf", "500", "refused"])  # drive towards retrying
            elif action < 0.45:
                endpoint.mode = "invalid_grant"  # mark unauthenticated
            elif action < 0.65:
                endpoint.mode = "ok"  # recovery
            elif action < 0.80:
                callers.extend(asyncio.ensure_future(source.token()) for _ in range(rng.randint(1, 5)))
            elif source.state is not AuthState.FRESH:
                source.relogin(endpoint.initial())  # racing an attempt that may be in flight
            await clock.advance(rng.choice([0.1, 0.5, 1.0, 3.0, 8.0]))
        await clock.advance(2.0)
        expected = EXPECTED_STATUS[source.state]
    record = store.get(name)
    assert record is not None
    assert record.status == expected, f"iteration {i}: memory {source.state} but file {record.status}"
    on_disk = [t.status for t in store.history(name)][1:]  # drop the initial "running"
    assert on_disk == sink.recorded.statuses, f"iteration {i}: history differs"
    assert endpoint.double_spends == 0
    for caller in callers:
        caller.cancel()
    await asyncio.gather(*callers, return_exceptions=True)


async def test_state_and_status_file_agree_after_racing_transitions(tmp_path: Path) -> None:
    store = StatusStore(tmp_path)
    rng = random.Random(20261127)
    seen: set[WorkloadStatus] = set()
    for i in range(ITERATIONS):
        await _iteration(store, i, rng)
        record = store.get(f"w{i % 7}")
        assert record is not None
        seen.add(record.status)
    # The schedule really exercised every ending.
    assert seen == set(EXPECTED_STATUS.values())
