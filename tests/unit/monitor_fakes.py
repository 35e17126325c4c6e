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
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.testing.clock import VirtualClock

REQUEST_TIMEOUT = 30.0
Outcome = str  # "ok" | "waf" | "500" | "429" | "refused" | "invalid_grant" | "invalid_client" | "hang"


def error_for(outcome: Outcome) -> BaseException:
    if outcome == "waf":
        return TokenEndpointError(403, detail="with a non-OAuth body (text/html, 512 bytes)")
    if outcome == "500":
        return TokenEndpointError(500, detail="with an empty body")
    if outcome == "429":
        return TokenEndpointError(429, retry_after=30.0, detail="rate limited")
    if outcome == "refused":
        return httpx.ConnectError("[Errno 111] Connection refused")
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

    async def __call__(self, token: Token) -> Token:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            assert token.refresh_token is not None
            if token.refresh_token in self.spent:
                self.double_spends += 1
            if self.latency:
                await self.clock.sleep(self.latency)
            outcome = self.script.popleft() if self.script else self.mode
            if outcome == "hang":
                # What httpx does to a server that accepted and went quiet: time out.
                await self.clock.sleep(REQUEST_TIMEOUT)
                raise httpx.ReadTimeout("timed out")
            if outcome != "ok":
                raise error_for(outcome)
            self.spent.add(token.refresh_token)
            return self._issue(self.lifetime)
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


class FakeProbe:
    def __init__(self) -> None:
        self.reachable = True
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.reachable


FAST = RetryConfig(
    initial_retry_interval=10.0,
    max_retry_interval=120.0,
    max_tries=5,
    max_elapsed=300.0,
    retrying_tick=600.0,
    retrying_ceiling=86400.0,
    jitter=0.0,
)


async def started(source: MonitoredTokenSource, clock: VirtualClock) -> MonitoredTokenSource:
    await source.__aenter__()
    await clock.settle()
    return source


def in_state(source: MonitoredTokenSource, state: AuthState) -> Callable[[], bool]:
    return lambda: source.state is state


async def gather_quietly(*aws: object) -> list[object]:
    return list(await asyncio.gather(*aws, return_exceptions=True))  # type: ignore[arg-type]
