"""The loopback redirect target of a browser login (RFC 8252 §7.3).

A tiny HTTP server on ``127.0.0.1`` that waits for the one request carrying our
``state``. Anything else reaching it — a stale tab from an earlier login, a forged link,
the browser's favicon request — is answered and ignored, so it can neither complete nor
abort the login. The request with our ``state`` settles it: a code, or the
authorization server's error.

When the browser runs on another machine (SSH, a container) its redirect to our loopback
address goes nowhere; the user can then paste the URL the browser ended on, and
:meth:`CallbackServer.submit` treats it exactly like the request would have been treated.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from mcpkeeper.auth.login_errors import AuthorizationDeniedError, CallbackError, LoginError
from mcpkeeper.net import LOOPBACK, InLoopServer, PortInUseError, ServerStartError, bind_loopback

__all__ = ["CALLBACK_PATH", "CallbackResult", "CallbackServer"]

CALLBACK_PATH = "/callback"
_MAX_SHOWN = 200
_NOT_THIS_LOGIN = "Not this login"


@dataclass(frozen=True, slots=True)
class CallbackResult:
    code: str
    iss: str | None = None

    def __repr__(self) -> str:  # the code is a credential until it is exchanged
        return f"CallbackResult(iss={self.iss!r})"


class CallbackServer:
    """``async with CallbackServer(port=...) as cb:`` then ``cb.expect(state)`` and ``await cb.wait()``.

    ``port`` None or 0 takes a free port. When ``port`` is busy and ``fallback`` is true
    (a dynamically registered client can register any redirect URI), a free port is used
    instead; otherwise a busy port is a :class:`LoginError`.
    """

    def __init__(self, *, port: int | None = None, fallback: bool = False) -> None:
        self._wanted = port or 0
        self._fallback = fallback
        self._state: str | None = None
        self._outcome: asyncio.Future[CallbackResult] | None = None
        self._server: InLoopServer | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("callback server not started")
        return self._port

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{CALLBACK_PATH}"

    def expect(self, state: str) -> None:
        """Accept only the callback carrying ``state`` from now on."""
        self._state = state

    async def wait(self) -> CallbackResult:
        """The code from the callback with our state; raises the error it carried instead."""
        if self._outcome is None:
            raise RuntimeError("callback server not started")
        return await asyncio.shield(self._outcome)

    async def __aenter__(self) -> CallbackServer:
        sock = self._bind()
        self._port = sock.getsockname()[1]
        self._outcome = asyncio.get_running_loop().create_future()
        app = Starlette(routes=[Route(CALLBACK_PATH, self._handle, methods=["GET"])])
        server = InLoopServer(app, sock, name="login-callback", lifespan="off", graceful_shutdown=1)
        try:
            await server.start()
        except ServerStartError:
            raise LoginError("the login callback server failed to start") from None
        self._server = server
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()
        if self._outcome is not None and not self._outcome.done():
            self._outcome.cancel()
        elif self._outcome is not None and not self._outcome.cancelled():
            self._outcome.exception()  # retrieved: no "exception never retrieved" noise

    def _bind(self) -> socket.socket:
        try:
            return bind_loopback(self._wanted)
        except OSError as exc:
            if not self._fallback or self._wanted == 0:
                reason = "the port is in use" if isinstance(exc, PortInUseError) else exc.strerror or exc
                raise LoginError(
                    f"cannot listen for the login callback on {LOOPBACK}:{self._wanted}: {reason}"
                ) from None
        return bind_loopback(0)

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    def submit(self, url: str) -> str | None:
        """A callback URL the user pasted: settles the login as the browser's request would.

        Returns None when it was this login's callback (the login is settled, for better or
        worse), else one line saying why it was ignored (the user may paste again).
        """
        parts = urlsplit(url.strip())
        if parts.path != CALLBACK_PATH or not parts.query:
            return f"that is not the login callback URL (it ends in {CALLBACK_PATH}?code=...&state=...)"
        title, message, _ = self._settle(dict(parse_qsl(parts.query, keep_blank_values=True)))
        return None if title != _NOT_THIS_LOGIN else message

    async def _handle(self, request: Request) -> HTMLResponse:
        title, message, status = self._settle(request.query_params)
        return _page(title, message, status=status)

    def _settle(self, params: Mapping[str, str]) -> tuple[str, str, int]:
        """(page title, message, HTTP status) for a callback with ``params``, settling the login if ours."""
        state = params.get("state")
        outcome = self._outcome
        if (
            outcome is None
            or outcome.done()
            or self._state is None
            or state is None
            or not hmac.compare_digest(state.encode(), self._state.encode())
        ):
            return (
                _NOT_THIS_LOGIN,
                "This link does not belong to the login mcpkeeper is waiting for. "
                "Use the most recent login URL, or close this tab.",
                400,
            )
        error = params.get("error")
        if error:
            description = params.get("error_description")
            detail = f"{error[:64]}" + (f": {description[:_MAX_SHOWN]}" if description else "")
            exc_type = AuthorizationDeniedError if error == "access_denied" else CallbackError
            outcome.set_exception(exc_type(f"the authorization server refused the login ({detail})"))
            return "Login failed", f"The authorization server said: {detail}. You can close this tab.", 400
        code = params.get("code")
        if not code:
            outcome.set_exception(CallbackError("the login callback carried neither a code nor an error"))
            return "Login failed", "The login came back without an authorization code.", 400
        outcome.set_result(CallbackResult(code, params.get("iss")))
        return "Logged in", "mcpkeeper has your login. You can close this tab.", 200


def _page(title: str, message: str, status: int) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>mcpkeeper: {html.escape(title)}</title></head>"
        "<body style='font-family: sans-serif; max-width: 40em; margin: 4em auto'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
