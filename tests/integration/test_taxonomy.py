"""The error table of architecture.md §3.5, row by row, from real failures.

Every row is produced by the real token client talking HTTP over loopback to a real
server (or to a closed port, a hanging socket, an untrusted TLS certificate, a name that
does not resolve) — no hand-made exception strings — and then classified.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mcpkeeper.auth import ClientCredentials, FailureKind, Token, TokenEndpoint, classify
from mcpkeeper.net import bind_loopback
from mcpkeeper.testing import ServedApp
from tests.tls import write_self_signed

T, P = FailureKind.TRANSIENT, FailureKind.PERMANENT
WAF_PAGE = "<html><body><h1>403 Forbidden</h1>Request blocked by WAF</body></html>"

# path -> (status, content type, body, extra headers)
CASES: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
    "s500": (500, "text/plain", b"oops", {}),
    "s502_html": (502, "text/html", b"<html>Bad gateway</html>", {}),
    "s503": (503, "application/json", b'{"error":"invalid_grant"}', {}),
    "s408": (408, "text/plain", b"", {}),
    "s429": (429, "application/json", b'{"error":"slow_down"}', {"Retry-After": "42"}),
    "waf403": (403, "text/html", WAF_PAGE.encode(), {}),
    "empty401": (401, "text/plain", b"", {}),
    "text400": (400, "text/plain", b"bad request", {}),
    "json_no_error": (400, "application/json", b'{"message":"nope"}', {}),
    "json_array_400": (400, "application/json", b'["error"]', {}),
    "html200": (200, "text/html", b"<html>Sign in to the captive portal</html>", {}),
    "badjson200": (200, "application/json", b'{"access_token": ', {}),
    "noaccess200": (200, "application/json", b'{"token_type":"Bearer"}', {}),
    "temp_unavailable": (400, "application/json", b'{"error":"temporarily_unavailable"}', {}),
    "server_error_400": (400, "application/json", b'{"error":"server_error"}', {}),
    "invalid_grant": (400, "application/json", b'{"error":"invalid_grant"}', {}),
    "invalid_client": (401, "application/json", b'{"error":"invalid_client"}', {}),
    "unauthorized_client": (400, "application/json", b'{"error":"unauthorized_client"}', {}),
    "invalid_scope": (400, "application/json", b'{"error":"invalid_scope"}', {}),
    "unsupported_grant_type": (400, "application/json", b'{"error":"unsupported_grant_type"}', {}),
    "invalid_request": (400, "application/json", b'{"error":"invalid_request"}', {}),
    "other_code": (400, "application/json", b'{"error":"access_denied_by_policy"}', {}),
}

EXPECTED: list[tuple[str, FailureKind]] = [
    ("s500", T),
    ("s502_html", T),
    ("s503", T),  # 5xx is transient whatever the body says
    ("s408", T),
    ("s429", T),
    ("waf403", T),
    ("empty401", T),
    ("text400", T),
    ("json_no_error", T),
    ("json_array_400", T),
    ("html200", T),
    ("badjson200", T),
    ("noaccess200", T),
    ("temp_unavailable", T),
    ("server_error_400", T),
    ("invalid_grant", P),
    ("invalid_client", P),
    ("unauthorized_client", P),
    ("invalid_scope", P),
    ("unsupported_grant_type", P),
    ("invalid_request", P),
    ("other_code", P),
]


async def _answer(request: Request) -> Response:
    status, ctype, body, headers = CASES[request.path_params["case"]]
    if ctype == "application/json" and body.startswith(b"{") and body.endswith(b"}"):
        return Response(body, status_code=status, media_type=ctype, headers=headers)
    if ctype == "text/plain":
        return PlainTextResponse(body.decode(), status_code=status, headers=headers)
    return Response(body, status_code=status, media_type=ctype, headers=headers)


async def _ok(request: Request) -> Response:
    return JSONResponse({"access_token": "fresh", "expires_in": 60, "token_type": "Bearer"})


async def _hang(request: Request) -> Response:
    await asyncio.sleep(30)
    return PlainTextResponse("late")


APP = Starlette(
    routes=[
        Route("/ok", _ok, methods=["POST"]),
        Route("/hang", _hang, methods=["POST"]),
        Route("/{case}", _answer, methods=["POST"]),
    ]
)
OLD = Token(access_token="old", refresh_token="rt-old", expires_at=None)


@pytest.fixture
async def server() -> AsyncIterator[ServedApp]:
    async with ServedApp(APP) as served:
        yield served


async def _failure_for(url: str, timeout: float = 5.0) -> BaseException:
    endpoint = TokenEndpoint(url, ClientCredentials("client"), timeout=timeout)
    with pytest.raises(Exception) as info:
        await endpoint.refresh(OLD)
    return info.value


@pytest.mark.parametrize(("case", "kind"), EXPECTED)
async def test_http_rows(server: ServedApp, case: str, kind: FailureKind) -> None:
    exc = await _failure_for(f"{server.url}/{case}")
    failure = classify(exc)
    assert failure.kind is kind, (case, failure)
    assert not failure.network
    assert "rt-old" not in failure.reason


async def test_retry_after_is_carried(server: ServedApp) -> None:
    failure = classify(await _failure_for(f"{server.url}/s429"))
    assert failure.retry_after == 42.0


async def test_success_is_not_an_error(server: ServedApp) -> None:
    endpoint = TokenEndpoint(f"{server.url}/ok", ClientCredentials("client"))
    token = await endpoint.refresh(OLD)
    assert token.access_token == "fresh"
    assert token.refresh_token == "rt-old"  # not rotated: the old one is kept


async def test_connection_refused_is_transient_network() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    failure = classify(await _failure_for(f"http://127.0.0.1:{port}/token"))
    assert (failure.kind, failure.network) == (T, True)


async def test_dns_failure_is_transient_network() -> None:
    failure = classify(await _failure_for("http://no-such-host.invalid/token"))
    assert (failure.kind, failure.network) == (T, True)


async def test_read_timeout_is_transient_but_not_network(server: ServedApp) -> None:
    exc = await _failure_for(f"{server.url}/hang", timeout=0.3)
    assert isinstance(exc, httpx.ReadTimeout)
    failure = classify(exc)
    assert (failure.kind, failure.network) == (T, False)


async def test_connect_timeout_is_transient_network() -> None:
    # A listening socket whose accept backlog is full drops new SYNs: the handshake never
    # completes and the client's connect timeout fires, as behind a black-holing VPN.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        try:
            url = f"http://127.0.0.1:{port}/token"
            endpoint = TokenEndpoint(url, ClientCredentials("client"), timeout=0.5)
            with pytest.raises(httpx.ConnectTimeout) as info:
                await endpoint.refresh(OLD)
        finally:
            for filler in fillers:
                filler.close()
    failure = classify(info.value)
    assert (failure.kind, failure.network) == (T, True)


async def test_untrusted_tls_certificate_is_permanent(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=0, ssl_certfile=str(cert), ssl_keyfile=str(key), log_level="error"
    )
    server = uvicorn.Server(config)
    sock = bind_loopback(0)
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
        failure = classify(await _failure_for(f"https://127.0.0.1:{port}/ok"))
        assert failure.kind is P
        assert "certificate" in failure.reason.lower()
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_cancellation_is_neither() -> None:
    assert classify(asyncio.CancelledError()).kind is FailureKind.CANCELLED


def test_ssl_error_in_cause_chain_is_found() -> None:
    inner = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    outer = httpx.ConnectError("handshake failed")
    outer.__cause__ = inner
    assert classify(outer).kind is P
