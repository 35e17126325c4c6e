"""The authorization server a scenario runs against: oidc-provider behind our fault proxy, or
our own fixture AS; both seen through one small interface (switch, arm, what reached /token)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from mcpkeeper.testing.counters import TokenCounters
from tests.thirdparty.outage_model import OutageSpec, now

# -- backends ---------------------------------------------------------------------------------


class ScenarioBackend(Protocol):
    mcp_url: str

    async def switch(self, mode: str) -> None: ...

    async def arm(self, mode: str) -> None: ...

    def fault_since(self) -> float | None: ...

    def token_requests(self) -> list[tuple[float, str, str, str]]: ...

    def spent_token_reuse(self) -> int: ...

    def echoed_digests(self) -> list[str]: ...


class OidcBackend:
    def __init__(self, stack: Any) -> None:
        self._stack = stack
        self.mcp_url: str = stack.mcp_url

    async def switch(self, mode: str) -> None:
        await self._stack.faults.set_fault(mode, retry_after=5)

    async def arm(self, mode: str) -> None:
        await self._stack.faults.set_fault(mode, retry_after=5, on_next_refresh=True)

    def fault_since(self) -> float | None:
        since: float | None = self._stack.faults.fault_since
        return since

    def token_requests(self) -> list[tuple[float, str, str, str]]:
        return [(r.at, r.grant_type, r.fault, r.outcome) for r in self._stack.faults.requests]

    def spent_token_reuse(self) -> int:
        return int(self._stack.faults.counters.spent_token_reuse)

    def echoed_digests(self) -> list[str]:
        return [
            r.presented
            for r in self._stack.faults.requests
            if r.fault == "echo_refresh_token" and r.presented
        ]


class _RequestLog(TokenCounters):
    """The fixture AS's counters, plus each request's (arrival, grant, fault, outcome)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[list[Any]] = []

    def record_request(self, grant_type: str, fault: str, when: float) -> None:
        super().record_request(grant_type, fault, when)
        self.log.append([when, grant_type, fault, ""])

    def record_outcome(self, outcome: str) -> None:
        super().record_outcome(outcome)
        # Answers come in arrival order except for held (hang) requests, which are all alike.
        entry = next((e for e in self.log if not e[3]), None)
        if entry is not None:
            entry[3] = outcome


class FixtureBackend:
    """Our own fixture AS and MCP server: built-in faults, switched at the predicted time.

    Its ``hang`` releases held requests with a 503 on restore, so a client never waits out
    a hung attempt there: its hang figures are kinder than the oidc backend's.
    """

    def __init__(self, auth: Any, mcp: Any) -> None:
        self._auth = auth
        self._log = _RequestLog()
        auth.counters = self._log
        self.mcp_url: str = mcp.url
        self._since: float | None = None

    async def switch(self, mode: str) -> None:
        await self._auth.set_fault(mode, retry_after=5)
        self._since = None if mode == "ok" else now()

    async def arm(self, mode: str) -> None:
        raise NotImplementedError("the fixture AS cannot arm a fault on a request: switch it at a time")

    def fault_since(self) -> float | None:
        return self._since

    def token_requests(self) -> list[tuple[float, str, str, str]]:
        return [(e[0], e[1], e[2], e[3]) for e in self._log.log]

    def spent_token_reuse(self) -> int:
        return int(self._log.spent_token_reuse)

    def echoed_digests(self) -> list[str]:
        return []


@contextlib.asynccontextmanager
async def open_backend(spec: OutageSpec, work: Path) -> AsyncIterator[ScenarioBackend]:
    if spec.backend == "oidc":
        from tests.thirdparty.oidc import OidcStack

        async with OidcStack(access_token_ttl=spec.access_ttl, workdir=work) as stack:
            yield OidcBackend(stack)
    else:
        from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer

        async with (
            FixtureAuthServer(access_token_lifetime=spec.access_ttl) as auth,
            FixtureMCPServer(auth) as mcp,
        ):
            yield FixtureBackend(auth, mcp)


def ok_refreshes(backend: ScenarioBackend, since: float = 0.0) -> list[float]:
    return [
        at
        for at, grant, _, outcome in backend.token_requests()
        if grant == "refresh_token" and outcome == "ok" and at >= since
    ]
