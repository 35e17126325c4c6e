"""A protected MCP server built with the official ``mcp`` SDK, for tests and the demo.

It is the upstream a user of mcpkeeper would meet: streamable HTTP at ``/mcp``, bearer
tokens checked by the SDK's own auth middleware against the fixture authorization server,
RFC 9728 protected-resource metadata, and ``401`` with ``WWW-Authenticate: Bearer
resource_metadata="…"`` when the token is missing or no longer valid.

Around the SDK app sits a thin recorder so tests can assert what reached the upstream
(request count, whether an ``Authorization`` header came, which bearer tokens were seen)
without the server ever logging a token.

Servers that authorize per request rather than all at once are played by
:class:`~._gate.AuthGate` in front of an SDK app without auth: ``open_handshake``
(``initialize`` needs no token, the rest does), ``tool_scopes`` (step-up: a tool wants
more scopes), ``resource_metadata=False`` (a 2025-03-26 server: no RFC 9728 document, the
authorization server's endpoints at this origin).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpkeeper.testing._gate import AuthGate
from mcpkeeper.testing._serve import ServedApp
from mcpkeeper.testing.auth_server import FixtureAuthServer

__all__ = ["MAX_SLOW_SECONDS", "FixtureMCPServer", "TokenAuthority"]

#: ``slow`` never sleeps longer than this, whatever it is asked.
MAX_SLOW_SECONDS = 30.0
_MCP_PATH = "/mcp"
_PRM_ROOT = "/.well-known/oauth-protected-resource"
_START_TIMEOUT = 10.0


class TokenAuthority(Protocol):
    """An authorization server other than the fixture AS, as the MCP server needs it.

    ``issuer`` is named in the RFC 9728 metadata; ``token_verifier`` checks bearer tokens
    for the resource at ``resource_url`` (known only once the MCP server has its port).
    """

    @property
    def issuer(self) -> str: ...

    def token_verifier(self, resource_url: str) -> TokenVerifier: ...


class _FixtureTokenVerifier:
    """The SDK ``TokenVerifier`` protocol, answered by the fixture AS in the same process.

    A token bound (RFC 8707) to another resource is refused; a token with no resource
    binding is accepted, so tests can mint tokens without naming the server.
    """

    def __init__(self, auth: FixtureAuthServer, resource_url: str) -> None:
        self._auth = auth
        self._resource = resource_url.rstrip("/")

    async def verify_token(self, token: str) -> AccessToken | None:
        claims = self._auth.verify_access_token(token)
        if claims is None:
            return None
        audience = claims.get("aud")
        if audience is not None and str(audience).rstrip("/") != self._resource:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=str(claims.get("scope", "")).split(),
            # Expiry was checked on the AS's own clock (possibly virtual); do not let the
            # SDK re-check it against the real one.
            expires_at=None,
            resource=audience,
            subject=claims.get("sub"),
            claims={"iss": self._auth.issuer},
        )


class FixtureMCPServer:
    """``async with FixtureMCPServer(auth) as mcp:`` serves ``mcp.url`` (``http://127.0.0.1:N/mcp``).

    ``auth`` is the fixture AS, or any :class:`TokenAuthority` (a third-party server whose
    tokens the authority knows how to check). With ``require_auth=False`` (and no ``auth``)
    it is an open server with the same tools.
    ``required_scopes`` are demanded of every token (``403 insufficient_scope`` otherwise);
    the fixture AS grants ``mcp`` by default.
    """

    def __init__(
        self,
        auth: FixtureAuthServer | TokenAuthority | None = None,
        *,
        require_auth: bool = True,
        port: int = 0,
        required_scopes: Sequence[str] = ("mcp",),
        stateless: bool = False,
        open_handshake: bool = False,
        tool_scopes: Mapping[str, Sequence[str]] | None = None,
        resource_metadata: bool = True,
    ) -> None:
        if require_auth and auth is None:
            raise ValueError("a FixtureMCPServer that requires auth needs a FixtureAuthServer")
        self.auth = auth if require_auth else None
        self.required_scopes = list(required_scopes)
        self.stateless = stateless
        self._app: ASGIApp | None = None
        self._resource_metadata = resource_metadata
        self._gate: AuthGate | None = None
        if self.auth is not None and (open_handshake or tool_scopes or not resource_metadata):
            if not isinstance(self.auth, FixtureAuthServer):
                raise ValueError("open_handshake, tool_scopes, resource_metadata=False need the fixture AS")
            self._gate = AuthGate(
                lambda: self._app,
                self.auth,
                resource_url=lambda: self.url,
                resource_metadata_url=(lambda: self.resource_metadata_url) if resource_metadata else None,
                required_scopes=self.required_scopes,
                tool_scopes=tool_scopes or {},
                open_handshake=open_handshake,
            )
        self._served = ServedApp(self._record, port=port, lifespan="off")
        self._session_task: asyncio.Task[None] | None = None
        self._stop_sessions = asyncio.Event()
        self.reset_counters()

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> FixtureMCPServer:
        # The resource URL contains the port, so the SDK app is built once the port is bound.
        await self._served.start_listening()
        if self._gate is not None and not self._resource_metadata:
            assert isinstance(self.auth, FixtureAuthServer)
            self.auth.public_url = self.base_url  # the 2025-03-26 way: the AS lives at our origin
        try:
            server = self._build_server()
            self._app = server.streamable_http_app(
                streamable_http_path=_MCP_PATH, stateless_http=self.stateless, host=self._served.host
            )
            await self._start_sessions(server.session_manager)
        except BaseException:
            await self._served.stop_listening()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Sessions first: that ends open SSE streams, so uvicorn has no stream to wait for.
        self._stop_sessions.set()
        if self._session_task is not None:
            with contextlib.suppress(Exception):
                await self._session_task
            self._session_task = None
        await self._served.stop_listening()

    async def stop_listening(self) -> None:
        """Simulate the upstream going away (connection refused); sessions are kept."""
        await self._served.stop_listening()

    async def start_listening(self) -> None:
        """Come back on the same port after :meth:`stop_listening`."""
        await self._served.start_listening()

    async def _start_sessions(self, manager: StreamableHTTPSessionManager) -> None:
        """Run the SDK session manager in a task of our own.

        Its ``run()`` holds an AnyIO task group, which must be entered and left by the
        same task; test fixtures often set up and tear down in different tasks.
        """
        ready = asyncio.Event()

        async def run() -> None:
            async with manager.run():
                ready.set()
                await self._stop_sessions.wait()

        self._stop_sessions = asyncio.Event()
        task = asyncio.create_task(run(), name="fixture-mcp-sessions")
        ready_wait = asyncio.ensure_future(ready.wait())
        await asyncio.wait({task, ready_wait}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        ready_wait.cancel()
        if not ready.is_set():
            task.cancel()
            raise RuntimeError("the MCP session manager did not start")
        self._session_task = task

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._served.port

    @property
    def base_url(self) -> str:
        return self._served.url

    @property
    def url(self) -> str:
        """The MCP endpoint, which is also the RFC 8707 resource identifier."""
        return f"{self._served.url}{_MCP_PATH}"

    @property
    def resource_metadata_url(self) -> str:
        """RFC 9728 §3.1: the well-known path inserted before the resource path."""
        return f"{self._served.url}{_PRM_ROOT}{_MCP_PATH}"

    # -- what reached us -------------------------------------------------------------------

    def reset_counters(self) -> None:
        #: HTTP requests of any kind (MCP, metadata, ...).
        self.requests = 0
        #: Requests to the MCP endpoint only.
        self.mcp_requests = 0
        #: Whether the most recent request carried an ``Authorization`` header (None: no request yet).
        self.last_authorization_present: bool | None = None
        #: Response status codes, e.g. ``statuses[401]``.
        self.statuses: Counter[int] = Counter()
        #: Tool invocations by tool name.
        self.tool_calls: Counter[str] = Counter()
        #: The last value of each custom (``X-…``) request header: what a client or proxy forwarded.
        self.custom_headers: dict[str, str] = {}
        self._seen_tokens: set[str] = set()

    def saw_token(self, token: str) -> bool:
        """Whether ``token`` ever arrived here as a bearer token."""
        return token in self._seen_tokens

    @property
    def seen_token_count(self) -> int:
        return len(self._seen_tokens)

    async def _record(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is run by us, not by uvicorn
        self.requests += 1
        if scope["path"].rstrip("/") == _MCP_PATH:
            self.mcp_requests += 1
        authorization = _header(scope, b"authorization")
        self.last_authorization_present = authorization is not None
        for key, value in scope["headers"]:
            if key[:2].lower() == b"x-":
                self.custom_headers[key.decode("latin-1").lower()] = value.decode("latin-1")
        if authorization is not None and authorization[:7].lower() == "bearer ":
            self._seen_tokens.add(authorization[7:].strip())

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses[int(message["status"])] += 1
            await send(message)

        if self._gate is not None:
            await self._gate(scope, receive, recording_send)
            return
        if self._app is None:
            await PlainTextResponse("starting", status_code=503)(scope, receive, recording_send)
            return
        await self._app(scope, receive, recording_send)

    # -- the SDK server --------------------------------------------------------------------

    def _build_server(self) -> MCPServer[Any]:
        with _root_logging_untouched():
            server = self._new_sdk_server()
        self._add_tools(server)
        return server

    def _new_sdk_server(self) -> MCPServer[Any]:
        if self.auth is None or self._gate is not None:  # the gate does the authorization
            server: MCPServer[Any] = MCPServer("mcpkeeper-fixture", log_level="WARNING")
        else:
            verifier = (
                _FixtureTokenVerifier(self.auth, self.url)
                if isinstance(self.auth, FixtureAuthServer)
                else self.auth.token_verifier(self.url)
            )
            server = MCPServer(
                "mcpkeeper-fixture",
                log_level="WARNING",
                token_verifier=verifier,
                # Validated from strings so the model keeps the issuer exactly as the AS
                # spells it (no trailing slash): RFC 8414 issuer comparison is exact.
                auth=AuthSettings.model_validate(
                    {
                        "issuer_url": self.auth.issuer,
                        "resource_server_url": self.url,
                        "required_scopes": self.required_scopes or None,
                        # The verifier above checks the audience itself, accepting unbound tokens.
                        "validate_token_resource": False,
                    }
                ),
            )
            server.custom_route(_PRM_ROOT, methods=["GET"])(self._root_resource_metadata)
        return server

    async def _root_resource_metadata(self, request: Request) -> Response:
        """The same RFC 9728 document at the root well-known path, for clients that look there."""
        assert self.auth is not None
        return JSONResponse(
            {
                "resource": self.url,
                "authorization_servers": [self.auth.issuer],
                "scopes_supported": self.required_scopes,
                "bearer_methods_supported": ["header"],
            }
        )

    def _add_tools(self, server: MCPServer[Any]) -> None:
        owner = self  # counters are looked up per call: reset_counters() replaces them

        @server.tool(description="Return the text unchanged.")
        def echo(text: str) -> str:
            owner.tool_calls["echo"] += 1
            return text

        @server.tool(description="Add two integers.")
        def add(a: int, b: int) -> int:
            owner.tool_calls["add"] += 1
            return a + b

        @server.tool(description=f"Sleep for the given seconds (at most {MAX_SLOW_SECONDS:g}), then answer.")
        async def slow(seconds: float) -> str:
            owner.tool_calls["slow"] += 1
            duration = min(max(0.0, seconds), MAX_SLOW_SECONDS)
            await asyncio.sleep(duration)
            return f"slept {duration:g}s"


@contextlib.contextmanager
def _root_logging_untouched() -> Iterator[None]:
    """``MCPServer()`` calls ``logging.basicConfig``; a fixture must not reconfigure its host's logging."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
