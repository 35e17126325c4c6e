"""``mcpkeeper.net``: the loopback listeners and the in-loop uvicorn every server of mcpkeeper uses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette

from mcpkeeper.net import InLoopServer, PortInUseError, ServerStartError, bind_loopback

pytestmark = pytest.mark.integration


async def test_accepted_connections_get_tcp_nodelay() -> None:
    # Without it Nagle's algorithm meets the client's delayed ACK: ~40 ms per keep-alive request.
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=bind_loopback(0))
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(5):
            assert await accepted != 0
        writer.close()


async def test_a_live_listener_makes_the_port_busy() -> None:
    with bind_loopback(0) as first:
        port = first.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            bind_loopback(port)
    bind_loopback(port).close()  # free again once the listener is gone


async def test_a_server_that_cannot_start_says_so_and_releases_its_socket() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    sock = bind_loopback(0)
    server = InLoopServer(Starlette(lifespan=broken), sock, name="broken", lifespan="on")
    with pytest.raises(ServerStartError, match="server broken failed to start"):
        await server.start()
    assert sock.fileno() == -1
    assert not server.running
