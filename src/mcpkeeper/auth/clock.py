"""Time, injected.

The monitor never calls ``time`` or ``asyncio.sleep`` directly: it asks a :class:`Clock`.
Production uses :class:`SystemClock`; unit tests use a virtual clock
(``mcpkeeper.testing.clock.VirtualClock``) so hours of retrying run in milliseconds and
every assertion about *when* is exact.

Two clocks are needed. ``monotonic`` orders events and measures back-off; ``wall`` is
what token expiry is expressed in. On Linux the monotonic clock stops during suspend
while the wall clock keeps going, so a jump of ``wall - monotonic`` is how the monitor
learns that the laptop slept.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        """Wait until ``event`` is set (True) or ``timeout`` seconds pass (False)."""
        ...


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def wait(self, event: asyncio.Event, timeout: float) -> bool:
        if event.is_set():
            return True
        try:
            async with asyncio.timeout(max(0.0, timeout)):
                await event.wait()
        except TimeoutError:
            return False
        return True
