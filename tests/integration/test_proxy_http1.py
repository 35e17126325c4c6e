"""The proxy's own HTTP/1.1 upstream client (``proxy._http1``) against real servers on loopback.

A uvicorn server covers ordinary exchanges; small raw-socket servers cover what uvicorn
never does (a body delimited by the end of the connection, closing a kept-alive
connection under the client's feet, a TLS certificate nobody trusts).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from mcpkeeper.proxy._http1 import Http1Pool, UpstreamBroken, UpstreamUnreachable
from mcpkeeper.proxy._upstream import _ssl_context
from mcpkeeper.testing import ServedApp
from tests.tls import write_self_signed

pytestmark = pytest.mark.integration

WAIT = 5.0

_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _pool(port: int, *, ssl_context: ssl.SSLContext | None = None, max_idle: int = 4) -> Http1Pool:
    return Http1Pool(
        "127.0.0.1",
        port,
        host_header=f"127.0.0.1:{port}",
        ssl_context=ssl_context,
        connect_timeout=WAIT,
        write_timeout=WAIT,
        keepalive_expiry=30.0,
        max_idle=max_idle,
    )


async def _port(request: Request) -> Response:
    assert request.client is not None
    return JSONResponse({"port": request.client.port, "host": request.headers["host"]})


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "size": len(body),
            "chunked": request.headers.get("transfer-encoding") == "chunked",
            "length": request.headers.get("content-length"),
        }
    )


async def _events(request: Request) -> Response:
    async def stream() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"data: {i}\n\n".encode()

    return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture
async def served() -> AsyncIterator[ServedApp]:
    app = Starlette(
        routes=[
            Route("/port", _port, methods=["GET", "HEAD"]),
            Route("/echo", _echo, methods=["POST"]),
            Route("/events", _events),
        ]
    )
    async with ServedApp(app) as server:
        yield server


async def _read_all(pool: Http1Pool, method: str, target: bytes, body: bytes = b"") -> tuple[int, bytes]:
    response = await pool.send(method, target, [], body)
    try:
        return response.status_code, b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()


async def test_sequential_requests_reuse_one_connection_and_send_the_host(served: ServedApp) -> None:
    pool = _pool(served.port)
    answers = [await _read_all(pool, "GET", b"/port") for _ in range(5)]
    await pool.aclose()
    assert {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1  # same client port every time
    assert f'"host":"127.0.0.1:{served.port}"'.encode() in answers[0][1]


async def test_bodies_go_with_their_length_or_chunked_when_streamed(served: ServedApp) -> None:
    pool = _pool(served.port)

    async def parts() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        yield b""
        yield b"b" * 2000

    buffered = await _read_all(pool, "POST", b"/echo", b"x" * 1234)
    response = await pool.send("POST", b"/echo", [], parts())
    streamed = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    await pool.aclose()
    assert buffered == (200, b'{"size":1234,"chunked":false,"length":"1234"}')
    assert streamed == b'{"size":3000,"chunked":true,"length":null}'


async def test_an_event_stream_arrives_whole_and_the_connection_is_kept(served: ServedApp) -> None:
    pool = _pool(served.port)
    status, body = await _read_all(pool, "GET", b"/events")
    again = await _read_all(pool, "GET", b"/port")
    await pool.aclose()
    assert status == 200
    assert body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert again[0] == 200


async def test_head_ends_at_the_headers_despite_a_content_length(served: ServedApp) -> None:
    pool = _pool(served.port)
    async with asyncio.timeout(WAIT):
        status, body = await _read_all(pool, "HEAD", b"/port")
        after = await _read_all(pool, "GET", b"/port")
    await pool.aclose()
    assert (status, body) == (200, b"")
    assert after[0] == 200


async def test_concurrent_requests_each_get_a_connection_and_idle_ones_are_capped(served: ServedApp) -> None:
    pool = _pool(served.port, max_idle=2)
    answers = await asyncio.gather(*(_read_all(pool, "GET", b"/port") for _ in range(6)))
    assert {status for status, _ in answers} == {200}
    assert len(pool._idle) <= 2
    await pool.aclose()
    assert pool.closed
    with pytest.raises(RuntimeError):
        await pool.send("GET", b"/port", [], b"")


async def _raw_server(handler: _Handler) -> asyncio.Server:
    return await asyncio.start_server(handler, "127.0.0.1", 0)


def _port_of(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)


async def test_a_body_delimited_by_the_end_of_the_connection_is_read_whole() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of ")
        await writer.drain()
        writer.write(b"it")
        writer.close()

    async with await _raw_server(handler) as server:
        pool = _pool(_port_of(server))
        async with asyncio.timeout(WAIT):
            assert await _read_all(pool, "GET", b"/") == (200, b"all of it")
        assert pool._idle == []  # such a connection is never kept
        await pool.aclose()


async def test_a_kept_connection_the_server_dropped_is_replaced_transparently() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await _read_head(reader)
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        # Keep-alive announced, yet the connection ends as soon as the client's next
        # request arrives, unanswered: a server closing an idle connection at that moment.
        await reader.read(1)
        writer.close()

    async with await _raw_server(handler) as server:
        pool = _pool(_port_of(server))
        async with asyncio.timeout(WAIT):
            assert await _read_all(pool, "GET", b"/") == (200, b"ok")
            assert await _read_all(pool, "POST", b"/", b"{}") == (200, b"ok")
        await pool.aclose()
    assert served == 2


async def test_an_answer_that_breaks_off_raises_and_the_connection_is_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async with await _raw_server(handler) as server:
        pool = _pool(_port_of(server))
        response = await pool.send("GET", b"/", [], b"")
        received = []
        with pytest.raises(UpstreamBroken):
            async with asyncio.timeout(WAIT):
                async for chunk in response.aiter_raw():
                    received.append(chunk)
        await response.aclose()
        assert b"".join(received) == b"only part"
        assert pool._idle == []
        await pool.aclose()


async def test_a_header_value_with_a_line_break_is_never_sent(served: ServedApp) -> None:
    pool = _pool(served.port)
    with pytest.raises(UpstreamUnreachable, match="line break"):
        await pool.send("GET", b"/port", [(b"authorization", b"Bearer x\r\nx-injected: 1")], b"")
    await pool.aclose()


async def test_https_verifies_the_certificate(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_head(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecret")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async with await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context) as server:
        port = _port_of(server)
        untrusting = _pool(port, ssl_context=_ssl_context())
        with pytest.raises(UpstreamUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            async with asyncio.timeout(WAIT):
                await untrusting.send("GET", b"/", [], b"")
        await untrusting.aclose()

        trusting_context = ssl.create_default_context(cafile=str(cert))
        trusting = _pool(port, ssl_context=trusting_context)
        async with asyncio.timeout(WAIT):
            assert await _read_all(trusting, "GET", b"/") == (200, b"secret")
        await trusting.aclose()


def test_the_client_works_on_uvloop_as_the_daemon_runs_it() -> None:
    """uvloop's transports are not asyncio's classes: run a real exchange on it."""

    async def exchange() -> tuple[int, bytes]:
        app = Starlette(routes=[Route("/events", _events)])
        async with ServedApp(app) as server:
            pool = _pool(server.port)
            async with asyncio.timeout(WAIT):
                first = await _read_all(pool, "GET", b"/events")
                second = await _read_all(pool, "GET", b"/events")
            await pool.aclose()
        assert first == second
        return first

    assert uvloop.run(exchange()) == (200, b"data: 0\n\ndata: 1\n\ndata: 2\n\n")
