"""Browser logins the daemon starts for its workloads, and reports instead of opening.

The daemon never opens a browser (it may run under systemd, over SSH, as a service):
``POST /workloads/{name}/login`` (and ``POST /workloads`` with ``"login": true``) start a
PKCE login here and answer with its authorization URL as soon as it is known; whoever
asked (the dashboard, a script, a ToolHive-style UI) opens it in the user's browser.
The loopback callback of the login runs in the daemon; when the browser comes back the
code is exchanged, the login stored, and the workload reloads it
(``unauthenticated -> running`` in place, as after ``mcpkeeper login NAME``).

One login per workload at a time: asking again while one waits returns the same URL.
Each is bounded (:data:`~mcpkeeper.auth.login.DEFAULT_LOGIN_TIMEOUT`), and the daemon's
shutdown cancels every one. Only the browser login runs here: a service account or a
device-code login is the CLI's (``mcpkeeper login NAME``), and the refusal says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError, StoredLogin
from mcpkeeper.auth.login import DEFAULT_LOGIN_TIMEOUT, LoginResult, perform_login
from mcpkeeper.auth.login_errors import LoginError
from mcpkeeper.auth.www_authenticate import parse_www_authenticate_or_none
from mcpkeeper.sanitize import server_text
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.workloads.errors import InvalidWorkloadError

__all__ = ["LoginSession", "LoginSessions", "LoginState"]

log = logging.getLogger(__name__)

#: How long ``start`` waits for the authorization URL (discovery and registration first).
_URL_WAIT = 30.0
_MAX_ERROR = 300


class LoginState(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    NOT_REQUIRED = "not_required"


@dataclass(slots=True)
class LoginSession:
    """One login the daemon runs for a workload; :meth:`to_json` is what the API shows."""

    name: str
    started_at: float
    deadline: float
    state: LoginState = LoginState.PENDING
    authorization_url: str | None = None
    error: str | None = None
    finished_at: float | None = None
    task: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state.value,
            "authorization_url": self.authorization_url if self.state is LoginState.PENDING else None,
            "error": self.error,
            "started_at": self.started_at,
            "expires_at": self.deadline,
            "finished_at": self.finished_at,
        }


ReloadLogin = Callable[[str], Awaitable[bool]]


class LoginSessions:
    """The daemon's browser logins, one per workload at most (see the module docstring)."""

    def __init__(
        self,
        store: CredentialStore,
        reload: ReloadLogin,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_LOGIN_TIMEOUT,
    ) -> None:
        self._store = store
        self._reload = reload
        self._http = http
        self._timeout = timeout
        self._sessions: dict[str, LoginSession] = {}

    def get(self, name: str) -> LoginSession | None:
        """The workload's current login, or its last one (until the next starts)."""
        return self._sessions.get(name)

    async def start(self, config: WorkloadConfig) -> LoginSession:
        """Start a browser login for ``config`` (or join the one waiting) and return once its
        authorization URL is known, or it ended (failed, or the server needs no login)."""
        current = self._sessions.get(config.name)
        if current is not None and current.state is LoginState.PENDING:
            return current
        stored = self._stored(config)
        if stored is not None and stored.grant != "authorization_code":
            kind = stored.grant.replace("_", " ")
            raise InvalidWorkloadError(
                f"{config.name} logs in with the {kind} grant, which the daemon does not run; "
                f"use `mcpkeeper login {config.name}`"
            )
        now = time.time()
        session = LoginSession(config.name, started_at=now, deadline=now + self._timeout)
        url_known = asyncio.Event()

        def show_url(url: str) -> None:
            session.authorization_url = url
            url_known.set()

        session.task = asyncio.create_task(
            self._run(session, config, stored, show_url), name=f"login:{config.name}"
        )
        self._sessions[config.name] = session
        waiter = asyncio.ensure_future(url_known.wait())
        try:
            await asyncio.wait({session.task, waiter}, timeout=_URL_WAIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        return session

    async def _run(
        self,
        session: LoginSession,
        config: WorkloadConfig,
        stored: StoredLogin | None,
        show_url: Callable[[str], None],
    ) -> None:
        try:
            result = await perform_login(
                config.remote_url,
                config.name,
                store=self._store,
                callback_port=config.callback_port,
                scopes=config.scopes or None,
                issuer=config.issuer,
                timeout=self._timeout,
                show_url=show_url,
                open_browser=None,  # the daemon never opens a browser: the caller does
                http=self._http,
                client_metadata_url=_metadata_document(stored),
                challenge=parse_www_authenticate_or_none(config.auth_challenge),
            )
        except LoginError as exc:
            self._finish(session, LoginState.FAILED, server_text(str(exc), _MAX_ERROR))
            return
        except Exception as exc:  # a bug must end this login, not the daemon
            log.exception("login of workload %s failed", config.name)
            self._finish(session, LoginState.FAILED, server_text(f"{type(exc).__name__}: {exc}", _MAX_ERROR))
            return
        await self._adopt(session, result)

    async def _adopt(self, session: LoginSession, result: LoginResult) -> None:
        if not result.auth_required:
            self._finish(session, LoginState.NOT_REQUIRED, None)
            return
        try:
            reloaded = await self._reload(session.name)
        except Exception as exc:  # the workload was removed meanwhile, say
            self._finish(session, LoginState.FAILED, server_text(f"login stored, but: {exc}", _MAX_ERROR))
            return
        if not reloaded:
            self._finish(session, LoginState.FAILED, "login stored, but the workload did not take it")
            return
        log.info("workload %s: logged in through the daemon", session.name)
        self._finish(session, LoginState.SUCCEEDED, None)

    @staticmethod
    def _finish(session: LoginSession, state: LoginState, error: str | None) -> None:
        session.state = state
        session.error = error
        session.finished_at = time.time()
        if error is not None:
            log.warning("workload %s: login through the daemon failed: %s", session.name, error)

    def _stored(self, config: WorkloadConfig) -> StoredLogin | None:
        try:
            return self._store.load(config.name)
        except CredentialStoreError:
            return None  # unreadable: the login replaces it

    def forget(self, name: str) -> None:
        """The workload is gone: cancel its login, if one waits."""
        session = self._sessions.pop(name, None)
        if session is not None and session.task is not None:
            session.task.cancel()

    async def aclose(self) -> None:
        """Cancel every login still waiting (daemon shutdown)."""
        tasks = [s.task for s in self._sessions.values() if s.task is not None and not s.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)


def _metadata_document(stored: StoredLogin | None) -> str | None:
    """A login made with a Client ID Metadata Document is repeated with it."""
    if stored is not None and stored.client.metadata_document:
        return stored.client.client_id
    return None
