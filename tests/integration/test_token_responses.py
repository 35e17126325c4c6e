"""What a token endpoint sends is validated before it is used (real HTTP over loopback).

A server's bugs must not become our outages or leaks: ``expires_in`` that is NaN, huge,
negative or a string; a ``token_type`` that is not Bearer; an access token that cannot go
in an ``Authorization: Bearer`` header; an ``error_description`` that echoes the refresh
token or carries terminal escapes.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper.auth import ClientCredentials, FailureKind, Token, TokenEndpoint, classify
from mcpkeeper.auth.token import MAX_LIFETIME
from mcpkeeper.testing import ServedApp

pytestmark = pytest.mark.integration

REFRESH = "rt-very-secret-0123456789"
BODIES: dict[str, bytes] = {
    "huge": b'{"access_token":"at-1","token_type":"Bearer","expires_in":1e300}',
    "nan": b'{"access_token":"at-1","token_type":"Bearer","expires_in":NaN}',
    "negative": b'{"access_token":"at-1","token_type":"Bearer","expires_in":-5}',
    "string": b'{"access_token":"at-1","token_type":"Bearer","expires_in":"3600"}',
    "garbage": b'{"access_token":"at-1","token_type":"Bearer","expires_in":"soon"}',
    "bool": b'{"access_token":"at-1","token_type":"bearer","expires_in":true}',
    "no_type": b'{"access_token":"at-1","expires_in":60}',
    "mac": b'{"access_token":"at-1","token_type":"mac","expires_in":60}',
    "dpop": b'{"access_token":"at-1","token_type":"DPoP","expires_in":60}',
    "crlf": b'{"access_token":"at-1\\r\\nX-Injected: yes","token_type":"Bearer","expires_in":60}',
    "unicode": b'{"access_token":"at-\xc3\xa9t\xc3\xa9","token_type":"Bearer","expires_in":60}',
}


@pytest.fixture
async def server() -> AsyncIterator[ServedApp]:
    async def token(request: Request) -> Response:
        case = request.path_params["case"]
        if case == "echo":
            form = await request.form()
            description = f"refresh token {form.get('refresh_token')} is invalid\x1b[2J\nsecond line"
            return JSONResponse({"error": "invalid_grant", "error_description": description}, 400)
        return Response(BODIES[case], media_type="application/json")

    async with ServedApp(Starlette(routes=[Route("/{case}", token, methods=["POST"])])) as served:
        yield served


async def _refresh(server: ServedApp, case: str) -> Token:
    endpoint = TokenEndpoint(f"{server.url}/{case}", ClientCredentials("cid"))
    return await endpoint.refresh(Token("at-0", REFRESH))


@pytest.mark.parametrize(
    ("case", "lifetime"),
    [
        ("huge", MAX_LIFETIME),
        ("nan", None),
        ("negative", None),
        ("string", 3600.0),
        ("garbage", None),
        ("bool", None),
        ("no_type", 60.0),
    ],
)
async def test_lifetimes_are_sane_or_unknown(server: ServedApp, case: str, lifetime: float | None) -> None:
    before = time.time()
    token = await _refresh(server, case)
    assert token.token_type == "Bearer"
    if lifetime is None:
        assert token.expires_at is None
    else:
        assert token.expires_at is not None and math.isfinite(token.expires_at)
        assert token.expires_at - before == pytest.approx(lifetime, abs=5)


@pytest.mark.parametrize("case", ["mac", "dpop", "crlf", "unicode"])
async def test_unusable_tokens_are_a_permanent_error_naming_the_server(server: ServedApp, case: str) -> None:
    with pytest.raises(Exception) as info:
        await _refresh(server, case)
    failure = classify(info.value)
    assert failure.kind is FailureKind.PERMANENT
    assert "unusable token from the authorization server" in failure.reason
    assert "\n" not in failure.reason and "X-Injected" not in failure.reason


async def test_an_echoed_refresh_token_never_reaches_the_reason(server: ServedApp) -> None:
    with pytest.raises(Exception) as info:
        await _refresh(server, "echo")
    failure = classify(info.value)
    assert failure.kind is FailureKind.PERMANENT
    for text in (failure.reason, str(info.value)):
        assert REFRESH not in text
        assert "\x1b" not in text and "\n" not in text
        assert "[redacted]" in text


def test_a_stored_infinity_is_clamped_when_read_back() -> None:
    now = time.time()
    token = Token.from_dict({"access_token": "at-1", "expires_at": float("inf"), "issued_at": now})
    assert token.expires_at is None  # not a number we can use: unknown, refreshed on a 401
    token = Token.from_dict({"access_token": "at-1", "expires_at": 1e300, "issued_at": now})
    assert token.expires_at == pytest.approx(now + MAX_LIFETIME)
