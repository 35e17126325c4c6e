"""Live workload views for the dashboard: server-sent events (``GET /api/v1beta/events``).

A stream opens with one ``workloads`` event (every workload, as the dashboard shows it)
and sends another whenever that view changes: at once when a workload's status is
recorded (:meth:`EventHub.notify`, called by the daemon's workload observer), and
otherwise at most once a :data:`POLL` (token expiry and the last failure change without
a status change). A comment line every :data:`HEARTBEAT` keeps proxies and the browser
from timing the stream out.

Every stream is bounded: it ends after :data:`MAX_STREAM` (an ``EventSource``, or the
dashboard's reader, reconnects by itself and gets a fresh snapshot), when the client
goes away, or when the daemon shuts down (:meth:`EventHub.close`); at most
:data:`MAX_STREAMS` are open at once (503 beyond).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

__all__ = ["HEARTBEAT", "MAX_STREAM", "MAX_STREAMS", "POLL", "EventHub", "sse_event"]

POLL = 1.0
HEARTBEAT = 15.0
MAX_STREAM = 30 * 60.0
MAX_STREAMS = 32


class EventHub:
    """Wakes the open streams when something changed, and ends them at shutdown."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._streams = 0
        self._generation = 0

    @property
    def closing(self) -> asyncio.Event:
        return self._closing

    @property
    def full(self) -> bool:
        return self._streams >= MAX_STREAMS

    def notify(self) -> None:
        """A status was recorded: every stream looks again now."""
        self._generation += 1
        self._changed.set()

    def close(self) -> None:
        self._closing.set()
        self._changed.set()

    async def stream(
        self, view: Callable[[], dict[str, Any]], *, max_age: float = MAX_STREAM
    ) -> AsyncIterator[bytes]:
        """The SSE body: ``workloads`` events of ``view()`` when it changes, heartbeats between."""
        self._streams += 1
        try:
            started = last_sent = time.monotonic()
            previous: str | None = None
            while not self._closing.is_set() and time.monotonic() - started < max_age:
                current = json.dumps(view(), separators=(",", ":"), sort_keys=True)
                now = time.monotonic()
                if current != previous:
                    previous, last_sent = current, now
                    yield sse_event("workloads", current)
                elif now - last_sent >= HEARTBEAT:
                    last_sent = now
                    yield b": heartbeat\n\n"
                await self._wait_change()
        finally:
            self._streams -= 1

    async def _wait_change(self) -> None:
        seen = self._generation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(POLL):
                while self._generation == seen and not self._closing.is_set():
                    self._changed.clear()
                    await self._changed.wait()


def sse_event(name: str, data: str) -> bytes:
    """One server-sent event; ``data`` is one line of JSON (no newline can split it)."""
    return f"event: {name}\ndata: {data}\n\n".encode()
