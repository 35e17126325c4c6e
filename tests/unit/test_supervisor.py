"""The supervisor's restart schedule, in virtual time."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from mcpkeeper.testing.clock import VirtualClock
from mcpkeeper.workloads.supervisor import RestartPolicy, Supervisor


@dataclass
class Recorder:
    """SupervisorEvents that remembers everything it was told."""

    crashes: list[tuple[str, float, int, int]] = field(default_factory=list)
    gave_up_with: list[tuple[str, int]] = field(default_factory=list)

    def crashed(self, reason: str, restart_in: float, crashes: int, limit: int) -> None:
        self.crashes.append((reason, restart_in, crashes, limit))

    def gave_up(self, reason: str, crashes: int) -> None:
        self.gave_up_with.append((reason, crashes))


class Body:
    """A workload body that runs ``run_for`` virtual seconds per start, then crashes (or not)."""

    def __init__(self, clock: VirtualClock, run_for: float = 0.0, crash: bool = True) -> None:
        self.clock = clock
        self.run_for = run_for
        self.crash = crash
        self.starts: list[float] = []

    async def __call__(self) -> None:
        self.starts.append(self.clock.monotonic())
        if self.run_for:
            await self.clock.sleep(self.run_for)
        if self.crash:
            raise ConnectionError("proxy server died")


async def _cancelled(task: asyncio.Task[None]) -> None:
    """Cancel a supervisor that would run forever; it must end by that cancellation."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_crash_loop_backs_off_5s_doubling_to_60s_and_gives_up_after_10_restarts() -> None:
    clock = VirtualClock()
    body, events = Body(clock), Recorder()
    sup = Supervisor(body, events, stop_requested=asyncio.Event(), clock=clock, name="w")
    task = asyncio.create_task(sup.run())

    await clock.run_until(task.done, max_seconds=3600)

    assert [delay for _, delay, _, _ in events.crashes] == [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]
    assert [n for _, _, n, _ in events.crashes] == list(range(1, 11))
    assert {limit for _, _, _, limit in events.crashes} == {10}
    assert events.gave_up_with == [("ConnectionError: proxy server died", 11)]
    # 1 start + 10 restarts, each restart exactly after its back-off.
    gaps = [b - a for a, b in zip(body.starts, body.starts[1:], strict=False)]
    assert len(body.starts) == 11
    assert gaps == [5, 10, 20, 40, 60, 60, 60, 60, 60, 60]
    task.result()


async def test_a_run_stable_for_30s_resets_the_crash_count() -> None:
    clock = VirtualClock()
    body, events = Body(clock, run_for=30.0), Recorder()
    sup = Supervisor(body, events, stop_requested=asyncio.Event(), clock=clock, name="w")
    task = asyncio.create_task(sup.run())

    await clock.run_until(lambda: len(events.crashes) >= 25, max_seconds=3600)

    assert not task.done()
    assert {(delay, n) for _, delay, n, _ in events.crashes} == {(5.0, 1)}
    assert events.gave_up_with == []
    await _cancelled(task)


async def test_short_runs_keep_counting_until_a_stable_one() -> None:
    clock = VirtualClock()
    events = Recorder()
    durations = iter([1.0, 1.0, 1.0, 31.0, 1.0])

    async def body() -> None:
        await clock.sleep(next(durations))
        raise RuntimeError("boom")

    sup = Supervisor(body, events, stop_requested=asyncio.Event(), clock=clock, name="w")
    task = asyncio.create_task(sup.run())
    await clock.run_until(lambda: len(events.crashes) == 5, max_seconds=3600)

    assert [n for _, _, n, _ in events.crashes] == [1, 2, 3, 1, 2]
    assert [d for _, d, _, _ in events.crashes] == [5, 10, 20, 5, 10]
    await _cancelled(task)


async def test_stop_during_backoff_ends_without_another_start() -> None:
    clock = VirtualClock()
    body, events = Body(clock), Recorder()
    stop = asyncio.Event()
    sup = Supervisor(body, events, stop_requested=stop, clock=clock, name="w")
    task = asyncio.create_task(sup.run())
    await clock.run_until(lambda: len(events.crashes) == 1, max_seconds=10)

    stop.set()
    await clock.run_until(task.done, max_seconds=1)

    assert len(body.starts) == 1
    assert events.gave_up_with == []
    task.result()


async def test_a_body_that_returns_after_a_stop_request_is_a_clean_exit() -> None:
    clock = VirtualClock()
    stop = asyncio.Event()
    events = Recorder()

    async def body() -> None:
        await stop.wait()

    sup = Supervisor(body, events, stop_requested=stop, clock=clock, name="w")
    task = asyncio.create_task(sup.run())
    await clock.settle()
    stop.set()
    await clock.run_until(task.done, max_seconds=1)

    assert events.crashes == [] and events.gave_up_with == []


async def test_a_body_that_returns_unasked_counts_as_a_crash() -> None:
    clock = VirtualClock()
    body, events = Body(clock, crash=False), Recorder()
    sup = Supervisor(body, events, stop_requested=asyncio.Event(), clock=clock, name="w")
    task = asyncio.create_task(sup.run())
    await clock.run_until(lambda: len(events.crashes) == 1, max_seconds=1)

    assert events.crashes[0][0] == "the workload stopped by itself"
    await _cancelled(task)


async def test_an_error_raised_while_stopping_is_not_a_crash() -> None:
    clock = VirtualClock()
    stop = asyncio.Event()
    events = Recorder()

    async def body() -> None:
        await stop.wait()
        raise RuntimeError("closing connections failed")

    sup = Supervisor(body, events, stop_requested=stop, clock=clock, name="w")
    task = asyncio.create_task(sup.run())
    await clock.settle()
    stop.set()
    await clock.run_until(task.done, max_seconds=1)

    assert events.crashes == [] and events.gave_up_with == []
    task.result()


def test_backoff_table() -> None:
    policy = RestartPolicy()
    assert [policy.backoff(n) for n in range(1, 8)] == [5, 10, 20, 40, 60, 60, 60]
    custom = RestartPolicy(initial_backoff=0.1, max_backoff=0.3)
    assert [custom.backoff(n) for n in range(1, 5)] == [0.1, 0.2, 0.3, 0.3]
