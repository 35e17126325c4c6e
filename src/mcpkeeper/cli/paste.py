"""Lines the user types while a login waits, read without blocking the event loop.

A thread blocked in ``readline`` cannot be cancelled, and would keep the process alive
after the login ended by the browser; the event loop's reader callback has neither
problem. A line is at most :data:`MAX_LINE` bytes (a callback URL is a few hundred).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

__all__ = ["MAX_LINE", "read_lines"]

MAX_LINE = 16 * 1024


async def read_lines(fd: int) -> AsyncIterator[str]:
    """Each line read from ``fd`` until end of input (or until the consumer stops)."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
        chunks.put_nowait(data)

    loop.add_reader(fd, readable)
    pending = b""
    try:
        while True:
            data = await chunks.get()
            if not data:
                if pending.strip():
                    yield pending.decode("utf-8", "replace")
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
            pending = pending[-MAX_LINE:]
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(fd)
