"""Fakes for the monitor's neighbours: a scripted token endpoint, a recording sink, a probe.

The token endpoint fake rotates refresh tokens like the real fixture server and records
any attempt to spend a refresh token twice, so every test also checks rotation safety.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from mcpkeeper.auth import AuthState, MonitoredTokenSource, RetryConfig, Token
from mcpkeeper.auth.errors import UNREACHABLE, AttemptAbandonedError, TokenEndpointError, TokenNotSavedError
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

REQUEST_TIMEOUT = 10.0
# "ok" | "waf" | "500" | "429" | "refused" | "invalid_grant" | "invalid_client"
# | "hang" (sent, then no answer) | "hang_connect" (never sent: a black-holed SYN)
# | "unsaved" (issued, but the save fails)
Outcome = str


def error_for(outcome: Outcome) -> BaseException:
    if outcome == "waf":
        return TokenEndpointError(403, detail="with a non-OAuth body (text/html, 512 bytes)")
    if outcome == "500":
        return TokenEndpointError(500, detail="with an empty body")
    if outcome == "429":
        return TokenEndpointError(429, retry_after=30.0, detail="rate limited")
    if outcome == "refused":
        return httpx.ConnectError("[Errno 111] Connection refused")
    if outcome in ("hang", "hang_connect"):
        return httpx.ReadTimeout("timed out") if outcome == "hang" else httpx.ConnectTimeout("timed out")
    if outcome in ("invalid_grant", "invalid_client"):
        return TokenEndpointError(400, oauth_error=outcome, description="no")
    raise AssertionError(outcome)


class FakeTokenEndpoint:
    """A ``Refresher``: scripted outcomes first, then ``mode``."""

    def __init__(self, clock: VirtualClock, *, lifetime: float = 3600.0, latency: float = 0.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.latency = latency
        self.mode: Outcome = "ok"
        self.script: deque[Outcome] = deque()
        self.calls = 0
        self.spent: set[str] = set()
        self.double_spends = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._counter = itertools.count(1)
        self.current_refresh: str | None = None
        self.unsaved: list[Token] = []
        self.attempt_times: list[float] = []
        self.disk_full = True
        self.save_attempts = 0
        self.hung_sent = 0  # hung requests the server received (it may have acted on them)

    async def _retry_save(self) -> None:
        self.save_attempts += 1
        if self.disk_full:
            raise OSError(28, "No space left on device")
        self.unsaved.clear()

    async def _hang(self, outcome: Outcome, progress: RequestProgress | None) -> None:
        """What httpx does against a server that went quiet: time out, unless abandoned."""
        if outcome == "hang" and progress is not None:
            progress.sent = True
        if outcome == "hang":
            self.hung_sent += 1
        abandoned = progress.abandoned if progress is not None else asyncio.Event()
        deadline = self.clock.monotonic() + REQUEST_TIMEOUT
        if await self.clock.wait(abandoned, REQUEST_TIMEOUT):
            if progress is not None and progress.may_abandon():
                raise AttemptAbandonedError("abandoned")
            await self.clock.sleep(deadline - self.clock.monotonic())  # not honoured: wait it out
        if outcome == "hang":
            raise httpx.ReadTimeout("timed out")
        raise httpx.ConnectTimeout("timed out")

    def initial(self, *, expires_in: float | None = None) -> Token:
        return self._issue(expires_in if expires_in is not None else self.lifetime)

    def _issue(self, expires_in: float | None) -> Token:
        n = next(self._counter)
        now = self.clock.wall()
        self.current_refresh = f"rt-{n}"
        return Token(
            access_token=f"at-{n}",
            refresh_token=self.current_refresh,
            expires_at=None if expires_in is None else now + expires_in,
            issued_at=now,
        )

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token:
        self.calls += 1
        self.attempt_times.append(self.clock.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            assert token.refresh_token is not None
            if token.refresh_token in self.spent:
                self.double_spends += 1
            if self.latency:
                await self.clock.sleep(self.latency)
            outcome = self.script.popleft() if self.script else self.mode
            if outcome in ("hang", "hang_connect"):
                await self._hang(outcome, progress)
            if outcome not in ("ok", "unsaved"):
                raise error_for(outcome)
            self.spent.add(token.refresh_token)
            fresh = self._issue(self.lifetime)
            if outcome == "unsaved":
                self.unsaved.append(fresh)
                raise TokenNotSavedError(fresh, OSError(28, "No space left on device"), self._retry_save)
            return fresh
        finally:
            self.in_flight -= 1


@dataclass
class RecordingSink:
    events: list[tuple[WorkloadStatus, str]] = field(default_factory=list)
    on_report: Callable[[WorkloadStatus, str], None] | None = None

    def report(self, status: WorkloadStatus, reason: str) -> None:
        self.events.append((status, reason))
        if self.on_report is not None:
            self.on_report(status, reason)

    @property
    def statuses(self) -> list[WorkloadStatus]:
        return [s for s, _ in self.events]


#: What a token endpoint that is up answers to the probe's GET.
ANSWERING = "http 405 text/plain"


class FakeProbe:
    """Answers ``answer`` (a probe signature); ``reachable`` is the network-level shorthand."""

    def __init__(self) -> None:
        self.answer = ANSWERING
        self.calls = 0

    @property
    def reachable(self) -> bool:
        return self.answer != UNREACHABLE

    @reachable.setter
    def reachable(self, value: bool) -> None:
        self.answer = ANSWERING if value else UNREACHABLE

    async def __call__(self) -> str:
        self.calls += 1
        return self.answer


FAST = RetryConfig(
    initial_retry_interval=10.0,
    max_retry_interval=120.0,
    max_tries=5,
    max_elapsed=300.0,
    retrying_tick=600.0,
    retrying_ceiling=86400.0,
    jitter=0.0,
)


_PROBE_ANSWERS = {
    "ok": ANSWERING,
    "unsaved": ANSWERING,
    "invalid_grant": ANSWERING,
    "invalid_client": ANSWERING,
    "waf": "http 403 -",
    "500": "http 500 -",
    "429": "http 429 -",
    "refused": UNREACHABLE,
    "hang": "timeout",
    "hang_connect": "timeout",
}


class TiedProbe:
    """A probe that sees what the endpoint's current mode would show a GET (a WAF, a dead
    server and a black hole block every method); ``informative=False`` models a fault on
    POST alone, which the probe cannot see (it always answers like a healthy endpoint)."""

    def __init__(self, endpoint: FakeTokenEndpoint, *, informative: bool = True) -> None:
        self.endpoint = endpoint
        self.informative = informative
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if not self.informative:
            return ANSWERING
        return _PROBE_ANSWERS[self.endpoint.mode]


async def started(source: MonitoredTokenSource, clock: VirtualClock) -> MonitoredTokenSource:
    await source.__aenter__()
    await clock.settle()
    return source


def in_state(source: MonitoredTokenSource, state: AuthState) -> Callable[[], bool]:
    return lambda: source.state is state


async def gather_quietly(*aws: object) -> list[object]:
    return list(await asyncio.gather(*aws, return_exceptions=True))  # type: ignore[arg-type]
