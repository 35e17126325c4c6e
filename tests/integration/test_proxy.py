"""The token-injecting reverse proxy against a real upstream, both served by uvicorn on loopback.

The upstream is a small Starlette app that records what it receives and can hold a
response or a stream open until the test releases it, so streaming is shown by ordering
(the client sees event one before the upstream sends event two), never by timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from mcpkeeper.auth.errors import AuthRetryingError, UnauthenticatedError
from mcpkeeper.proxy import PROXY_ERROR_CODE, create_proxy_app
from mcpkeeper.testing import serve_asgi
from tests.integration.proxy_support import FakeProvider

pytestmark = pytest.mark.integration

WAIT = 5.0  # bound on every wait for an event in these tests


@dataclass
class Upstream:
    """A recording upstream; ``url`` is set once it is served."""

    url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    valid_tokens: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    first_chunk: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    hold_started: asyncio.Event = field(default_factory=asyncio.Event)
    hold_abandoned: asyncio.Event = field(default_factory=asyncio.Event)
    endpoint_url: str = "/messages/?session_id=abc"
    redirect_to: str = ""

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/sse", self._sse, methods=["GET"]),
                Route("/legacy/sse", self._legacy_sse, methods=["GET"]),
                Route("/idle-stream", self._idle_stream, methods=["GET"]),
                Route("/upload", self._upload, methods=["POST"]),
                Route("/boom", self._boom, methods=["GET", "POST"]),
                Route("/protected", self._protected, methods=["GET", "POST"]),
                Route("/redirect", self._redirect, methods=["GET", "POST"]),
                Route("/hold", self._hold, methods=["POST"]),
                Route("/cookie", self._cookie, methods=["GET"]),
                Route("/{rest:path}", self._record, methods=["GET", "POST", "DELETE", "PUT", "PATCH"]),
            ]
        )

    def _note(self, request: Request, body: bytes = b"") -> dict[str, Any]:
        entry = {
            "method": request.method,
            "path": request.url.path,
            "query": request.url.query,
            "authorization": request.headers.getlist("authorization"),
            "headers": dict(request.headers),
            "body": body.decode(),
        }
        self.seen.append(entry)
        return entry

    async def _record(self, request: Request) -> Response:
        entry = self._note(request, await request.body())
        session = request.headers.get("mcp-session-id", "new-session")
        return JSONResponse(entry, headers={"mcp-session-id": session, "x-upstream": "yes"})

    async def _sse(self, request: Request) -> Response:
        self._note(request)

        async def events() -> AsyncIterator[bytes]:
            yield b"id: 1\nevent: message\ndata: one\n\n"
            await asyncio.wait_for(self.release.wait(), WAIT)
            yield b"id: 2\nevent: message\ndata: two\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _legacy_sse(self, request: Request) -> Response:
        self._note(request)

        async def events() -> AsyncIterator[bytes]:
            yield b": keep-alive\n\n"
            yield f"event: endpoint\ndata: {self.endpoint_url}\n\n".encode()
            yield b"event: message\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _idle_stream(self, request: Request) -> Response:
        self._note(request)

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"event: message\ndata: hello\n\n"
                await asyncio.Event().wait()  # idle until the proxy goes away
                yield b""  # pragma: no cover
            finally:
                self.stream_closed.set()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _upload(self, request: Request) -> Response:
        self._note(request)
        size = 0
        async for chunk in request.stream():
            if chunk:
                size += len(chunk)
                self.first_chunk.set()
        return JSONResponse({"received": size})

    async def _boom(self, request: Request) -> Response:
        self._note(request)
        return PlainTextResponse("upstream exploded\n", status_code=500, headers={"x-boom": "1"})

    async def _protected(self, request: Request) -> Response:
        entry = self._note(request, await request.body())
        auth = request.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"www-authenticate": 'Bearer error="invalid_token"'},
            )
        return JSONResponse({"ok": True, "body": entry["body"]})

    async def _hold(self, request: Request) -> Response:
        """A tool call that takes its time: answers nothing until the caller has gone."""
        self._note(request, await request.body())
        self.hold_started.set()
        async with asyncio.timeout(WAIT):
            while not await request.is_disconnected():
                await asyncio.sleep(0.01)
        self.hold_abandoned.set()
        return JSONResponse({"too": "late"})

    async def _cookie(self, request: Request) -> Response:
        self._note(request)
        response = JSONResponse({"cookie": request.headers.get("cookie")})
        response.set_cookie("upstream-session", "s3cr3t", path="/")
        return response

    async def _redirect(self, request: Request) -> Response:
        self._note(request)
        return RedirectResponse(self.redirect_to, status_code=307)


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    async with serve_asgi(up.app()) as served:
        up.url = served.url
        yield up


@pytest.fixture
async def provider() -> FakeProvider:
    return FakeProvider("token-A", "token-B")


@pytest.fixture
async def proxy_url(upstream: Upstream, provider: FakeProvider) -> AsyncIterator[str]:
    async with serve_asgi(create_proxy_app(upstream.url + "/mcp", provider, name="demo")) as served:
        yield served.url


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        yield http


# --- forwarding -------------------------------------------------------------------------


async def test_injects_our_bearer_and_drops_the_clients(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        proxy_url + "/mcp?x=1&y=two%20words",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
        headers={"authorization": "Bearer client-supplied", "mcp-protocol-version": "2025-06-18"},
    )
    assert response.status_code == 200
    seen = upstream.seen[-1]
    assert seen["authorization"] == ["Bearer token-A"]
    assert seen["path"] == "/mcp"
    assert seen["query"] == "x=1&y=two%20words"
    assert seen["headers"]["mcp-protocol-version"] == "2025-06-18"
    assert seen["headers"]["content-type"] == "application/json"
    assert json.loads(seen["body"]) == {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert response.headers["x-upstream"] == "yes"


async def test_session_id_and_last_event_id_round_trip_and_delete_passes(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    first = await client.post(proxy_url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize"})
    assert first.headers["mcp-session-id"] == "new-session"

    again = await client.get(
        proxy_url + "/mcp",
        headers={"mcp-session-id": "sess-42", "last-event-id": "7", "accept": "text/event-stream"},
    )
    assert again.headers["mcp-session-id"] == "sess-42"
    assert upstream.seen[-1]["headers"]["last-event-id"] == "7"
    assert upstream.seen[-1]["headers"]["accept"] == "text/event-stream"

    deleted = await client.delete(proxy_url + "/mcp", headers={"mcp-session-id": "sess-42"})
    assert deleted.status_code == 200
    assert upstream.seen[-1]["method"] == "DELETE"
    assert upstream.seen[-1]["headers"]["mcp-session-id"] == "sess-42"
    assert upstream.seen[-1]["authorization"] == ["Bearer token-A"]


async def test_hop_by_hop_headers_are_not_forwarded(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    await client.get(
        proxy_url + "/anything",
        headers={
            "connection": "keep-alive, x-private-hop",
            "x-private-hop": "secret",
            "x-end-to-end": "kept",
        },
    )
    headers = upstream.seen[-1]["headers"]
    assert "x-private-hop" not in headers
    assert headers["x-end-to-end"] == "kept"
    assert headers["host"] == upstream.url.removeprefix("http://")


async def test_sse_response_streams_event_by_event(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", proxy_url + "/sse") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        async with asyncio.timeout(WAIT):
            first = [await anext(lines) for _ in range(3)]
        # The upstream is still holding event two back: only streaming got us this far.
        assert first == ["id: 1", "event: message", "data: one"]
        assert not upstream.release.is_set()
        upstream.release.set()
        rest = [line async for line in lines]
    assert "data: two" in rest


async def test_request_body_is_streamed_up_before_it_is_complete(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    chunk = b"x" * 64 * 1024

    async def body() -> AsyncIterator[bytes]:
        yield chunk
        # The rest is only sent once the upstream has the first part: a buffering proxy
        # would wait for the end of the body and never get here.
        await asyncio.wait_for(upstream.first_chunk.wait(), WAIT)
        yield chunk

    response = await client.post(proxy_url + "/upload", content=body())
    assert response.status_code == 200
    assert response.json() == {"received": 2 * len(chunk)}


async def test_client_disconnect_cancels_the_upstream_stream(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    async with client.stream("GET", proxy_url + "/idle-stream") as response:
        lines = response.aiter_lines()
        async with asyncio.timeout(WAIT):
            assert await anext(lines) == "event: message"
    await asyncio.wait_for(upstream.stream_closed.wait(), WAIT)


async def test_client_disconnect_cancels_a_request_still_waiting_for_its_answer(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    call = asyncio.create_task(
        client.post(proxy_url + "/hold", json={"jsonrpc": "2.0", "id": 1, "method": "x"})
    )
    await asyncio.wait_for(upstream.hold_started.wait(), WAIT)
    call.cancel()  # the client gives up and closes its connection
    await asyncio.wait_for(upstream.hold_abandoned.wait(), WAIT)


async def test_cookies_pass_through_and_are_never_stored_by_the_proxy(
    upstream: Upstream, proxy_url: str
) -> None:
    async with httpx.AsyncClient(timeout=WAIT) as first:
        answer = await first.get(proxy_url + "/cookie")
        assert answer.cookies.get("upstream-session") == "s3cr3t"
        again = await first.get(proxy_url + "/cookie")
        assert again.json() == {"cookie": "upstream-session=s3cr3t"}
    async with httpx.AsyncClient(timeout=WAIT) as second:
        other = await second.get(proxy_url + "/cookie")
    assert other.json() == {"cookie": None}


@pytest.mark.parametrize(
    "headers",
    [{"host": "attacker.example"}, {"origin": "https://attacker.example"}, {"origin": "null"}],
)
async def test_requests_a_web_page_could_send_are_refused(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(
        proxy_url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "x"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["data"]["status"] in ("forbidden_host", "forbidden_origin")
    assert upstream.seen == []


async def test_loopback_host_names_and_origins_are_served(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    port = proxy_url.rsplit(":", 1)[1]
    for headers in (
        {"host": f"localhost:{port}"},
        {"origin": "http://localhost:6274"},
        {"host": f"[::1]:{port}"},
    ):
        response = await client.get(proxy_url + "/mcp", headers=headers)
        assert response.status_code == 200, headers
    assert len(upstream.seen) == 3


# --- legacy HTTP+SSE endpoint event and redirects -----------------------------------------


async def test_legacy_endpoint_event_on_upstream_origin_is_rewritten_to_local(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    upstream.endpoint_url = upstream.url + "/messages/?session_id=abc"
    response = await client.get(proxy_url + "/legacy/sse")
    assert f"event: endpoint\ndata: {proxy_url}/messages/?session_id=abc\n\n" in response.text
    assert upstream.url not in response.text
    assert response.text.startswith(": keep-alive\n\n")
    assert response.text.endswith("event: message\ndata: {}\n\n")


@pytest.mark.parametrize("endpoint", ["/messages/?session_id=abc", "https://elsewhere.example/messages/"])
async def test_legacy_endpoint_event_relative_or_foreign_is_untouched(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient, endpoint: str
) -> None:
    upstream.endpoint_url = endpoint
    response = await client.get(proxy_url + "/legacy/sse")
    assert f"event: endpoint\ndata: {endpoint}\n\n" in response.text


async def test_redirect_to_another_origin_passes_through_and_never_carries_the_token(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    elsewhere = Upstream()
    async with serve_asgi(elsewhere.app()) as served:
        upstream.redirect_to = served.url + "/landing"
        response = await client.post(
            proxy_url + "/redirect", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}
        )
        assert response.status_code == 307
        assert response.headers["location"] == served.url + "/landing"
        assert elsewhere.seen == []  # the proxy did not follow it

        followed = await client.post(
            proxy_url + "/redirect", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, follow_redirects=True
        )
        assert followed.status_code == 200
    assert [entry["authorization"] for entry in elsewhere.seen] == [[]]
    assert upstream.seen[-1]["authorization"] == ["Bearer token-A"]


async def test_redirect_within_the_upstream_origin_is_rewritten_to_local(
    upstream: Upstream, proxy_url: str, client: httpx.AsyncClient
) -> None:
    upstream.redirect_to = upstream.url + "/mcp/?a=1"
    response = await client.get(proxy_url + "/redirect")
    assert response.status_code == 307
    assert response.headers["location"] == proxy_url + "/mcp/?a=1"


# --- upstream errors ----------------------------------------------------------------------


async def test_upstream_500_passes_through_unchanged(proxy_url: str, client: httpx.AsyncClient) -> None:
    response = await client.post(proxy_url + "/boom", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert response.status_code == 500
    assert response.text == "upstream exploded\n"
    assert response.headers["x-boom"] == "1"


async def test_upstream_down_is_502_with_a_clear_message(
    provider: FakeProvider, client: httpx.AsyncClient
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    async with serve_asgi(
        create_proxy_app(f"http://127.0.0.1:{dead_port}/mcp", provider, name="down")
    ) as served:
        plain = await client.get(served.url + "/mcp")
        rpc = await client.post(served.url + "/mcp", json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
    assert plain.status_code == 502
    assert plain.json()["status"] == "upstream_unreachable"
    assert f"127.0.0.1:{dead_port}" in plain.json()["error"]
    assert rpc.status_code == 502
    assert rpc.json()["id"] == 9
    assert "cannot reach" in rpc.json()["error"]["message"]


# --- token unavailable: 503, never 401 -------------------------------------------------------


async def test_auth_retrying_is_503_with_retry_after_rounded_up(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(error=AuthRetryingError("token endpoint answered HTTP 502", retry_after=12.3))
    async with serve_asgi(create_proxy_app(upstream.url, provider, name="demo")) as served:
        rpc = await client.post(
            served.url + "/mcp", json={"jsonrpc": "2.0", "id": "req-7", "method": "tools/call"}
        )
        plain = await client.get(served.url + "/mcp")
    assert rpc.status_code == 503
    assert rpc.headers["retry-after"] == "13"
    body = rpc.json()
    assert body["id"] == "req-7"
    assert body["error"]["code"] == PROXY_ERROR_CODE
    assert "token endpoint answered HTTP 502" in body["error"]["message"]
    assert body["error"]["data"] == {"status": "auth_retrying", "http_status": 503, "retry_after": 13}
    assert plain.status_code == 503
    assert plain.headers["retry-after"] == "13"
    assert plain.json() == {
        "error": plain.json()["error"],
        "status": "auth_retrying",
        "retry_after": 13,
    }
    assert upstream.seen == []


async def test_unauthenticated_is_503_without_retry_after_and_says_how_to_fix(
    upstream: Upstream, client: httpx.AsyncClient
) -> None:
    provider = FakeProvider(error=UnauthenticatedError("invalid_grant"))
    async with serve_asgi(create_proxy_app(upstream.url, provider, name="github")) as served:
        rpc = await client.post(served.url + "/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"})
    assert rpc.status_code == 503
    assert "retry-after" not in rpc.headers
    message = rpc.json()["error"]["message"]
    assert "invalid_grant" in message
    assert "run `mcpkeeper login github`" in message
    assert rpc.json()["error"]["data"]["status"] == "unauthenticated"
    assert upstream.seen == []


# --- upstream 401 -----------------------------------------------------------------------


async def test_upstream_401_forces_one_refresh_and_replays_with_the_new_token(
    upstream: Upstream, provider: FakeProvider, proxy_url: str, client: httpx.AsyncClient
) -> None:
    upstream.valid_tokens = {"token-B"}
    payload = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "echo"}}
    response = await client.post(proxy_url + "/protected", json=payload)
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert provider.rejected == ["token-A"]
    attempts = [(entry["authorization"], json.loads(entry["body"])) for entry in upstream.seen]
    assert attempts == [(["Bearer token-A"], payload), (["Bearer token-B"], payload)]


async def test_upstream_401_twice_is_503_never_401(
    upstream: Upstream, provider: FakeProvider, proxy_url: str, client: httpx.AsyncClient
) -> None:
    upstream.valid_tokens = set()
    provider.refresh_error = None
    response = await client.post(proxy_url + "/protected", json={"jsonrpc": "2.0", "id": 5, "method": "x"})
    # The replay's 401 goes back to the provider too: the monitor decides whether the grant
    # is refused (then unauthenticated); this fake just hands out the next token.
    assert response.status_code == 503
    assert "www-authenticate" not in response.headers
    assert response.json()["error"]["data"]["status"] == "token_refreshed"
    assert provider.rejected == ["token-A", "token-B"]
    assert len(upstream.seen) == 2


async def test_upstream_401_then_refresh_fails_is_503(
    upstream: Upstream, provider: FakeProvider, proxy_url: str, client: httpx.AsyncClient
) -> None:
    provider.refresh_error = UnauthenticatedError("invalid_grant", retry_after=None)
    response = await client.get(proxy_url + "/protected")
    assert response.status_code == 503
    assert response.json()["status"] == "unauthenticated"
    assert len(upstream.seen) == 1


async def test_upstream_401_on_a_streamed_body_refreshes_but_asks_the_client_to_retry(
    upstream: Upstream, provider: FakeProvider, client: httpx.AsyncClient
) -> None:
    upstream.valid_tokens = {"token-B"}
    async with serve_asgi(create_proxy_app(upstream.url, provider, replay_limit=1024)) as served:

        async def body() -> AsyncIterator[bytes]:
            yield b"x" * 2048

        response = await client.post(served.url + "/protected", content=body())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "0"
        assert response.json()["status"] == "token_refreshed"
        assert provider.rejected == ["token-A"]
        retried = await client.post(served.url + "/protected", content=b"y" * 2048)
    assert retried.status_code == 200
    assert [entry["authorization"] for entry in upstream.seen] == [["Bearer token-A"], ["Bearer token-B"]]


async def test_upstream_401_without_a_provider_is_503(upstream: Upstream, client: httpx.AsyncClient) -> None:
    async with serve_asgi(create_proxy_app(upstream.url, None, name="open")) as served:
        response = await client.get(served.url + "/protected")
        plain = await client.get(served.url + "/mcp", headers={"authorization": "Bearer from-client"})
    assert response.status_code == 503
    assert "mcpkeeper login open" in response.json()["error"]
    assert plain.status_code == 200
    assert upstream.seen[-1]["authorization"] == []


async def test_tokens_never_reach_the_logs(
    upstream: Upstream, provider: FakeProvider, proxy_url: str, client: httpx.AsyncClient, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream.valid_tokens = {"token-B"}
    await client.post(proxy_url + "/protected", json={"jsonrpc": "2.0", "id": 1, "method": "x"})  # replayed
    upstream.valid_tokens = set()
    await client.post(proxy_url + "/protected", json={"jsonrpc": "2.0", "id": 2, "method": "x"})  # 401 twice
    provider.error = AuthRetryingError("token endpoint answered HTTP 500", retry_after=3)
    await client.get(proxy_url + "/mcp", headers={"authorization": "Bearer client-secret"})
    assert provider.rejected == ["token-A", "token-B", "token-B"]
    assert "answering 503" in caplog.text  # the log is there, and says what happened
    for secret in ("token-A", "token-B", "client-secret"):
        assert secret not in caplog.text
