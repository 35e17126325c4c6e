"""Per-workload status history: the last transitions, kept in an append-only JSON-lines file.

Why a separate ``<name>.history.jsonl`` rather than a list inside the status file:

* ``set`` stays cheap on the monitor's transition path: one small append (plus fsync)
  instead of re-serialising up to a hundred transitions on every write;
* ``list`` reads only the small status files, never the histories;
* damage stays local: a torn or garbled line (a crash mid-append, a hand edit) costs that
  one line, which readers skip, while the current status lives in its own atomic file.

The file is bounded: once it holds more than twice ``max_entries`` lines it is compacted
(the newest ``max_entries`` valid lines, written atomically). The slack makes compaction
rare (amortised O(1) per append); readers only ever return the newest ``max_entries``.
Each workload has a single writer (architecture.md §3), so an append racing a compaction in
another process, which could drop that one line, does not arise in practice.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

import msgspec

from mcpkeeper.state._atomic import atomic_write_bytes
from mcpkeeper.state._schema import SchemaError, UtcDatetime, decode, to_json
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["DEFAULT_HISTORY_LIMIT", "HistoryLog", "Transition"]

DEFAULT_HISTORY_LIMIT = 100

_log = logging.getLogger(__name__)


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """One status change of a workload."""

    status: WorkloadStatus
    status_context: str = ""
    previous_status: WorkloadStatus | None = None
    at: UtcDatetime
    pid: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (ISO-8601 UTC timestamp)."""
        data: dict[str, Any] = to_json(self)
        return data


class HistoryLog:
    """The history files of all workloads in one directory (``<dir>/<name>.history.jsonl``)."""

    def __init__(self, directory: Path, *, max_entries: int = DEFAULT_HISTORY_LIMIT) -> None:
        if max_entries < 1:
            raise ValueError(f"history limit must be at least 1, got {max_entries}")
        self._dir = directory
        self._max_entries = max_entries
        self._line_counts: dict[str, int] = {}  # lines on disk, known after our first append

    def path(self, name: str) -> Path:
        return self._dir / f"{name}.history.jsonl"

    def append(self, name: str, transition: Transition) -> None:
        """Append one transition durably; compact the file when it passed its bound.

        The caller has validated ``name`` and created the directory.
        """
        path = self.path(name)
        line = _encode(transition)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn last line must not swallow this one
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        count = self._line_counts.get(name)
        count = _count_lines(path) if count is None else count + 1
        self._line_counts[name] = count
        if count > 2 * self._max_entries:
            self._compact(name)

    def read(self, name: str, limit: int | None = None) -> list[Transition]:
        """The newest ``limit`` (at most ``max_entries``) transitions, oldest first.

        Unparseable lines are skipped with a warning: history is diagnostics, never a reason
        to fail.
        """
        keep = self._max_entries if limit is None else max(0, min(limit, self._max_entries))
        if keep == 0:
            return []
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            _log.warning("cannot read status history of %s: %s", name, exc.strerror or exc)
            return []
        return list(_parse_lines(name, data, keep))

    def delete(self, name: str) -> None:
        self._line_counts.pop(name, None)
        self.path(name).unlink(missing_ok=True)

    def _compact(self, name: str) -> None:
        path = self.path(name)
        kept = _parse_lines(name, path.read_bytes(), self._max_entries)
        atomic_write_bytes(path, b"".join(_encode(t) for t in kept))
        self._line_counts[name] = len(kept)


def _encode(transition: Transition) -> bytes:
    return json.dumps(transition.to_json(), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def _parse_lines(name: str, data: bytes, keep: int) -> deque[Transition]:
    kept: deque[Transition] = deque(maxlen=keep)
    skipped = 0
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            kept.append(decode(raw, Transition))
        except SchemaError:
            skipped += 1
    if skipped:
        _log.warning("skipped %d unreadable line(s) in the status history of %s", skipped, name)
    return kept


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
