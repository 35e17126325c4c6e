"""The control API on loopback TCP (``mcpkeeper serve --api 127.0.0.1:PORT``), with a bearer token.

The Unix socket stays (the CLI uses it; only this user reaches it). The TCP listener is
for what cannot speak to a Unix socket: a browser (the dashboard), Prometheus
(``/metrics``), tools written for ToolHive's HTTP API. Loopback is reachable by every
account on the machine, so every request needs ``Authorization: Bearer <token>``: the
API token (``<home>/secrets/api-token``, 0600, made on first use) or a dashboard
session (:mod:`.dashboard`); only the dashboard's static files and its session
exchange are public. 401 otherwise, with ``WWW-Authenticate: Bearer``.

It listens on 127.0.0.1 only (a gateway mode may lift that later, with TLS); a ``Host``
that is not loopback (DNS rebinding) is refused with 403 before anything else. The
address the listener got is recorded in ``<home>/run/api.json`` for scripts and tests,
and removed when the daemon stops.
"""

from __future__ import annotations

import json
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from mcpkeeper.api.dashboard import UI_PUBLIC_PATHS, DashboardSessions
from mcpkeeper.api.paths import run_dir
from mcpkeeper.proxy import foreign_request
from mcpkeeper.state._atomic import atomic_write_bytes

__all__ = ["ApiAddressError", "BearerGate", "api_file", "parse_api_address", "write_api_file"]

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


class ApiAddressError(ValueError):
    """``--api`` named something other than a loopback address with a port."""


def parse_api_address(text: str) -> int:
    """The port of ``127.0.0.1:PORT`` (or ``localhost:PORT``; 0 picks a free one)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or host not in _LOOPBACK_HOSTS:
        raise ApiAddressError(f"--api takes 127.0.0.1:PORT (loopback only), got {text!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ApiAddressError(f"--api: {port_text!r} is not a TCP port")
    return int(port_text)


def api_file(home: Path) -> Path:
    return run_dir(home) / "api.json"


def write_api_file(home: Path, url: str, pid: int) -> None:
    atomic_write_bytes(api_file(home), json.dumps({"url": url, "pid": pid}).encode())


class BearerGate:
    """``app`` behind the API token or a dashboard session (see the module docstring)."""

    def __init__(self, app: ASGIApp, sessions: DashboardSessions) -> None:
        self._app = app
        self._sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = scope["headers"]
        foreign = foreign_request(headers)
        if foreign is not None:
            await _answer(send, 403, foreign.message)
            return
        if scope["path"] in UI_PUBLIC_PATHS or self._authorized(headers):
            await self._app(scope, receive, send)
            return
        await _answer(
            send,
            401,
            "this API needs 'Authorization: Bearer <token>' (the token is in <home>/secrets/api-token)",
            extra=[(b"www-authenticate", b'Bearer realm="mcpkeeper"')],
        )

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        for key, value in headers:
            if key == b"authorization":
                scheme, _, credential = value.decode("latin-1").strip().partition(" ")
                if scheme.lower() == "bearer" and credential.strip():
                    return self._sessions.accepts(credential.strip())
        return False


async def _answer(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
