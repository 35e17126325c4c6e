"""The web dashboard (``/ui/``) and how a browser gets to use the API without cookies.

The page is plain HTML, one stylesheet and one script (``api/ui/``), served by the daemon
on the TCP API listener; no build step, nothing from a CDN, and a Content-Security-Policy
that lets nothing else run. It reads the API with ``fetch`` and a bearer credential,
and follows ``/api/v1beta/events`` (server-sent events) for live statuses.

Why no cookie: a cookie for ``127.0.0.1`` is sent to *every* port of that host, so a
server another local user runs on 127.0.0.1 would receive it; and every loopback page is
"same-site", so SameSite would not stop one from posting to us. Instead the page keeps
a short-lived *session* credential in ``sessionStorage`` (per origin: this port only, per
tab) and sends it as ``Authorization: Bearer``. A session is obtained at
``POST /ui/session`` for either

* a one-time code: ``mcpkeeper dashboard`` asks the daemon over its Unix socket (only
  this user reaches it) for ``http://127.0.0.1:PORT/ui/#code=…``; the code sits in the
  URL's fragment, which the browser never sends to a server nor keeps in logs, is used
  once by the page, and expires after :data:`CODE_TTL`; or
* the API token itself (the login form), read from ``<home>/secrets/api-token``.

Sessions live in the daemon's memory only (a restart logs the page out), expire after
:data:`SESSION_TTL`, and at most :data:`MAX_SESSIONS` exist (the oldest goes first).
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from mcpkeeper.api.paths import API_PREFIX

__all__ = [
    "CODE_TTL",
    "MAX_SESSIONS",
    "SESSION_TTL",
    "UI_PUBLIC_PATHS",
    "DashboardSessions",
    "dashboard_link_route",
    "dashboard_routes",
]

CODE_TTL = 120.0
SESSION_TTL = 12 * 3600.0
MAX_SESSIONS = 64
_MAX_CODES = 16
_MAX_BODY = 4096

_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
#: Paths the TCP listener serves without a credential: the static page and the exchange.
UI_PUBLIC_PATHS = frozenset({"/", "/ui/", "/ui/session", *(f"/ui/{name}" for name in _FILES)})

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_UI_HEADERS = {
    "content-security-policy": _CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class DashboardSessions:
    """One-time codes and sessions of the dashboard (see the module docstring)."""

    def __init__(self, api_token: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._api_token = api_token
        self._clock = clock
        self._codes: OrderedDict[str, float] = OrderedDict()
        self._sessions: OrderedDict[str, float] = OrderedDict()

    def mint_code(self) -> tuple[str, float]:
        """A new one-time code and its lifetime in seconds."""
        self._drop_expired(self._codes)
        while len(self._codes) >= _MAX_CODES:
            self._codes.popitem(last=False)
        code = secrets.token_urlsafe(24)
        self._codes[code] = self._clock() + CODE_TTL
        return code, CODE_TTL

    def open_session(self, *, code: str | None = None, token: str | None = None) -> str | None:
        """A session for a valid one-time code (spent now) or the API token; None otherwise."""
        if code is not None:
            self._drop_expired(self._codes)
            if self._codes.pop(code, None) is None:
                return None
        elif token is None or not hmac.compare_digest(token.encode(), self._api_token.encode()):
            return None
        self._drop_expired(self._sessions)
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.popitem(last=False)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = self._clock() + SESSION_TTL
        return session

    def accepts(self, credential: str) -> bool:
        """The API token, or a live session."""
        if hmac.compare_digest(credential.encode(), self._api_token.encode()):
            return True
        expires = self._sessions.get(credential)
        return expires is not None and self._clock() < expires

    def _drop_expired(self, table: OrderedDict[str, float]) -> None:
        now = self._clock()
        for key in [key for key, expires in table.items() if expires <= now]:
            del table[key]


def dashboard_routes(sessions: DashboardSessions) -> list[BaseRoute]:
    """The page, its two files, and the session exchange (all public: they hold no data)."""

    async def page(request: Request) -> Response:
        return _static("index.html")

    async def asset(request: Request) -> Response:
        name = request.path_params["asset"]
        if name not in _FILES or name == "index.html":
            return JSONResponse({"error": "Not Found"}, status_code=404)
        return _static(name)

    async def root(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=307)

    async def exchange(request: Request) -> Response:
        body = await request.body()
        try:
            data = json.loads(body) if len(body) <= _MAX_BODY else None
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return JSONResponse({"error": 'send {"code": ...} or {"token": ...}'}, status_code=400)
        code, token = data.get("code"), data.get("token")
        session = sessions.open_session(
            code=code if isinstance(code, str) else None, token=token if isinstance(token, str) else None
        )
        if session is None:
            return JSONResponse(
                {"error": "that code or token is not valid (codes work once, for two minutes)"},
                status_code=401,
            )
        return JSONResponse(
            {"session": session, "expires_in": int(SESSION_TTL)}, headers={"cache-control": "no-store"}
        )

    return [
        Route("/", root, methods=["GET"]),
        Route("/ui/", page, methods=["GET"]),
        Route("/ui/session", exchange, methods=["POST"]),
        Route("/ui/{asset}", asset, methods=["GET"]),
    ]


def dashboard_link_route(sessions: DashboardSessions | None, base_url: Callable[[], str | None]) -> BaseRoute:
    """``POST /api/v1beta/dashboard/link``: a one-time URL of the dashboard (``mcpkeeper dashboard``).

    Served on the Unix socket too (that is how the CLI asks); 501 when the daemon has no
    TCP listener (``serve --api``).
    """

    async def link(request: Request) -> Response:
        url = base_url()
        if sessions is None or url is None:
            return JSONResponse(
                {"error": "the dashboard needs the HTTP API: `mcpkeeper serve --api 127.0.0.1:PORT`"},
                status_code=501,
            )
        code, ttl = sessions.mint_code()
        return JSONResponse(
            {"url": f"{url}/ui/#code={code}", "expires_in": int(ttl)}, headers={"cache-control": "no-store"}
        )

    return Route(f"{API_PREFIX}/dashboard/link", link, methods=["POST"])


def _static(name: str) -> Response:
    data = resources.files("mcpkeeper.api").joinpath("ui", name).read_bytes()
    return Response(data, media_type=_FILES[name], headers=_UI_HEADERS)
