"""The seams of the auth layer.

``auth`` knows nothing of workloads, proxies or files: it talks to the layers around it
through these small protocols, which is also what lets the unit tests replace every
neighbour with a fake and drive the state machine in virtual time.
"""

from __future__ import annotations

from typing import Protocol

from mcpkeeper.auth.token import Token
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["ReachabilityProbe", "Refresher", "StatusSink", "TokenProvider"]


class Refresher(Protocol):
    """Spends ``token.refresh_token`` and returns the new token set.

    Implementations persist the result *before* returning it (DESIGN §3 "Persistence"),
    and raise whatever the request raised; :func:`mcpkeeper.auth.errors.classify` decides
    what it means.
    """

    async def __call__(self, token: Token) -> Token: ...


class ReachabilityProbe(Protocol):
    """True when the token endpoint accepts a TCP connection (no HTTP request is sent)."""

    async def __call__(self) -> bool: ...


class StatusSink(Protocol):
    """Receives every status transition of one workload, in order.

    Called synchronously, in the same step as the state change it reports, so that two
    transitions can never be written in the wrong order. It must not block for long
    (a small atomic file write is fine).
    """

    def report(self, status: WorkloadStatus, reason: str) -> None: ...


class TokenProvider(Protocol):
    """What the proxy needs from the auth layer."""

    async def token(self) -> Token:
        """A token to send now, or :class:`~mcpkeeper.auth.errors.TokenUnavailableError`."""
        ...

    async def force_refresh(self, rejected: Token) -> Token:
        """The upstream rejected ``rejected`` (401): get a new one, once, single-flight."""
        ...
