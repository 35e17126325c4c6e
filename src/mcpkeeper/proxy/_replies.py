"""The answers the proxy makes up itself, when it cannot forward a request.

An auth-side failure is always ``503 Service Unavailable`` with ``Retry-After`` (seconds
until the monitor's next attempt), never ``401``: a 401 makes an MCP client start its own
OAuth flow against the proxy, which cannot succeed and hides the real state (architecture.md §3).

For a JSON-RPC POST the body is a JSON-RPC error carrying the request's id, so an MCP
client resolves the pending call with a readable error (the MCP SDK surfaces a JSON-RPC
error found in a non-2xx body) instead of a bare transport failure. Anything else gets a
small JSON object. Neither ever contains a token: the reasons come from the monitor and
from exception types, both token-free by construction.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from mcpkeeper.auth.errors import TokenUnavailableError, UnauthenticatedError
from mcpkeeper.proxy._headers import RawHeaders
from mcpkeeper.sanitize import server_text
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["PROXY_ERROR_CODE", "LocalReply", "reply_for_token_error", "retry_after_seconds"]

#: JSON-RPC error code of every error the proxy makes up (JSON-RPC "server error" range;
#: -32000 is taken by the MCP SDK for "connection closed").
PROXY_ERROR_CODE = -32003


@dataclass(frozen=True, slots=True)
class LocalReply:
    """A response made up by the proxy.

    ``kind`` names what is wrong in a word a program can test (``auth_retrying``,
    ``unauthenticated``, ``upstream_unreachable``, ...); ``retry_after`` is in seconds,
    None when waiting alone will not help.
    """

    status: int
    kind: str
    message: str
    retry_after: float | None = None

    def __post_init__(self) -> None:
        # Messages quote reasons that may carry server text: one sanitiser, at the door.
        object.__setattr__(self, "message", server_text(self.message, 500))

    def render(self, method: str, request_body: bytes | None) -> tuple[RawHeaders, bytes]:
        """Headers and body for this reply to a request with ``method`` and ``request_body``."""
        payload = _jsonrpc_payload(self, method, request_body)
        if payload is None:
            payload = {
                "error": self.message,
                "status": self.kind,
                "retry_after": retry_after_seconds(self.retry_after),
            }
        body = json.dumps(payload).encode()
        headers: RawHeaders = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
        ]
        seconds = retry_after_seconds(self.retry_after)
        if seconds is not None:
            headers.append((b"retry-after", str(seconds).encode()))
        return headers, body


def retry_after_seconds(retry_after: float | None) -> int | None:
    """``Retry-After`` is whole seconds: round up, so a client never comes back too early."""
    if retry_after is None or math.isnan(retry_after):
        return None
    return max(0, math.ceil(retry_after))


def reply_for_token_error(exc: TokenUnavailableError, name: str) -> LocalReply:
    """503 for a token the monitor cannot give right now."""
    who = f"workload {name!r}" if name else "the upstream"
    if isinstance(exc, UnauthenticatedError):
        return LocalReply(
            503,
            WorkloadStatus.UNAUTHENTICATED.value,
            f"{who} is not authenticated ({exc.reason}); run `mcpkeeper login {name or 'NAME'}`",
            exc.retry_after,
        )
    when = retry_after_seconds(exc.retry_after)
    later = f"; retry in {when} s" if when is not None else ""
    return LocalReply(
        503,
        WorkloadStatus.AUTH_RETRYING.value,
        f"{who} has no valid token while authorization is retried ({exc.reason}){later}",
        exc.retry_after,
    )


def _jsonrpc_payload(reply: LocalReply, method: str, body: bytes | None) -> Any | None:
    """A JSON-RPC error (or batch of them) answering ``body``, if it is JSON-RPC at all."""
    if method != "POST" or not body:
        return None
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(message, dict) and "jsonrpc" in message:
        return _jsonrpc_error(reply, message.get("id"))
    if isinstance(message, list) and message and all(isinstance(m, dict) and "jsonrpc" in m for m in message):
        errors = [_jsonrpc_error(reply, m["id"]) for m in message if "id" in m]
        return errors or _jsonrpc_error(reply, None)
    return None


def _jsonrpc_error(reply: LocalReply, request_id: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"status": reply.kind, "http_status": reply.status}
    if reply.retry_after is not None:
        data["retry_after"] = retry_after_seconds(reply.retry_after)
    return {
        "jsonrpc": "2.0",
        "id": request_id if isinstance(request_id, str | int) else None,
        "error": {"code": PROXY_ERROR_CODE, "message": reply.message, "data": data},
    }
