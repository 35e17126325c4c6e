"""The workload's answer to authorization the upstream asks for later (see :mod:`mcpkeeper.proxy.reauth`).

In the foreground (``mcpkeeper proxy``, a person at the terminal) a :class:`ForegroundLogin`
is given: the login runs there and then (browser, device code, whatever the command line
chose), is stored, and the workload's monitor takes it over; the proxy replays the request.

In the daemon there is none, and nothing opens a browser from the background: the request
is refused with a message saying ``mcpkeeper login NAME``, the workload's status says the
same, and the workload's config remembers what the server asked for (the challenge; the
scopes) so that ``mcpkeeper login NAME`` does that login.

Step-up (``403 insufficient_scope``) asks for the union of the scopes held and the scopes
the challenge names. The same challenge is tried a bounded number of times
(:data:`MAX_TRIES_PER_CHALLENGE`, and once only when it names nothing new): a server that
keeps refusing must not send the user through logins in a loop. Logins are one at a time;
a request that was refused with a token an earlier login has already replaced is simply
replayed with the new one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from mcpkeeper.auth.errors import TokenUnavailableError
from mcpkeeper.auth.login_errors import LoginError
from mcpkeeper.auth.protocols import TokenProvider
from mcpkeeper.auth.www_authenticate import BearerChallenge
from mcpkeeper.proxy.reauth import AuthorizationNeeded, AuthorizationRefused
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadConfig, WorkloadStore

__all__ = ["MAX_TRIES_PER_CHALLENGE", "ForegroundLogin", "WorkloadReauthorizer"]

log = logging.getLogger(__name__)

#: Logins for one and the same challenge (its scope set) over the workload's life.
MAX_TRIES_PER_CHALLENGE = 2
_MAX_CHALLENGE = 2048


class ForegroundLogin(Protocol):
    async def __call__(self, challenge: BearerChallenge | None, scopes: Sequence[str] | None) -> None:
        """Log in now (the user is there) and store the login; ``LoginError`` when it fails."""
        ...


class _Host(Protocol):
    """What the reauthorizer needs of its workload runtime."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> WorkloadConfig: ...

    def current_provider(self) -> TokenProvider | None: ...

    def held_scopes(self) -> tuple[str, ...]: ...

    def adopt_login(self) -> TokenProvider | None: ...

    def note_status(self, status: WorkloadStatus | None, reason: str) -> None: ...

    def workload_store(self) -> WorkloadStore | None: ...


class WorkloadReauthorizer:
    """The :class:`~mcpkeeper.proxy.reauth.Reauthorizer` of one workload runtime."""

    def __init__(self, host: _Host, login: ForegroundLogin | None) -> None:
        self._host = host
        self._login = login
        self._lock = asyncio.Lock()
        self._tries: dict[frozenset[str], int] = {}

    async def authorize(self, need: AuthorizationNeeded) -> TokenProvider:
        async with self._lock:
            current = self._host.current_provider()
            if current is not None and await _replaced_since(current, need):
                return current  # an earlier login (or refresh) already answered this
            scopes = self._step_up_scopes(need) if need.step_up else None
            if self._login is None:
                raise self._refusal(need, scopes)
            who = self._host.name
            log.info("%s: logging in again for %s", who, f"scopes {' '.join(scopes)}" if scopes else "access")
            try:
                await self._login(need.challenge, scopes)
            except LoginError as exc:
                raise AuthorizationRefused(
                    503, WorkloadStatus.UNAUTHENTICATED.value, f"workload {who!r}: login failed: {exc}"
                ) from None
            provider = self._host.adopt_login()
            if provider is None:
                raise AuthorizationRefused(
                    503, WorkloadStatus.UNAUTHENTICATED.value, f"workload {who!r}: the login stored no token"
                )
            return provider

    def _step_up_scopes(self, need: AuthorizationNeeded) -> tuple[str, ...]:
        """Held ∪ challenged, or :class:`AuthorizationRefused` when this challenge was tried enough."""
        held = self._host.held_scopes()
        asked = need.scopes
        key = frozenset(asked)
        tried = self._tries.get(key, 0)
        limit = MAX_TRIES_PER_CHALLENGE if not key <= set(held) else 1
        if tried >= limit:
            wanted = " ".join(asked) or "more scopes"
            raise AuthorizationRefused(
                403,
                "insufficient_scope",
                f"workload {self._host.name!r}: the server still asks for {wanted} after "
                f"{tried} login(s) for it; the authorization server does not grant it to this user",
            )
        self._tries[key] = tried + 1
        return tuple(dict.fromkeys((*held, *asked)))

    def _refusal(self, need: AuthorizationNeeded, scopes: tuple[str, ...] | None) -> AuthorizationRefused:
        """The daemon's answer: say what to run, in the reply, the status and the config."""
        name = self._host.name
        if need.step_up:
            wanted = " ".join(need.scopes) or "more scopes"
            reason = (
                f"the server asks for {wanted} for some requests; run `mcpkeeper login {name}` to grant them"
            )
            self._remember(scopes=scopes)
            self._host.note_status(None, reason)
            return AuthorizationRefused(403, "insufficient_scope", f"workload {name!r}: {reason}")
        reason = f"{self._host.config.remote_url} now asks for authorization; run `mcpkeeper login {name}`"
        self._remember(challenge=need.challenge)
        self._host.note_status(WorkloadStatus.UNAUTHENTICATED, reason)
        return AuthorizationRefused(503, WorkloadStatus.UNAUTHENTICATED.value, f"workload {name!r}: {reason}")

    def _remember(
        self, *, challenge: BearerChallenge | None = None, scopes: tuple[str, ...] | None = None
    ) -> None:
        """Keep what the server asked for in the workload's config, for ``mcpkeeper login NAME``."""
        store = self._host.workload_store()
        if store is None:
            return
        try:
            config = store.get(self._host.name)
        except CorruptStateError:
            return
        if config is None:
            return
        update: dict[str, object] = {}
        if scopes:
            update["scopes"] = list(scopes)
        if challenge is not None:
            update["auth_challenge"] = _header_of(challenge)[:_MAX_CHALLENGE]
        if update:
            store.put(config.replace(**update))


async def _replaced_since(provider: TokenProvider, need: AuthorizationNeeded) -> bool:
    """Whether the provider now serves a token other than the one the upstream refused."""
    if need.sent is None:
        return True  # there was no login when the request went out; now there is
    try:
        current = await provider.token()
    except TokenUnavailableError:  # no token now: not "replaced"; the login decides what follows
        return False
    return current.access_token != need.sent.access_token


def _header_of(challenge: BearerChallenge) -> str:
    """The challenge written back as a ``WWW-Authenticate`` value (only the parts discovery uses)."""
    parts = [
        f'{key}="{value}"'
        for key, value in (
            ("resource_metadata", challenge.resource_metadata),
            ("scope", challenge.scope),
            ("error", challenge.error),
        )
        # Rebuilt from parsed values, printable and without quotes: it parses back the same.
        if value and value.isprintable() and '"' not in value and "\\" not in value
    ]
    return f"{challenge.scheme} {', '.join(parts)}" if parts else challenge.scheme
