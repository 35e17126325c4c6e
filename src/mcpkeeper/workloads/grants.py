"""A workload's stored login, as the token monitor needs it.

The monitor wants three things: the stored token (or None: never logged in), a
refresher that persists every rotated token before handing it over, and a cheap
reachability probe of the token endpoint. :class:`StoreGrantLoader` builds them from
the credential store the login flow writes; tests and the benchmark inject their own
:class:`GrantLoader`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.protocols import ReachabilityProbe, Refresher
from mcpkeeper.auth.token import Token
from mcpkeeper.durations import format_duration

__all__ = ["Grant", "GrantLoader", "StoreGrantLoader"]

log = logging.getLogger("mcpkeeper.workload")


@dataclass(frozen=True, slots=True)
class Grant:
    token: Token | None
    refresher: Refresher
    probe: ReachabilityProbe | None = None
    #: For display in the workload's config; never secrets.
    issuer: str | None = None
    client_id: str | None = None
    resource: str | None = None
    #: Why there is no token, when it is not simply "never logged in" (an unreadable store).
    reason: str | None = None


class GrantLoader(Protocol):
    def load(self, name: str) -> Grant:
        """The workload's grant; ``token`` is None when no login is stored."""
        ...


class _NoLogin:
    """Refresher of a workload without a usable login: a permanent verdict at once.

    The monitor starts ``unauthenticated`` without a token and never calls it; it is
    here so that a monitor is always complete.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token:
        raise TokenEndpointError(
            400, oauth_error="invalid_grant", description=f"no stored login for workload {self._name}"
        )


class _LoggedRefresher:
    """Says in the workload's log, at INFO, every time a refresh succeeded.

    Users ask "did it refresh?"; the monitor logs failures and recoveries, and this line
    answers the ordinary case. It names the new token's lifetime, never the token.
    """

    def __init__(self, inner: Refresher, name: str) -> None:
        self._inner = inner
        self._name = name

    async def __call__(self, token: Token) -> Token:
        fresh = await self._inner(token)
        lifetime = fresh.expires_in()
        valid = f"valid for {format_duration(lifetime)}" if lifetime is not None else "without expiry"
        rotated = "; refresh token rotated" if fresh.refresh_token != token.refresh_token else ""
        log.info("%s: token refreshed (new access token %s%s)", self._name, valid, rotated)
        return fresh


class StoreGrantLoader:
    """Grants from the credential store under ``home`` (written by ``mcpkeeper login``).

    ``http`` is the daemon's shared client, so that refreshes reuse its connection pool
    and TLS context instead of building new ones each time.
    """

    def __init__(self, home: Path, *, http: httpx.AsyncClient | None = None) -> None:
        self._store = CredentialStore.open(home)
        self._http = http

    def load(self, name: str) -> Grant:
        try:
            inputs = self._store.monitor_inputs(name, http=self._http)
        except CredentialStoreError as exc:
            return Grant(token=None, refresher=_NoLogin(name), reason=str(exc))
        if inputs is None:
            # A login found unreadable earlier (maybe by another process) is still the reason.
            earlier = self._store.secrets.quarantined(name)
            reason = f"{earlier}; run `mcpkeeper login {name}`" if earlier is not None else None
            return Grant(token=None, refresher=_NoLogin(name), reason=reason)
        login = inputs.login
        return Grant(
            token=inputs.token,
            refresher=_LoggedRefresher(inputs.refresher, name),
            probe=inputs.probe,
            issuer=login.issuer,
            client_id=login.client.client_id,
            resource=login.resource,
        )

    def forget(self, name: str) -> None:
        """Delete the stored login (``rm``), and a moved-aside unreadable one."""
        self._store.delete(name)
        self._store.secrets.discard_quarantined(name)
