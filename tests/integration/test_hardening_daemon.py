"""Hardening checks against the real daemon (``python -m mcpkeeper.daemon``) and its listeners."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcpkeeper.api.client import DaemonError
from mcpkeeper.api.paths import API_PREFIX, socket_path
from tests.integration.daemon_support import DaemonProcess

pytestmark = pytest.mark.integration


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[DaemonProcess]:
    async with DaemonProcess(tmp_path) as process:
        yield process


async def _control_exchange(home: Path, head: bytes, body_chunks: list[bytes]) -> bytes:
    """Send ``head`` and ``body_chunks`` on the control socket; what the daemon answers within 5 s."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path(home)))
    try:
        writer.write(head)
        for chunk in body_chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(5):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


async def test_the_control_api_refuses_a_huge_declared_body_before_reading_it(daemon: DaemonProcess) -> None:
    # Only the head is sent: a server that waits for the 20 MB never answers.
    head = (
        f"POST {API_PREFIX}/workloads HTTP/1.1\r\nHost: mcpkeeper\r\n"
        "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    ).encode()
    answer = await _control_exchange(daemon.home, head, [])
    assert answer.startswith(b"HTTP/1.1 413 "), answer


async def test_the_control_api_stops_reading_a_chunked_body_at_the_limit(daemon: DaemonProcess) -> None:
    head = (
        f"POST {API_PREFIX}/workloads HTTP/1.1\r\nHost: mcpkeeper\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b" " * 16384
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 6  # 96 kB, and the body never ends
    answer = await _control_exchange(daemon.home, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413 "), answer


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/mcp\r\nX-Injected: y", "control characters"),
        ("http://user:secret-password@127.0.0.1:9/mcp", "user name or password"),
        ("http://[::1:47001/mcp", "malformed"),
        ("http://127.0.0.1:9/" + "a" * 10_000, "characters long"),  # 100 kB: over the body limit
    ],
)
async def test_the_control_api_refuses_the_remote_urls_the_cli_refuses(
    daemon: DaemonProcess, url: str, reason: str
) -> None:
    with pytest.raises(DaemonError) as refused:
        await daemon.client.create_workload("w", url, auth=False)
    assert refused.value.status == 400
    assert reason in refused.value.message and "secret-password" not in refused.value.message
    assert await daemon.client.list_workloads(include_all=True) == []
