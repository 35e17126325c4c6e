"""``GET /api/v1beta/workloads/{name}/logs``: a workload's log, last lines and (``follow``) new ones.

As ToolHive's endpoint, the answer is ``text/plain`` with at most :data:`DEFAULT_TAIL`
lines (``tail`` chooses fewer or more, up to :data:`MAX_TAIL`). With ``follow=true`` the
response stays open and carries every line appended after them, as ``mcpkeeper logs -f``
prints them: the file is polled (portable, no inotify) and read again from its start
when it was rotated or truncated. A follow is bounded: it ends after
:data:`MAX_FOLLOW` or at the daemon's shutdown, whichever comes first; the client asks
again for more. The log never holds a token (:mod:`mcpkeeper.workloads.logs` redacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

from mcpkeeper.workloads.log_follow import LogCursor

__all__ = ["DEFAULT_TAIL", "MAX_FOLLOW", "MAX_TAIL", "follow_log", "last_lines"]

DEFAULT_TAIL = 1000
MAX_TAIL = 100_000
MAX_FOLLOW = 3600.0
_POLL = 0.25
_CHUNK = 64 * 1024


def last_lines(path: Path, count: int) -> tuple[bytes, int]:
    """The last ``count`` lines of ``path`` and the offset after them (0, 0 when it is absent)."""
    try:
        with open(path, "rb") as fh:
            lines = deque(fh, maxlen=count) if count > 0 else deque()
            if count <= 0:
                fh.seek(0, os.SEEK_END)
            return b"".join(lines), fh.tell()
    except FileNotFoundError:
        return b"", 0


async def follow_log(
    path: Path, position: int, closing: asyncio.Event, *, max_age: float = MAX_FOLLOW
) -> AsyncIterator[bytes]:
    """Bytes appended to ``path`` from ``position`` on, until ``max_age`` or ``closing``."""
    cursor = LogCursor(path, position)
    deadline = time.monotonic() + max_age
    while time.monotonic() < deadline and not closing.is_set():
        if cursor.has_more():
            chunk, cursor.position = _read_from(path, cursor.position)
            if chunk:
                yield chunk
                continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), timeout=_POLL)


def _read_from(path: Path, position: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as fh:
            fh.seek(position)
            chunk = fh.read(_CHUNK)
            return chunk, position + len(chunk)
    except FileNotFoundError:
        return b"", 0
