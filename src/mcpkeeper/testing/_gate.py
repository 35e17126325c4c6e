"""Per-request authorization in front of the fixture MCP server, for what the SDK's middleware cannot do.

The SDK checks one set of scopes on every request. Real servers vary more, and the
conformance suite tests clients against them:

* **authorization that appears later**: ``initialize`` and notifications are let through
  without a token, everything else wants one (``401``);
* **step-up**: a tool wants more scopes than the rest (``403`` with
  ``error="insufficient_scope"`` and the scopes it needs);
* **2025-03-26 servers**: no protected-resource metadata at all, a bare ``Bearer``
  challenge, and the authorization server's endpoints at the MCP server's own origin.

The gate reads the JSON-RPC body (bounded), decides, and hands the request on with the
body replayed. Tokens are verified against the fixture authorization server in-process.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcpkeeper.testing.auth_server import FixtureAuthServer

__all__ = ["AS_PATHS", "AuthGate"]

#: Paths of the fixture authorization server served at the MCP origin in 2025-03-26 mode.
AS_PATHS = (
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/authorize",
    "/token",
    "/register",
    "/device_authorization",
    "/device",
)
_MAX_BODY = 1 << 20
_OPEN_METHODS = ("initialize", "ping")


class AuthGate:
    """An ASGI app: authorization decisions per JSON-RPC method and tool, then ``app``."""

    def __init__(
        self,
        app: Callable[[], ASGIApp | None],
        auth: FixtureAuthServer,
        *,
        resource_url: Callable[[], str],
        resource_metadata_url: Callable[[], str] | None,
        required_scopes: Sequence[str],
        tool_scopes: Mapping[str, Sequence[str]],
        open_handshake: bool,
    ) -> None:
        self._app = app
        self._auth = auth
        self._resource_url = resource_url
        self._prm_url = resource_metadata_url
        self._required = tuple(required_scopes)
        self._tool_scopes = {name: tuple(scopes) for name, scopes in tool_scopes.items()}
        self._open_handshake = open_handshake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app()
        path: str = scope["path"]
        if self._prm_url is None and path in AS_PATHS:
            await self._auth.app(scope, receive, send)
            return
        if self._prm_url is not None and path.startswith("/.well-known/oauth-protected-resource"):
            await _json(send, 200, self._resource_metadata())
            return
        body = await _read(receive)
        verdict = self._decide(scope, body)
        if verdict is not None:
            status, challenge = verdict
            await _json(send, status, {"error": "insufficient_scope" if status == 403 else "invalid_token"},
                        headers=[(b"www-authenticate", challenge.encode())])  # fmt: skip
            return
        if app is None:
            await _json(send, 503, {"error": "starting"})
            return
        await app(scope, _replay(body, receive), send)

    def _resource_metadata(self) -> dict[str, Any]:
        scopes = list(dict.fromkeys([*self._required, *(s for v in self._tool_scopes.values() for s in v)]))
        return {
            "resource": self._resource_url(),
            "authorization_servers": [self._auth.issuer],
            "scopes_supported": scopes,
            "bearer_methods_supported": ["header"],
        }

    def _decide(self, scope: Scope, body: bytes) -> tuple[int, str] | None:
        """None to let the request through, else (status, WWW-Authenticate value)."""
        messages = _messages(body) if scope["method"] == "POST" else []
        methods = [str(m.get("method")) for m in messages]
        if (
            self._open_handshake
            and methods
            and all(m in _OPEN_METHODS or m.startswith("notifications/") for m in methods)
        ):
            return None
        claims = self._claims(scope)
        if claims is None:
            return 401, self._challenge(self._required, error=None)
        needed = list(self._required)
        for message in messages:
            if message.get("method") == "tools/call":
                params = message.get("params")
                tool = params.get("name") if isinstance(params, dict) else None
                needed += self._tool_scopes.get(str(tool), ())
        granted = set(str(claims.get("scope", "")).split())
        if not set(needed) <= granted:
            return 403, self._challenge(tuple(dict.fromkeys(needed)), error="insufficient_scope")
        return None

    def _claims(self, scope: Scope) -> dict[str, Any] | None:
        for key, value in scope["headers"]:
            if key.lower() == b"authorization":
                text = bytes(value).decode("latin-1")
                if text[:7].lower() == "bearer ":
                    claims = self._auth.verify_access_token(text[7:].strip())
                    audience = claims.get("aud") if claims is not None else None
                    if audience is not None and str(audience).rstrip("/") != self._resource_url().rstrip("/"):
                        return None
                    return claims
        return None

    def _challenge(self, scopes: Sequence[str], *, error: str | None) -> str:
        params: list[str] = []
        if error is not None:
            params.append(f'error="{error}"')
        if scopes:
            params.append(f'scope="{" ".join(scopes)}"')
        if self._prm_url is not None:
            params.append(f'resource_metadata="{self._prm_url()}"')
        return "Bearer " + ", ".join(params) if params else "Bearer"


def _messages(body: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return []
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return body
        body += bytes(message.get("body", b""))
        if len(body) > _MAX_BODY or not message.get("more_body", False):
            return body


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _json(
    send: Send, status: int, payload: dict[str, Any], *, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw + (headers or [])})
    await send({"type": "http.response.body", "body": body, "more_body": False})
