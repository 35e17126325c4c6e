"""The gateway listener's app: authenticate, check the allow-list, route to a workload.

``https://gateway/<workload>/<remote path>`` reaches the workload's proxy as if mounted
at ``/<workload>`` (the proxy removes the prefix before forwarding, see
:mod:`mcpkeeper.proxy.app`). Order matters and is the point of this module: nothing
about a request is looked at, and nothing goes upstream, before its caller is
authenticated:

1. no or an invalid credential → ``401`` with ``WWW-Authenticate: Bearer`` (the one place
   mcpkeeper answers 401: these are the gateway's own credentials, not the upstream's);
2. a caller the allow-list does not name for that workload → ``403``;
3. a workload that does not run on this replica → ``404`` / ``503``.

``GET /healthz`` answers ``ok`` without credentials (load balancer and Kubernetes
probes); it says nothing about workloads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from mcpkeeper.gateway.access import AllowList
from mcpkeeper.gateway.inbound import Authenticator, bearer_credential
from mcpkeeper.state.names import NAME_PATTERN

__all__ = ["GatewayApp"]

_log = logging.getLogger(__name__)


class GatewayApp:
    def __init__(
        self,
        authenticator: Authenticator,
        allow: AllowList,
        app_for: Callable[[str], ASGIApp | None],
        known: Callable[[str], bool],
    ) -> None:
        self._auth = authenticator
        self._allow = allow
        self._app_for = app_for
        self._known = known

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await _lifespan(receive, send)
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return None
        path: str = scope["path"]
        if path == "/healthz" and scope["method"] in ("GET", "HEAD"):
            return await _reply(send, 200, {"status": "ok"})
        credential = bearer_credential(scope["headers"])
        caller = await self._auth.caller(credential) if credential is not None else None
        if caller is None:
            _log.info("gateway: refused a request without valid credentials (%s)", _client(scope))
            return await _reply(
                send,
                401,
                {
                    "error": "unauthorized",
                    "message": "the mcpkeeper gateway requires 'Authorization: Bearer <key>'",
                },
                [(b"www-authenticate", b'Bearer realm="mcpkeeper"')],
            )
        name, _, _rest = path.lstrip("/").partition("/")
        if not NAME_PATTERN.fullmatch(name) or not self._known(name):
            return await _reply(send, 404, {"error": "not_found", "message": "no such workload"})
        if not self._allow.allows(caller, name):
            _log.warning("gateway: caller %s is not allowed to use workload %s", caller, name)
            return await _reply(
                send,
                403,
                {"error": "forbidden", "message": f"caller {caller!r} may not use workload {name!r}"},
            )
        app = self._app_for(name)
        if app is None:
            return await _reply(
                send, 503, {"error": "not_running", "message": f"workload {name!r} is not running"}, retry=5
            )
        root = scope.get("root_path", "") + f"/{name}"
        await app({**scope, "root_path": root}, receive, send)
        return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _reply(
    send: Send,
    status: int,
    payload: dict[str, str],
    headers: list[tuple[bytes, bytes]] | None = None,
    retry: int | None = None,
) -> None:
    body = json.dumps(payload).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry is not None:
        head.append((b"retry-after", str(retry).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown client"
