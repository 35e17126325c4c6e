"""A virtual clock for exact, fast tests of time-driven code.

Time moves only when the test says so (:meth:`VirtualClock.advance`, :meth:`run_until`),
and every sleeper due in the interval wakes in deadline order with the event loop given
the chance to run everything that became ready. Hours of back-off and retrying run in
milliseconds, and "after exactly 600 s" is an assertion, not a hope.

``jump_wall`` moves the wall clock alone, which is what a suspend/resume looks like to a
Linux process (``CLOCK_MONOTONIC`` stops while the machine sleeps).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

__all__ = ["VirtualClock"]

_SETTLE_ROUNDS = 64


class VirtualClock:
    def __init__(self, *, wall: float = 1_800_000_000.0, monotonic: float = 10_000.0) -> None:
        self._mono = monotonic
        self._wall_offset = wall - monotonic
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    # -- the Clock protocol -------------------------------------------------------------
    def monotonic(self) -> float:
        return self._mono

    def wall(self) -> float:
        return self._mono + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await self._timer(seconds)

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        timer = self._timer(max(0.0, timeout))
        waiter: asyncio.Future[None] = asyncio.ensure_future(_wait_event(event))
        try:
            await asyncio.wait([timer, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            timer.cancel()
        return event.is_set()

    # -- driving time -------------------------------------------------------------------
    def jump_wall(self, seconds: float) -> None:
        """The wall clock leaps ahead while the monotonic clock does not (suspend/resume)."""
        self._wall_offset += seconds

    @property
    def pending_timers(self) -> int:
        return sum(1 for _, _, fut in self._timers if not fut.done())

    async def settle(self) -> None:
        """Let every task that can run, run (bounded: in-memory code settles in a few rounds)."""
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in deadline order."""
        target = self._mono + seconds
        await self.settle()
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0][0] > target:
                break
            deadline, _, fut = heapq.heappop(self._timers)
            self._mono = max(self._mono, deadline)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self._mono = target
        await self.settle()

    async def run_until(
        self, predicate: Callable[[], bool], *, max_seconds: float, step: float | None = None
    ) -> float:
        """Advance from timer to timer until ``predicate()`` holds; returns the virtual time spent.

        Raises ``TimeoutError`` when ``max_seconds`` of virtual time pass first, so a test
        waiting on a condition that never comes fails instead of hanging.
        """
        start = self._mono
        await self.settle()
        while not predicate():
            self._drop_cancelled()
            remaining = start + max_seconds - self._mono
            if remaining <= 0:
                raise TimeoutError(f"condition not reached within {max_seconds} virtual seconds")
            if step is not None:
                delta = min(step, remaining)
            elif self._timers:
                delta = min(max(0.0, self._timers[0][0] - self._mono), remaining)
            else:
                delta = remaining
            await self.advance(delta)
        return self._mono - start

    # -- internals ----------------------------------------------------------------------
    def _timer(self, seconds: float) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self._mono + seconds, next(self._seq), fut))
        return fut

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0][2].done():
            heapq.heappop(self._timers)


async def _wait_event(event: asyncio.Event) -> None:
    await event.wait()
