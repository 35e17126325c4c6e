"""Token-endpoint fault modes: the ways a real authorization server (or what sits in front
of it) fails, reproduced on demand.

Each mode is chosen to land on one side of the transient/permanent line drawn by
``mcpkeeper.auth.errors.classify``: only ``invalid_grant`` is the server's verdict; the
others are outages that must never cost the user a login.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from starlette.responses import JSONResponse, PlainTextResponse, Response

__all__ = ["FaultMode", "FaultSettings", "fault_response"]


class FaultMode(StrEnum):
    OK = "ok"
    #: A web application firewall's HTML block page (no JSON, so not an OAuth verdict).
    WAF_HTML_403 = "waf_html_403"
    SERVER_ERROR_500 = "server_error_500"
    #: 429 with ``Retry-After``.
    RATE_LIMITED_429 = "rate_limited_429"
    #: 400 ``{"error": "invalid_grant"}``: the one permanent verdict.
    INVALID_GRANT = "invalid_grant"
    #: 200 whose body is not a token response (HTML, or truncated JSON).
    UNPARSABLE_200 = "unparsable_200"
    #: Nothing listens on the port: connection refused. Restoring re-binds the same port.
    REFUSED = "refused"
    #: The request is accepted and not answered until the fault changes (then a bare 503,
    #: the request unprocessed) or the client gives up.
    HANG = "hang"
    #: 400 ``invalid_request`` whose ``error_description`` repeats the presented refresh
    #: token, as careless servers do: whatever the client shows of the server's words must
    #: not carry the secret on (a leak test's bait).
    ECHO_REFRESH_TOKEN = "echo_refresh_token"


UnparsableBody = Literal["html", "json"]


@dataclass(frozen=True, slots=True)
class FaultSettings:
    mode: FaultMode = FaultMode.OK
    #: ``Retry-After`` seconds sent with ``rate_limited_429``; ``None`` sends no header.
    retry_after: int | None = 30
    #: What ``unparsable_200`` answers with: an HTML page or cut-off JSON.
    body: UnparsableBody = "html"


_WAF_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>403 Forbidden</title></head><body>"
    "<h1>Access denied</h1><p>Your request was blocked by the web application firewall.</p>"
    "<p>Reference: fixture-waf</p></body></html>\n"
)
_LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>"
    "<form method='post'><input name='username'></form></body></html>\n"
)
_BROKEN_JSON = '{"access_token": "fxat_truncated", "token_type": "Bea'


def fault_response(settings: FaultSettings, refresh_token: str | None = None) -> Response | None:
    """The canned answer for ``settings.mode``, or ``None`` when the request is served normally.

    ``refused`` and ``hang`` are not responses and are handled by the server itself.
    ``refresh_token`` is the one the request presented (echoed by ``echo_refresh_token``).
    """
    mode = settings.mode
    if mode is FaultMode.WAF_HTML_403:
        return Response(_WAF_PAGE, status_code=403, media_type="text/html")
    if mode is FaultMode.SERVER_ERROR_500:
        return PlainTextResponse("Internal Server Error", status_code=500)
    if mode is FaultMode.RATE_LIMITED_429:
        headers = {} if settings.retry_after is None else {"Retry-After": str(settings.retry_after)}
        return PlainTextResponse("Too Many Requests", status_code=429, headers=headers)
    if mode is FaultMode.INVALID_GRANT:
        return JSONResponse(
            {"error": "invalid_grant", "error_description": "grant revoked by the authorization server"},
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )
    if mode is FaultMode.ECHO_REFRESH_TOKEN:
        return JSONResponse(
            {"error": "invalid_request", "error_description": f"refresh_token {refresh_token} is malformed"},
            status_code=400,
            headers={"Cache-Control": "no-store"},
        )
    if mode is FaultMode.UNPARSABLE_200:
        if settings.body == "json":
            return Response(_BROKEN_JSON, status_code=200, media_type="application/json")
        return Response(_LOGIN_PAGE, status_code=200, media_type="text/html")
    return None
