"""The seams of the auth layer.

``auth`` knows nothing of workloads, proxies or files: it talks to the layers around it
through these small protocols, which is also what lets the unit tests replace every
neighbour with a fake and drive the state machine in virtual time.
"""

from __future__ import annotations

from typing import Protocol

from mcpkeeper.auth.errors import Failure
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.token import Token
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["NO_OBSERVER", "MonitorObserver", "ReachabilityProbe", "Refresher", "StatusSink", "TokenProvider"]


class Refresher(Protocol):
    """Spends ``token.refresh_token`` and returns the new token set.

    Implementations persist the result *before* returning it (docs/architecture.md,
    "Persistence and rotation"), or raise :class:`~mcpkeeper.auth.errors.TokenNotSavedError`
    carrying it; otherwise they raise whatever the request raised, and
    :func:`mcpkeeper.auth.errors.classify` decides what it means. ``progress`` reports
    whether the request was sent and carries the monitor's request to abandon it.
    """

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token: ...


class ReachabilityProbe(Protocol):
    """What the token endpoint answers right now, as a short signature; spends nothing.

    ``"unreachable"`` (DNS, refused, reset), ``"timeout"``, or ``"http <status> <media type>"``
    for an HTTP answer to a GET of the endpoint (a real token endpoint says 405 or 400, a
    WAF its block page, a proxy 502). The monitor compares signatures over time: a change
    while callers are blocked means the cause may have cleared (see the monitor's docstring).
    """

    async def __call__(self) -> str: ...


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


class MonitorObserver(Protocol):
    """Told of every refresh attempt the monitor makes, for metrics (``mcpkeeper.api.metrics``).

    ``auth`` knows nothing of Prometheus: the daemon passes an observer in, everything
    else gets :data:`NO_OBSERVER`. Called synchronously from the monitor's background task
    (never from the hot path, :meth:`MonitoredTokenSource.token`); it must not block.
    Status transitions are not repeated here: they already reach the :class:`StatusSink`.
    """

    def attempt_finished(self, failure: Failure | None, seconds: float) -> None:
        """One token request ended: ``failure`` None for a new token, else how it failed;
        ``seconds`` from sending to the outcome (monotonic)."""
        ...


class _NoObserver:
    def attempt_finished(self, failure: Failure | None, seconds: float) -> None:
        return None


#: The observer of a monitor nobody watches.
NO_OBSERVER: MonitorObserver = _NoObserver()
