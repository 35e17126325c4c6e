"""HTTP control of fixture servers running in another process.

The CLI subprocess tests and ``make demo`` run the fixtures with
``python -m mcpkeeper.testing serve`` and steer them from outside: switch the token
endpoint's fault, read counters, shorten token lifetimes, revoke tokens. Loopback only;
it controls test servers and nothing else.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper.testing.auth_server import FixtureAuthServer
from mcpkeeper.testing.faults import FaultMode
from mcpkeeper.testing.mcp_server import FixtureMCPServer

__all__ = ["create_control_app"]


class _BadRequestError(Exception):
    pass


def create_control_app(auth: FixtureAuthServer, mcp: FixtureMCPServer | None = None) -> Starlette:
    """Routes: ``GET /health``, ``GET /counters``, ``POST /fault``, ``POST /lifetime``,
    ``POST /authorize-mode``, ``POST /revoke-all-access-tokens``, ``POST /reset-counters``,
    ``POST /mint``."""

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True, "fault": auth.fault.value})

    async def counters(request: Request) -> Response:
        body: dict[str, Any] = {
            "auth": auth.counters.to_dict(),
            "fault": auth.fault.value,
            "revocations": list(auth.revocations),
        }
        if mcp is not None:
            body["mcp"] = {
                "requests": mcp.requests,
                "mcp_requests": mcp.mcp_requests,
                "statuses": {str(code): n for code, n in mcp.statuses.items()},
                "tool_calls": dict(mcp.tool_calls),
                "last_authorization_present": mcp.last_authorization_present,
                "seen_token_count": mcp.seen_token_count,
                "custom_headers": dict(mcp.custom_headers),
            }
        return JSONResponse(body)

    async def fault(request: Request) -> Response:
        data = await _json_object(request)
        mode = data.get("mode")
        if mode not in {m.value for m in FaultMode}:
            raise _BadRequestError(f"mode must be one of {[m.value for m in FaultMode]}")
        retry_after = data.get("retry_after", 30)
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise _BadRequestError("retry_after must be a non-negative integer or null")
        body = data.get("body", "html")
        if body not in ("html", "json"):
            raise _BadRequestError("body must be 'html' or 'json'")
        await auth.set_fault(mode, retry_after=retry_after, body=body)
        return JSONResponse({"mode": auth.fault.value})

    async def lifetime(request: Request) -> Response:
        seconds = (await _json_object(request)).get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise _BadRequestError("seconds must be a positive number")
        auth.access_token_lifetime = seconds
        return JSONResponse({"seconds": auth.access_token_lifetime})

    async def authorize_mode(request: Request) -> Response:
        mode = (await _json_object(request)).get("mode")
        if mode == "approve" or mode == "deny":
            auth.authorize_mode = mode
            return JSONResponse({"mode": mode})
        raise _BadRequestError("mode must be 'approve' or 'deny'")

    async def revoke_all(request: Request) -> Response:
        return JSONResponse({"revoked": auth.revoke_all_access_tokens()})

    async def reset_counters(request: Request) -> Response:
        auth.reset_counters()
        if mcp is not None:
            mcp.reset_counters()
        return JSONResponse({"ok": True})

    async def mint(request: Request) -> Response:
        data = await _json_object(request)
        client_id = data.get("client_id", "fixture-client")
        scope, resource = data.get("scope"), data.get("resource")
        if not all(v is None or isinstance(v, str) for v in (scope, resource)) or not isinstance(
            client_id, str
        ):
            raise _BadRequestError("client_id, scope and resource must be strings")
        return JSONResponse(auth.mint(client_id, scope=scope, resource=resource))

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/counters", counters, methods=["GET"]),
            Route("/fault", fault, methods=["POST"]),
            Route("/lifetime", lifetime, methods=["POST"]),
            Route("/authorize-mode", authorize_mode, methods=["POST"]),
            Route("/revoke-all-access-tokens", revoke_all, methods=["POST"]),
            Route("/reset-counters", reset_counters, methods=["POST"]),
            Route("/mint", mint, methods=["POST"]),
        ],
        exception_handlers={_BadRequestError: _bad_request},
    )


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _BadRequestError("body must be JSON") from None
    if not isinstance(data, dict):
        raise _BadRequestError("body must be a JSON object")
    return data


async def _bad_request(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)
