"""A workload's login on disk, and the refresher that keeps it current across processes.

:class:`StoredLogin` is everything needed to refresh without the user: the token, the
client registration, the endpoints, the resource and scopes. :class:`CredentialStore`
keeps one per workload in the :class:`~mcpkeeper.state.secrets.SecretStore`.

:class:`PersistingRefresher` is the monitor's :class:`~mcpkeeper.auth.protocols.Refresher`
for one workload and carries the rotation-safety rules of architecture.md §3.6:

1. take the workload's cross-process lock (polling, so the event loop never blocks);
2. re-read the store: when another process (the daemon, a foreground ``proxy``) already
   spent the refresh token we were asked to spend, hand back its result instead of
   presenting a spent token (which a rotating server answers with ``invalid_grant``,
   killing the grant for everyone);
3. otherwise refresh, and save durably (temp file, fsync, rename) *before* returning.

Steps 2–3 run shielded from cancellation: stopping a workload in the middle of a refresh
must not drop a rotated refresh token the server has already issued.

When the save fails (disk full, read-only home), the new token set is not dropped: it is
held in memory and handed to the monitor inside :class:`TokenNotSavedError`, whose
``retry_save`` (:meth:`PersistingRefresher.flush`) the monitor calls until the disk takes
it. Until then the store is *behind* (it holds the spent refresh token) and the refresher
knows it: it refreshes from memory, unless another process stored a newer login meanwhile
(a different ``saved_at``), which wins. A failure of our own disk before the request
(reading the login, taking the lock) is a :class:`StorageError`: no token was spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

import httpx

from mcpkeeper.aio import must_finish
from mcpkeeper.auth.errors import StorageError, TokenEndpointError, TokenNotSavedError, classify
from mcpkeeper.auth.json_fields import optional_text, required_text, text_list
from mcpkeeper.auth.probe import http_probe
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.protocols import ReachabilityProbe
from mcpkeeper.auth.registration import ClientRegistration, is_registration_rejected, rejection_hint
from mcpkeeper.auth.token import Token
from mcpkeeper.auth.token_client import DEFAULT_TOKEN_TIMEOUT, TokenEndpoint
from mcpkeeper.state.locks import DEFAULT_LOCK_TIMEOUT, LockTimeout, StateLock
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.secrets import CorruptSecretError, SecretStore

__all__ = [
    "ClientCredentialsRefresher",
    "CredentialStore",
    "CredentialStoreError",
    "GrantKind",
    "MonitorInputs",
    "PersistingRefresher",
    "RefreshLockBusyError",
    "StoredLogin",
]

#: How the login was obtained, which decides how its token is renewed.
GrantKind = Literal["authorization_code", "device_code", "client_credentials"]
_GRANT_KINDS: tuple[str, ...] = get_args(GrantKind)

_log = logging.getLogger(__name__)
_FORMAT_VERSION = 1
#: A token another process stored is used instead of refreshing when it lives at least this long.
_ADOPT_MIN_LIFETIME = 30.0


class CredentialStoreError(Exception):
    """A stored login cannot be used (unreadable, or not a login); the message is one line."""


class RefreshLockBusyError(Exception):
    """Another process held the workload's refresh lock for the whole timeout (transient)."""


