"""Following a workload's log file as it grows, for ``mcpkeeper logs -f`` and the HTTP API.

The file is polled (portable, no inotify). Between two polls it may have been rotated
(:mod:`.log_limits` renames it and starts a new one: another inode) or truncated
(shorter than what was read): either way the follower starts again from the beginning
of the file as it is now, so no line is skipped and none is printed twice.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LogCursor"]


class LogCursor:
    """Where a follower of ``path`` is: ``position`` is the offset to read from next."""

    def __init__(self, path: Path, position: int) -> None:
        self.path = path
        self.position = position
        self._identity = _identity(path)

    def has_more(self) -> bool:
        """True when bytes past :attr:`position` wait to be read; resets :attr:`position` to 0
        first when the file was replaced or cut since the last look (absent: nothing to read)."""
        current = _identity(self.path)
        if current is None:
            return False
        if self._identity is None or current[0] != self._identity[0] or current[1] < self.position:
            self.position = 0
        self._identity = current
        return current[1] > self.position


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, size) of the file, or None while it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size
