"""The client-token check in front of any ASGI app (the aggregated endpoint uses it).

The workload proxy checks the client token itself, with its other refusals
(:mod:`._guard`); an app that is not the proxy (the vMCP's MCP server) is wrapped in
:class:`ClientTokenGate`, which applies the same check and answers the same 403.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from mcpkeeper.proxy._guard import client_token_refusal

__all__ = ["ClientTokenGate"]


class ClientTokenGate:
    """``app`` behind the client token; ``required()`` gives the token, or None when none is required.

    ``required`` is asked per request, so the requirement follows the workloads that
    come and go (the vMCP requires the token while any running workload does).
    """

    def __init__(self, app: ASGIApp, required: Callable[[], str | None]) -> None:
        self._app = app
        self._required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            token = self._required()
            refusal = client_token_refusal(scope["headers"], token) if token is not None else None
            if refusal is not None:
                headers, payload = refusal.render(scope["method"], None)
                await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
                await send({"type": "http.response.body", "body": payload, "more_body": False})
                return
        await self._app(scope, receive, send)
