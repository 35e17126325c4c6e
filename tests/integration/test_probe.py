"""tcp_probe against real sockets: a listener, a closed port, a name that does not resolve, nonsense."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from mcpkeeper.auth.probe import tcp_probe

pytestmark = pytest.mark.integration


async def test_listening_port_is_reachable_and_gets_no_request() -> None:
    received: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(100))  # b"" when the probe closes without sending
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert await tcp_probe(f"https://127.0.0.1:{port}/token")() is True
        async with asyncio.timeout(5):
            while not received:
                await asyncio.sleep(0.01)
    assert received == [b""]


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        assert await tcp_probe(f"http://127.0.0.1:{port}/token")() is False


async def test_unresolvable_name_is_unreachable_within_the_timeout() -> None:
    start = time.monotonic()
    assert await tcp_probe("https://no-such-host.invalid/token", timeout=1.0)() is False
    assert time.monotonic() - start < 5.0


@pytest.mark.parametrize("url", ["not a url", "https://", "http://h:99999999/x", "https://[::1/x", ""])
async def test_nonsense_never_raises(url: str) -> None:
    assert await tcp_probe(url, timeout=0.5)() is False


async def test_default_ports() -> None:
    from mcpkeeper.auth.probe import _host_port

    assert _host_port("https://as.example.com/token") == ("as.example.com", 443)
    assert _host_port("http://as.example.com/token") == ("as.example.com", 80)
    assert _host_port("https://as.example.com:8443/token") == ("as.example.com", 8443)
