"""Restarts a workload that crashed, with back-off, and knows when to give up.

A workload's body (its proxy server plus token monitor) is expected to run until it
is asked to stop. If it ends any other way (an exception, or a return nobody asked
for) that is a crash: the supervisor waits 5 s, 10 s, 20 s … up to 60 s between
restarts and gives up after 10 crashes in a row with status ``error``. A body that ran
stably for 30 s before crashing starts the count afresh, so a workload that crashes
once a day is restarted forever while a crash loop is not.

Time comes from an injected :class:`~mcpkeeper.auth.clock.Clock`, so the unit tests
run the whole schedule in virtual time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mcpkeeper.auth.clock import Clock, SystemClock

__all__ = ["RestartPolicy", "Supervisor", "SupervisorEvents"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    initial_backoff: float = 5.0
    max_backoff: float = 60.0
    max_restarts: int = 10
    stable_after: float = 30.0

    def backoff(self, crashes: int) -> float:
        """Delay before the restart that follows crash number ``crashes`` (1-based)."""
        return float(min(self.initial_backoff * 2.0 ** (crashes - 1), self.max_backoff))


class SupervisorEvents(Protocol):
    """What the supervisor tells its owner (which turns it into statuses)."""

    def crashed(self, reason: str, restart_in: float, crashes: int, limit: int) -> None: ...

    def gave_up(self, reason: str, crashes: int) -> None: ...


class _Crash(Exception):
    """The body returned although nobody asked it to stop."""


class Supervisor:
    """Runs ``body`` until it ends cleanly, restarting it on crashes.

    ``body`` ends cleanly by returning after ``stop_requested`` was set; cancelling
    :meth:`run` stops everything at once without counting as a crash.
    """

    def __init__(
        self,
        body: Callable[[], Awaitable[None]],
        events: SupervisorEvents,
        *,
        stop_requested: asyncio.Event,
        policy: RestartPolicy | None = None,
        clock: Clock | None = None,
        name: str = "",
    ) -> None:
        self._body = body
        self._events = events
        self._stop_requested = stop_requested
        self._policy = policy or RestartPolicy()
        self._clock = clock or SystemClock()
        self._name = name
        self.crashes = 0

    async def run(self) -> None:
        """Returns when the body ended on request, or after giving up (status ``error``)."""
        policy = self._policy
        while not self._stop_requested.is_set():
            started = self._clock.monotonic()
            try:
                await self._body()
                if self._stop_requested.is_set():
                    return
                raise _Crash("the workload stopped by itself")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._stop_requested.is_set():
                    log.info("workload %s raised while stopping: %s", self._name, _describe(exc))
                    return
                reason = _describe(exc)
            if self._clock.monotonic() - started >= policy.stable_after:
                self.crashes = 0
            self.crashes += 1
            if self.crashes > policy.max_restarts:
                log.error(
                    "workload %s crashed %d times in a row; giving up: %s", self._name, self.crashes, reason
                )
                self._events.gave_up(reason, self.crashes)
                return
            delay = policy.backoff(self.crashes)
            log.warning(
                "workload %s crashed (%s); restart %d/%d in %.0fs",
                self._name,
                reason,
                self.crashes,
                policy.max_restarts,
                delay,
            )
            self._events.crashed(reason, delay, self.crashes, policy.max_restarts)
            if await self._clock.wait(self._stop_requested, delay):
                return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _Crash):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__
