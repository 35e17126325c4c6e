"""The client's request body: buffered when small enough to replay, streamed otherwise.

A request the upstream rejects with 401 is replayed once with a refreshed token, which
needs the body twice. MCP messages are small JSON documents sent with a
``Content-Length``, so a body announced at up to ``limit`` bytes (1 MiB by default), or
one that arrives complete in the first ASGI message, is read fully and kept. Anything
bigger or of unknown length is streamed up as it arrives, with no buffering, and cannot be
replayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from starlette.types import Receive

from mcpkeeper.proxy._headers import header_value

__all__ = ["DEFAULT_REPLAY_LIMIT", "ClientDisconnected", "RequestBody", "read_request_body"]

DEFAULT_REPLAY_LIMIT = 1024 * 1024

# The ``done`` of every fully read body: one shared, already set event (waiting on a set
# asyncio.Event binds it to no loop), instead of building one per request.
_ALREADY_DONE = asyncio.Event()
_ALREADY_DONE.set()


class ClientDisconnected(Exception):
    """The client went away before its request body was complete."""


class RequestBody:
    """One request's body; ``done`` is set once ``receive`` is no longer needed for it."""

    def __init__(
        self,
        buffered: bytes | None,
        stream: AsyncIterator[bytes] | None = None,
        done: asyncio.Event | None = None,
    ) -> None:
        self.buffered = buffered
        self._stream = stream
        self.done = done if done is not None else _ALREADY_DONE

    @property
    def replayable(self) -> bool:
        return self.buffered is not None

    def content(self) -> bytes | AsyncIterator[bytes]:
        if self.buffered is not None:
            return self.buffered
        if self._stream is None:  # pragma: no cover - one of the two is always set
            raise RuntimeError("request body has neither bytes nor a stream")
        return self._stream

    async def aclose(self) -> None:
        """Finish a stream the upstream stopped reading early (it answered before the end)."""
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


async def read_request_body(
    headers: Iterable[tuple[bytes, bytes]], receive: Receive, limit: int
) -> RequestBody:
    first = await receive()
    if first["type"] == "http.disconnect":
        raise ClientDisconnected
    chunk: bytes = first.get("body", b"")
    if not first.get("more_body", False):
        return RequestBody(chunk)
    announced = _content_length(headers)
    if announced is not None and announced <= limit:
        return RequestBody(await _read_rest(chunk, receive))
    done = asyncio.Event()
    return RequestBody(None, _stream_rest(chunk, receive, done), done)


def _content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    value = header_value(headers, b"content-length")
    if value is None or header_value(headers, b"transfer-encoding") is not None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _read_rest(first: bytes, receive: Receive) -> bytes:
    parts = [first]
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _stream_rest(first: bytes, receive: Receive, done: asyncio.Event) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
    finally:
        done.set()
