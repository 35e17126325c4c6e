"""MCP over this process's stdin/stdout on the event loop's own pipe transports.

The SDK's ``stdio_server`` reads and writes through ``anyio.wrap_file``: a worker thread
for every line read and two (write, flush) for every line written, each a hand-over
between threads that a loaded machine pays for in latency on every message. This reads
and writes the same newline-delimited JSON-RPC with the loop's pipe transports instead.

As the SDK does, fds 0 and 1 are diverted while serving (to the null device and to
stderr), so a stray ``print`` or child process cannot write into the MCP stream, and
restored on exit. When stdin or stdout is not a pipe or socket (a regular file,
or a terminal), :func:`process_stdio` raises :class:`PipesUnsupported` and the caller uses
the SDK's transport (the loop cannot watch a file, and uvloop aborts on one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

import mcp_types
from mcp.shared.message import SessionMessage

__all__ = ["PipesUnsupported", "StdinMessages", "StdoutMessages", "process_stdio"]

_LINE_LIMIT = 64 * 1024 * 1024  # one JSON-RPC message; a tool argument may be a large document


class PipesUnsupported(Exception):
    """stdin or stdout is something the event loop cannot watch (a regular file)."""


class StdinMessages:
    """The JSON-RPC messages on stdin, one per line; a line that is not one comes as its error."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def __aiter__(self) -> AsyncIterator[SessionMessage | Exception]:
        while True:
            try:
                line = await self._reader.readline()
            except ValueError as exc:  # longer than the limit: skipped up to its end
                yield exc
                continue
            if not line:
                return
            try:
                message = mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            except Exception as exc:  # what the SDK transport does: hand the error on
                yield exc
                continue
            yield SessionMessage(message)


class StdoutMessages(asyncio.Protocol):
    """Writes each message as one line; waits while the reader of stdout is behind."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._paused = False
        self._resumed: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a write pipe transport

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._resumed is not None and not self._resumed.done():
            self._resumed.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.resume_writing()

    async def send(self, item: SessionMessage, /) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise BrokenPipeError("stdout is closed")
        line = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        transport.write(line.encode() + b"\n")
        if self._paused:
            self._resumed = asyncio.get_running_loop().create_future()
            await self._resumed

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()


@contextlib.asynccontextmanager
async def process_stdio() -> AsyncIterator[tuple[StdinMessages, StdoutMessages]]:
    """Serve on fds 0 and 1 (private duplicates; the originals diverted until exit)."""
    for fd in (0, 1):
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            # A file or terminal: asyncio refuses a file and uvloop aborts the process on one.
            raise PipesUnsupported(f"fd {fd} is neither a pipe nor a socket")
    loop = asyncio.get_running_loop()
    wires = [os.fdopen(os.dup(0), "rb", buffering=0), os.fdopen(os.dup(1), "wb", buffering=0)]
    transports: list[asyncio.BaseTransport] = []  # each owns (and closes) its wire
    try:
        reader = asyncio.StreamReader(limit=_LINE_LIMIT)
        try:
            read_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), wires[0]
            )
            transports.append(read_transport)
            write_transport, writer = await loop.connect_write_pipe(StdoutMessages, wires[1])
            transports.append(write_transport)
        except ValueError as exc:  # kept for loops stricter than the check above
            raise PipesUnsupported(str(exc)) from None
        with _diverted():
            yield StdinMessages(reader), writer
    finally:
        for transport in transports:
            transport.close()
        for wire in wires[len(transports) :]:
            _close_quietly(wire)


@contextlib.contextmanager
def _diverted() -> Iterator[None]:
    """fd 0 reads the null device and fd 1 writes to stderr until exit, then both come back."""
    saved = [os.dup(0), os.dup(1)]
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        os.dup2(2, 1)
        yield
    finally:
        os.close(null)
        for fd, original in enumerate(saved):
            with contextlib.suppress(OSError):
                os.dup2(original, fd)
            os.close(original)


def _close_quietly(wire: BinaryIO) -> None:
    with contextlib.suppress(OSError):
        wire.close()
