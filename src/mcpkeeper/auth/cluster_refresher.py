"""The refresher of a gateway replica: one refresh per rotation across every replica.

Each replica runs the same :class:`~mcpkeeper.auth.monitor.MonitoredTokenSource` per
workload, with its ordinary schedule (refresh-ahead, short retry, ``auth_retrying``, the
ceiling, the recovery triggers). What makes them *one monitor per grant across the
cluster* is this refresher, in the same place as :class:`~.credentials.PersistingRefresher`
for processes sharing a disk, with the same rule: **re-read before spending, and never
spend a token another may have spent**. Asked to refresh ``token``:

1. **Re-read** the login from the store (Redis itself, not the mirror). If it already
   holds a newer token (another replica refreshed), return that one: the monitor applies
   it as its own success, so adopting costs nothing at the token endpoint.
2. **Take the lease** of the grant (:mod:`mcpkeeper.state.redis_lease`): a fencing token
   from a monotonic counter. Another replica holds it: wait for its result (pub/sub wakes
   us at once, a re-read every 250 ms is the fallback) and adopt it; if its attempt
   *failed*, raise the same classified failure (the holder recorded it): the follower's
   monitor goes through the same states without a request of its own, so an outage costs
   the server one attempt per retry, not one per replica; if the holder's lease runs out
   (it died), try to take it ourselves; past ``request_timeout`` + two lease
   TTLs give up with a transient error (the monitor retries on its schedule).
3. **Re-read again** under the lease (the previous holder may have committed just
   before releasing), then announce the request (``inflight``: fence, a digest of the
   refresh token, Redis's time) and send it, renewing the lease meanwhile.
4. **Commit** the new token set with a compare-and-set on the generation (written only
   if the stored one is older than our fence, for the same grant), which publishes the
   change to every replica. Only then is the token returned. A store that fails at
   this point raises :class:`~.errors.TokenNotSavedError` carrying the token, as a full
   disk does: the monitor serves it and retries :meth:`ClusterRefresher.flush`.

The dead holder. A replica killed mid-refresh loses its lease when the TTL runs out;
the next holder finds its ``inflight`` marker naming the refresh token it is itself
about to spend. The request may or may not have reached the server; if it did, a
strict server rotated the token and the response died with the replica. The rule:

* send the token again only when that cannot be reuse: the server does not rotate
  refresh tokens (the stored login says the last refresh kept it), or the operator
  declared the server's reuse grace (``MCPKEEPER_TOKEN_REFRESH_REUSE_GRACE``) and the
  marker is younger than it (by Redis's clock);
* otherwise wait, up to ``request_timeout`` + two lease TTLs from when this replica
  first saw the marker, for a holder that was only cut off from Redis to commit what it
  holds; then end the grant with a reason that says why (``unauthenticated``: a login
  is needed). It is never sent again.

The residual risk, stated plainly: against a server with strict rotation and no reuse
grace, a replica that dies after sending a refresh and before committing its result
costs the grant (the token the server issued is gone with it; nothing a client can do
recovers it without reuse). The window is the request's round trip plus one Redis write;
a server with a reuse grace, declared to mcpkeeper, closes it. A second, smaller one:
Redis restarted *without persistence* while a replica's mirror lags behind the newest
token; replicas re-publish what they hold and the highest generation wins, but if the
only replica holding the newest one dies in that window, an older (spent) token is what
remains (run Redis with persistence, as deploy/ does).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import replace

import httpx
from redis.exceptions import RedisError

from mcpkeeper.aio import must_finish
from mcpkeeper.auth.credentials import GrantKind, StoredLogin, _rotated_elsewhere
from mcpkeeper.auth.errors import (
    Failure,
    FailureKind,
    PeerRefreshFailedError,
    PeerRefreshPendingError,
    RefreshInDoubtError,
    SharedStoreError,
    TokenEndpointError,
    TokenNotSavedError,
    classify,
)
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import DEFAULT_TOKEN_TIMEOUT
from mcpkeeper.state.redis_lease import GrantLeases, Lease, token_digest
from mcpkeeper.state.redis_store import LoginEntry, RedisStore

__all__ = ["ClusterRefresher"]

_log = logging.getLogger(__name__)
_FOLLOW_POLL = 0.25


class ClusterRefresher:
    """The :class:`~mcpkeeper.auth.protocols.Refresher` of one workload on a gateway replica."""

    def __init__(
        self,
        name: str,
        store: RedisStore,
        leases: GrantLeases,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        reuse_grace: float = 0.0,
        grant: GrantKind = "authorization_code",
    ) -> None:
        self.name = name
        self._store = store
        self._leases = leases
        self._http = http
        self._timeout = timeout
        self._reuse_grace = reuse_grace
        self._grant_kind = grant
        self._local = asyncio.Lock()
        #: A refreshed login the store did not take (Redis down at the commit): fence, text, grant.
        self._unsaved: tuple[int, str, str, bool] | None = None
        #: Monotonic time this replica first saw an orphaned in-flight marker, by its fence.
        self._doubt_seen: dict[int, float] = {}

    @property
    def _wait_limit(self) -> float:
        return self._timeout + 2 * self._leases.ttl

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token:
        async with self._local:
            # Must finish, like PersistingRefresher: a stopped workload must not drop a
            # token the server already rotated; the commit finishes on its own.
            return await must_finish.run(self._refresh(token, progress))

    async def flush(self) -> None:
        """Commit the login held after a failed commit (the monitor retries this)."""
        unsaved = self._unsaved
        if unsaved is None:
            return
        fence, text, grant, rotates = unsaved
        try:
            done = await self._leases.commit(self.name, fence, text, grant, rotates=rotates)
        except (RedisError, OSError) as exc:
            raise SharedStoreError(exc) from None
        self._unsaved = None
        if not done:
            _log.warning("%s: a newer login was stored meanwhile; it wins over the unsaved one", self.name)

    # ------------------------------------------------------------------ steps --
    async def _refresh(self, token: Token, progress: RequestProgress | None) -> Token:
        try:
            return await self._coordinate(token, progress)
        except (RedisError, OSError) as exc:
            raise SharedStoreError(exc) from None

    async def _coordinate(self, token: Token, progress: RequestProgress | None) -> Token:
        deadline = time.monotonic() + self._wait_limit
        changed = self._store.login_changed(self.name)
        waited = False
        while True:
            changed.clear()
            _, login = await self._read()
            if login.token is not None and _rotated_elsewhere(login.token, token):
                _log.info("%s: another replica refreshed; using its token", self.name)
                return login.token
            if waited and login.token is not None:
                await self._follow_failure(login.token)
            held = await self._leases.acquire(self.name)
            if isinstance(held, Lease):
                try:
                    return await self._as_holder(held, token, progress)
                finally:
                    await held.release()
            waited = True
            if time.monotonic() >= deadline:
                raise PeerRefreshPendingError(
                    f"another gateway replica holds the refresh of {self.name} and has not finished"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(_FOLLOW_POLL, max(0.01, held))):
                    await changed.wait()

    async def _follow_failure(self, stored: Token) -> None:
        """The holder we waited on failed with the same token: its verdict is ours (no request)."""
        outcome = await self._leases.last_failure(self.name, _digest_of(stored))
        if outcome is None:
            return
        try:
            failure = Failure(
                FailureKind(str(outcome["kind"])),
                str(outcome["reason"]),
                network=bool(outcome.get("network")),
                retry_after=_float_or_none(outcome.get("retry_after")),
                oauth_error=_str_or_none(outcome.get("oauth_error")),
                signature=_str_or_none(outcome.get("signature")),
            )
        except (KeyError, ValueError):
            return
        raise PeerRefreshFailedError(failure)

    async def _record_failure(self, stored: Token, exc: BaseException) -> None:
        failure = classify(exc)
        if failure.kind is FailureKind.CANCELLED:
            return
        with contextlib.suppress(RedisError, OSError):
            await self._leases.record_failure(
                self.name,
                _digest_of(stored),
                {
                    "kind": failure.kind.value,
                    "reason": failure.reason,
                    "network": failure.network,
                    "retry_after": failure.retry_after,
                    "oauth_error": failure.oauth_error,
                    "signature": failure.signature,
                },
            )

    async def _read(self) -> tuple[LoginEntry, StoredLogin]:
        """The login as Redis holds it now; re-published from memory if Redis lost it."""
        entry = await self._store.refresh_login(self.name)
        if entry is None:
            raise TokenEndpointError(
                400,
                oauth_error="invalid_grant",
                description=f"no stored login for {self.name}; run `mcpkeeper login {self.name}`",
            )
        try:
            return entry, StoredLogin.from_dict(json.loads(entry.text))
        except ValueError as exc:
            raise TokenEndpointError(
                400,
                oauth_error="invalid_grant",
                description=f"the stored login of {self.name} is unusable: {exc}",
            ) from None

    async def _as_holder(self, lease: Lease, token: Token, progress: RequestProgress | None) -> Token:
        entry, login = await self._read()
        stored = login.token
        assert stored is not None
        if _rotated_elsewhere(stored, token):
            return stored
        digest = _digest_of(stored)
        await self._check_orphan(entry, digest, lease.fence)
        if not await self._leases.mark_inflight(lease, digest):
            raise PeerRefreshPendingError(f"lost the refresh lease of {self.name} before sending")
        lease.keep_alive()
        try:
            fresh = await self._renew(login, stored, progress)
        except BaseException as exc:
            # Alive to see the outcome: the monitor's own rules decide what comes next, and
            # the replicas that waited on this attempt follow the same verdict.
            if isinstance(exc, Exception):
                await self._record_failure(stored, exc)
            with contextlib.suppress(RedisError, OSError):
                await self._leases.clear_inflight(lease)
            raise
        rotates = fresh.refresh_token != stored.refresh_token
        text = json.dumps(replace(login, token=fresh, saved_at=time.time()).to_dict())
        try:
            done = await self._leases.commit(self.name, lease.fence, text, entry.grant, rotates=rotates)
        except (RedisError, OSError) as exc:
            self._unsaved = (lease.fence, text, entry.grant, rotates)
            raise TokenNotSavedError(fresh, SharedStoreError(exc), self.flush) from exc
        if not done:
            _, newer_login = await self._read()
            _log.warning("%s: a newer login was stored while refreshing; using it", self.name)
            if newer_login.token is not None:
                return newer_login.token
        return fresh

    async def _check_orphan(self, entry: LoginEntry, digest: str, fence: int) -> None:
        """Apply the dead-holder rule (module docstring) to a marker left for our token."""
        marker = await self._leases.inflight(self.name)
        if marker is None or marker.digest != digest or marker.fence >= fence:
            return
        if entry.rotates is False:
            _log.info(
                "%s: a replica stopped mid-refresh; the server keeps refresh tokens, sending again", self.name
            )
            return
        if self._reuse_grace > 0 and marker.age < self._reuse_grace:
            _log.warning(
                "%s: a replica stopped mid-refresh %.1fs ago; sending the token again within the "
                "server's reuse grace",
                self.name,
                marker.age,
            )
            return
        first = self._doubt_seen.setdefault(marker.fence, time.monotonic())
        if time.monotonic() - first < self._wait_limit:
            raise PeerRefreshPendingError(
                f"a refresh of {self.name} by another replica may still be saved; waiting for it"
            )
        raise RefreshInDoubtError(
            "a gateway replica stopped after sending a refresh whose result was never stored; the "
            "server may have rotated the refresh token, so it is not sent again (strict rotation, no "
            "reuse grace declared)"
        )

    async def _renew(self, login: StoredLogin, stored: Token, progress: RequestProgress | None) -> Token:
        endpoint = login.token_endpoint_client(http=self._http, timeout=self._timeout)
        if self._grant_kind == "client_credentials":
            return await endpoint.client_credentials(scope=" ".join(login.scopes) or None, progress=progress)
        return await endpoint.refresh(stored, progress=progress)


def _digest_of(token: Token) -> str:
    return token_digest(token.refresh_token or token.access_token)


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None
