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

from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError, GrantKind
from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.protocols import ReachabilityProbe, Refresher
from mcpkeeper.auth.token import Token
from mcpkeeper.state.store import Store

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
    #: The scopes the login holds (granted, else requested), for step-up authorization.
    scopes: tuple[str, ...] = ()


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


class StoreGrantLoader:
    """Grants from the credential store under ``home`` (written by ``mcpkeeper login``).

    ``http`` is the daemon's shared client, so that refreshes reuse its connection pool
    and TLS context instead of building new ones each time.
    """

    def __init__(
        self, home: Path, *, http: httpx.AsyncClient | None = None, store: Store | None = None
    ) -> None:
        self._backing = store
        self._store = CredentialStore(store.secrets) if store is not None else CredentialStore.open(home)
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
        refresher: Refresher = inputs.refresher
        probe: ReachabilityProbe = inputs.probe
        if self._backing is not None and self._backing.shared:
            refresher, probe = _cluster_parts(self._backing, name, login.grant, self._http, probe)
        return Grant(
            token=inputs.token,
            refresher=refresher,
            probe=probe,
            issuer=login.issuer,
            client_id=login.client.client_id,
            resource=login.resource,
            scopes=login.granted_scopes,
        )

    def forget(self, name: str) -> None:
        """Delete the stored login (``rm``), and a moved-aside unreadable one."""
        self._store.delete(name)
        self._store.secrets.discard_quarantined(name)


def _cluster_parts(
    store: Store, name: str, grant: GrantKind, http: httpx.AsyncClient | None, token_probe: ReachabilityProbe
) -> tuple[Refresher, ReachabilityProbe]:
    """A gateway replica's refresher (one refresh per rotation across replicas) and a probe
    that asks the shared store first: while it is down the monitor's probe sees
    ``unreachable``, and its return is the change that triggers an attempt."""
    from mcpkeeper.auth.cluster_refresher import ClusterRefresher
    from mcpkeeper.auth.errors import UNREACHABLE
    from mcpkeeper.state.store import SharedStore

    assert isinstance(store, SharedStore)
    config = RetryConfig.from_env()
    refresher = ClusterRefresher(
        name,
        store.redis,
        store.leases,
        http=http,
        timeout=config.request_timeout,
        reuse_grace=config.reuse_grace,
        grant=grant,
    )

    async def probe() -> str:
        if not await store.redis.ping():
            return UNREACHABLE
        return await token_probe()

    return refresher, probe