@dataclass(frozen=True, slots=True)
class StoredLogin:
    """One workload's login. ``token`` None means "registered, never logged in"."""

    remote_url: str
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    client: ClientRegistration
    resource: str | None = None
    scopes: tuple[str, ...] = ()
    token: Token | None = None
    registration_rejected: bool = False
    """Set when the token endpoint rejected the client: the next login registers anew."""
    saved_at: float | None = field(default=None, compare=False)
    grant: GrantKind = "authorization_code"
    """``client_credentials`` logins are renewed by asking again, the others by their refresh token."""

    @property
    def granted_scopes(self) -> tuple[str, ...]:
        """What the server granted: the token's ``scope``, else what was asked (RFC 6749 §5.1)."""
        if self.token is not None and self.token.scope is not None:
            return tuple(self.token.scope.split())
        return self.scopes

    def token_endpoint_client(
        self, *, http: httpx.AsyncClient | None = None, timeout: float = DEFAULT_TOKEN_TIMEOUT
    ) -> TokenEndpoint:
        credentials = self.client.credentials_for(self.issuer)
        return TokenEndpoint(
            self.token_endpoint, credentials, resource=self.resource, http=http, timeout=timeout
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": _FORMAT_VERSION,
            "remote_url": self.remote_url,
            "issuer": self.issuer,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "client": self.client.to_dict(),
            "resource": self.resource,
            "scopes": list(self.scopes),
            "token": self.token.to_dict() if self.token is not None else None,
            "registration_rejected": self.registration_rejected,
            "saved_at": self.saved_at,
            "grant": self.grant,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredLogin:
        """Parse a stored login; ``ValueError`` naming the first missing or bad field."""
        strings = {
            key: required_text(data, key, f"missing {key}")
            for key in ("remote_url", "issuer", "authorization_endpoint", "token_endpoint")
        }
        client = data.get("client")
        if not isinstance(client, dict):
            raise ValueError("missing client")
        token = data.get("token")
        if token is not None and not isinstance(token, dict):
            raise ValueError("token is not an object")
        saved_at = data.get("saved_at")
        grant = data.get("grant", "authorization_code")
        if grant not in _GRANT_KINDS:
            raise ValueError(f"unknown grant {str(grant)[:40]!r}")
        return cls(
            **strings,
            client=ClientRegistration.from_dict(client),
            resource=optional_text(data, "resource"),
            scopes=text_list(data, "scopes"),
            token=Token.from_dict(token) if token is not None else None,
            registration_rejected=data.get("registration_rejected") is True,
            saved_at=float(saved_at) if isinstance(saved_at, int | float) else None,
            grant=cast(GrantKind, grant),
        )


@dataclass(frozen=True, slots=True)
class MonitorInputs:
    """What a ``MonitoredTokenSource`` needs for one workload, built from its stored login."""

    token: Token | None
    refresher: PersistingRefresher
    probe: ReachabilityProbe
    login: StoredLogin


class CredentialStore:
    """Stored logins by workload name."""

    def __init__(self, secrets: SecretStore) -> None:
        self.secrets = secrets

    @classmethod
    def open(cls, root: Path | None = None) -> CredentialStore:
        """The store under ``root`` (default: the state home), with the detected backend."""
        return cls(SecretStore(root if root is not None else state_home()))

    def load(self, name: str) -> StoredLogin | None:
        """The login of ``name``; None if there is none; :class:`CredentialStoreError` if unusable.

        An unusable value is moved aside first, never overwritten by the next save.
        """
        try:
            data = self.secrets.load(name)
        except CorruptSecretError as exc:
            raise CredentialStoreError(f"{exc}; run `mcpkeeper login {name}`") from None
        if data is None:
            return None
        try:
            return StoredLogin.from_dict(data)
        except ValueError as exc:
            moved = self.secrets.move_aside(name, f"not a stored login: {exc}")
            raise CredentialStoreError(f"{moved}; run `mcpkeeper login {name}`") from None

    def save(self, name: str, login: StoredLogin) -> StoredLogin:
        """Store ``login`` durably; returns it with ``saved_at`` set."""
        stamped = replace(login, saved_at=time.time())
        self.secrets.save(name, stamped.to_dict())
        return stamped

    def delete(self, name: str) -> bool:
        return self.secrets.delete(name)

    def refresher(
        self,
        name: str,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        grant: GrantKind = "authorization_code",
    ) -> PersistingRefresher:
        kind = ClientCredentialsRefresher if grant == "client_credentials" else PersistingRefresher
        return kind(name, self, http=http, timeout=timeout)

    def monitor_inputs(
        self,
        name: str,
        *,
        http: httpx.AsyncClient | None = None,
        probe_factory: Callable[..., ReachabilityProbe] = http_probe,
    ) -> MonitorInputs | None:
        """Token, refresher and reachability probe for ``name``; None when it has no stored login.

        The daemon builds ``MonitoredTokenSource(inputs.token, inputs.refresher, sink,
        probe=inputs.probe, name=name)`` from this.
        """
        login = self.load(name)
        if login is None:
            return None
        return MonitorInputs(
            token=login.token,
            refresher=self.refresher(name, http=http, grant=login.grant),
            probe=probe_factory(login.token_endpoint, http=http),
            login=login,
        )


class PersistingRefresher:
    """The :class:`~mcpkeeper.auth.protocols.Refresher` of one workload (see the module docstring)."""

    def __init__(
        self,
        name: str,
        store: CredentialStore,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.name = name
        self._store = store
        self._http = http
        self._timeout = timeout
        self._lock_timeout = lock_timeout
        self._local = asyncio.Lock()
        #: The newest login, held in memory because saving it failed (disk full): the store
        #: still has the one it replaced, whose refresh token the server has spent.
        self._unsaved: StoredLogin | None = None
        #: ``saved_at`` of the login we last read or wrote: a different one on disk means
        #: another process (a new login, another refresher) wrote since.
        self._known_saved_at: float | None = None

    async def __call__(self, token: Token, progress: RequestProgress | None = None) -> Token:
        async with self._local:
            lock = await self._lock()
            try:
                critical = must_finish.start(self._refresh_locked(token, progress))
            except BaseException:
                lock.release()
                raise
            critical.add_done_callback(lambda _: lock.release())
            # Must finish (mcpkeeper.aio): a cancelled caller leaves the exchange to finish and
            # save its result; the file lock stays held until then, so the next caller reads
            # that result, and a process on its way out waits for it.
            return await asyncio.shield(critical)

    async def flush(self) -> None:
        """Save the login held in memory after a failed save (the monitor retries this)."""
        async with self._local:
            lock = await self._lock()
            try:
                unsaved = self._unsaved
                if unsaved is None:
                    return
                if self._changed_elsewhere():
                    self._unsaved = None  # a newer login was stored meanwhile: it wins
                    return
                self._save(unsaved)
            finally:
                lock.release()

    async def _lock(self) -> StateLock:
        lock = self._store.secrets.lock(self.name, timeout=self._lock_timeout)
        try:
            await lock.acquire_async()
        except LockTimeout as exc:
            raise RefreshLockBusyError(str(exc)) from None
        except OSError as exc:
            raise StorageError("cannot take the refresh lock", exc) from None
        return lock

    async def _refresh_locked(self, token: Token, progress: RequestProgress | None) -> Token:
        login = self._current_login()
        if login is None or login.token is None:
            raise TokenEndpointError(
                400,
                oauth_error="invalid_grant",
                description=f"no stored login for {self.name}; run `mcpkeeper login {self.name}`",
            )
        stored = login.token
        if _rotated_elsewhere(stored, token):
            _log.info("%s: refresh token already rotated by another process; using its result", self.name)
            return stored
        try:
            fresh = await self._renew(login, stored, progress)
        except TokenEndpointError as exc:
            if not is_registration_rejected(classify(exc)):
                raise
            if login.client.dynamic:  # the next `mcpkeeper login NAME` registers anew
                with contextlib.suppress(Exception):
                    self._save(replace(login, registration_rejected=True))
            # Same verdict, but its text (the monitor's status reason) now says what to do.
            raise TokenEndpointError(
                exc.status_code,
                oauth_error=exc.oauth_error,
                description=exc.description,
                retry_after=exc.retry_after,
                detail=f"- {rejection_hint(self.name, login.client.dynamic)}",
            ) from exc
        updated = replace(login, token=fresh)
        try:
            self._save(updated)
        except Exception as exc:
            # The server spent the old refresh token: dropping ``fresh`` now would lose the grant.
            self._unsaved = updated
            raise TokenNotSavedError(fresh, exc, self.flush) from exc
        return fresh

    def _current_login(self) -> StoredLogin | None:
        """The login to refresh: the store's, or the one in memory if the store is behind."""
        try:
            login = self._store.load(self.name)
        except OSError as exc:
            raise StorageError("cannot read the stored login", exc) from None
        if self._unsaved is not None:
            if login is None or login.saved_at == self._known_saved_at:
                return self._unsaved  # the disk still has what we replaced: memory is newer
            self._unsaved = None  # a newer login was stored meanwhile: it wins
        self._known_saved_at = login.saved_at if login is not None else None
        return login

    def _changed_elsewhere(self) -> bool:
        try:
            login = self._store.load(self.name)
        except OSError as exc:
            raise StorageError("cannot read the stored login", exc) from None
        return login is not None and login.saved_at != self._known_saved_at

    def _save(self, login: StoredLogin) -> None:
        saved = self._store.save(self.name, login)
        self._known_saved_at = saved.saved_at
        self._unsaved = None

    async def _renew(self, login: StoredLogin, stored: Token, progress: RequestProgress | None) -> Token:
        """The token request proper: spend the refresh token."""
        endpoint = login.token_endpoint_client(http=self._http, timeout=self._timeout)
        return await endpoint.refresh(stored, progress=progress)


class ClientCredentialsRefresher(PersistingRefresher):
    """The refresher of a client-credentials login: ask for a new token with the client's credentials.

    There is no refresh token to spend (nor to lose), but the rest holds: one request at a
    time across processes, a token another process just got is used instead, and the new
    token is on disk before anyone uses it. The monitor schedules it ahead of expiry like a
    refresh, because the token says it is :attr:`~mcpkeeper.auth.token.Token.renewable`.
    """

    async def _renew(self, login: StoredLogin, stored: Token, progress: RequestProgress | None) -> Token:
        endpoint = login.token_endpoint_client(http=self._http, timeout=self._timeout)
        return await endpoint.client_credentials(scope=" ".join(login.scopes) or None, progress=progress)


def _rotated_elsewhere(stored: Token, asked: Token) -> bool:
    """Whether the store already holds a newer token than the one we were asked to refresh."""
    if stored.refresh_token != asked.refresh_token:
        return True
    # Same (non-rotating) refresh token, but someone else already got a fresh access token.
    if stored.access_token == asked.access_token:
        return False
    remaining = stored.expires_in()
    return remaining is None or remaining > _ADOPT_MIN_LIFETIME
