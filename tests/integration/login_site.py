"""A scripted OAuth site for the login tests' bad-input cases.

One real HTTP server on loopback plays the MCP server (``/mcp``), its RFC 9728 metadata,
and the authorization server (metadata, ``/register``, ``/authorize``, ``/token``). Every
path answers like a well-behaved server until a test replaces that one answer with
something broken (``site.answer(path, handler)``), which is how each "the server does X
wrong" case is produced over real HTTP without a fake client.

The fixture servers of ``mcpkeeper.testing`` are strict and correct by design; this site
exists for the answers no correct server gives.

The pytest fixtures the login test modules share are here too (``site``, ``fixtures``,
``store``): a module imports the ones it uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.auth.login import LoginResult, perform_login
from mcpkeeper.state.secrets import FileSecretBackend, SecretStore
from mcpkeeper.testing import FixtureAuthServer, FixtureMCPServer, ServedApp, serve_asgi

Handler = Callable[[Request], Awaitable[Response]]

SCRIPTED_ACCESS_TOKEN = "scripted-access-token-value"
SCRIPTED_REFRESH_TOKEN = "scripted-refresh-token-value"


class ScriptedSite:
    """The site's default answers, and a table of overrides by path."""

    def __init__(self) -> None:
        self.served: ServedApp | None = None
        self.overrides: dict[str, Handler] = {}
        self.hits: list[str] = []
        self.registrations = 0
        self.token_forms: list[dict[str, str]] = []

    @property
    def base(self) -> str:
        assert self.served is not None
        return self.served.url

    @property
    def mcp_url(self) -> str:
        return f"{self.base}/mcp"

    def answer(self, path: str, handler: Handler) -> None:
        self.overrides[path] = handler

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.base,
            "authorization_endpoint": f"{self.base}/authorize",
            "token_endpoint": f"{self.base}/token",
            "registration_endpoint": f"{self.base}/register",
            "scopes_supported": ["mcp"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    async def dispatch(self, request: Request) -> Response:
        path = request.url.path
        self.hits.append(f"{request.method} {path}")
        handler = self.overrides.get(path) or self._defaults().get(path)
        if handler is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return await handler(request)

    def _defaults(self) -> dict[str, Handler]:
        return {
            "/mcp": self._mcp,
            "/.well-known/oauth-protected-resource/mcp": self._prm,
            "/.well-known/oauth-authorization-server": self._as_metadata,
            "/register": self._register,
            "/authorize": self._authorize,
            "/token": self._token,
        }

    async def _mcp(self, request: Request) -> Response:
        prm = f"{self.base}/.well-known/oauth-protected-resource/mcp"
        return Response(status_code=401, headers={"WWW-Authenticate": f'Bearer resource_metadata="{prm}"'})

    async def _prm(self, request: Request) -> Response:
        return JSONResponse({"resource": self.mcp_url, "authorization_servers": [self.base]})

    async def _as_metadata(self, request: Request) -> Response:
        return JSONResponse(self.metadata())

    async def _register(self, request: Request) -> Response:
        self.registrations += 1
        body = await request.json()
        return JSONResponse(
            {
                "client_id": f"scripted-client-{self.registrations}",
                "token_endpoint_auth_method": "none",
                "redirect_uris": body.get("redirect_uris", []),
            },
            status_code=201,
        )

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        return redirect_with(
            params["redirect_uri"], {"code": "scripted-code", "state": params["state"], "iss": self.base}
        )

    async def _token(self, request: Request) -> Response:
        form = await request.form()
        self.token_forms.append({k: str(v) for k, v in form.items()})
        return JSONResponse(
            {
                "access_token": SCRIPTED_ACCESS_TOKEN,
                "refresh_token": SCRIPTED_REFRESH_TOKEN,
                "token_type": "Bearer",
                "expires_in": 3600,
            }
        )


def redirect_with(uri: str, params: dict[str, str]) -> Response:
    parts = urlsplit(uri)
    query = urlencode([*parse_qsl(parts.query), *params.items()])
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)


def fixed(response: Response) -> Handler:
    async def handler(request: Request) -> Response:
        return response

    return handler


@asynccontextmanager
async def scripted_site() -> AsyncIterator[ScriptedSite]:
    site = ScriptedSite()
    app = Starlette(routes=[Route("/{path:path}", site.dispatch, methods=["GET", "POST", "DELETE"])])
    async with serve_asgi(app, lifespan="off") as served:
        site.served = served
        yield site


class FollowingBrowser:
    """An ``open_browser`` for in-process logins: follows the authorize URL, then GETs the callback.

    ``rewrite`` may change the callback URL (a wrong state, a missing code) before it is
    requested; ``extra`` callback URLs are requested first (stale tabs, forgeries).
    """

    def __init__(
        self,
        rewrite: Callable[[str], str] | None = None,
        extra: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.rewrite = rewrite
        self.extra = extra
        self.tasks: list[asyncio.Task[None]] = []
        self.callback_statuses: list[int] = []
        self.urls: list[str] = []

    def __call__(self, url: str) -> None:
        self.urls.append(url)
        self.tasks.append(asyncio.get_running_loop().create_task(self._visit(url)))

    async def _visit(self, url: str) -> None:
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = await http.get(url, follow_redirects=False)
            if answer.status_code not in (302, 303):
                return  # the authorization server showed an error page; nothing comes back
            callback = answer.headers["location"]
            for other in self.extra(callback) if self.extra else []:
                self.callback_statuses.append((await http.get(other)).status_code)
            if self.rewrite is not None:
                callback = self.rewrite(callback)
            self.callback_statuses.append((await http.get(callback)).status_code)

    async def finished(self) -> None:
        async with asyncio.timeout(10):
            await asyncio.gather(*self.tasks, return_exceptions=True)


def with_query(url: str, **changes: str | None) -> str:
    """``url`` with query parameters replaced (None removes one)."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return urlunsplit(parts._replace(query=urlencode(params)))


async def browser_login(
    remote_url: str,
    name: str,
    *,
    store: CredentialStore,
    browser: FollowingBrowser | None = None,
    **options: Any,
) -> LoginResult:
    """``perform_login`` with a :class:`FollowingBrowser`, whose visit is over when this returns or raises."""
    visitor = browser if browser is not None else FollowingBrowser()
    try:
        return await perform_login(remote_url, name, store=store, open_browser=visitor, **options)
    finally:
        await visitor.finished()


@pytest.fixture(name="site")
async def site_fixture() -> AsyncIterator[ScriptedSite]:
    """``site``: the scripted site, one per test."""
    async with scripted_site() as served:
        yield served


@pytest.fixture(name="fixtures")
async def fixture_servers() -> AsyncIterator[tuple[FixtureAuthServer, FixtureMCPServer]]:
    """``fixtures``: the strict fixture authorization server and MCP server, in this process."""
    async with FixtureAuthServer() as auth, FixtureMCPServer(auth) as mcp:
        yield auth, mcp


@pytest.fixture(name="store")
def file_store(tmp_path: Path) -> CredentialStore:
    """``store``: a credential store under the test's directory, secrets in files."""
    return CredentialStore(SecretStore(tmp_path, backend=FileSecretBackend(tmp_path / "secrets")))
