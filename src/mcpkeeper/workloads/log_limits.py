"""Keeping log files bounded: size rotation, and repeated lines counted instead of written.

A workload whose remote is down answers every client request with 503, and each answer
was one INFO line: a busy client wrote thousands of identical lines an hour into a file
that never rotated. Two bounds, for every file mcpkeeper logs to:

* :class:`RotatingLogFile` rotates at :data:`MAX_BYTES` and keeps :data:`BACKUPS` old
  files (``<name>.log.1`` …), so one workload's log never takes more than a few tens of MB;
* :class:`RepeatLimiter` lets the first :data:`BURST` lines of a kind through per
  :data:`WINDOW` seconds and counts the rest. "Of a kind" is the logger, the level and the
  message with its numbers blanked (``retry in 12 s`` and ``retry in 11 s`` are the same
  line). The count is written as one line when the window ends (at the next line of that
  kind or any other, or when the file closes), so nothing is silently lost.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import TextIO

__all__ = [
    "BACKUPS",
    "BURST",
    "MAX_BYTES",
    "WINDOW",
    "RepeatLimitedStreamHandler",
    "RepeatLimiter",
    "RotatingLogFile",
]

MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
BURST = 5
WINDOW = 60.0
#: Kinds of line remembered at once; the least recently seen is summarised and forgotten.
_MAX_KINDS = 256
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
_QUOTED = 120


@dataclass
class _Kind:
    started: float
    sample: str
    level: int
    name: str
    passed: int = 0
    suppressed: int = 0


class RepeatLimiter:
    """Decides which records are written; see the module docstring."""

    def __init__(
        self, *, burst: int = BURST, window: float = WINDOW, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._burst = burst
        self._window = window
        self._clock = clock
        self._kinds: OrderedDict[tuple[str, int, str], _Kind] = OrderedDict()

    def admit(self, record: logging.LogRecord) -> list[logging.LogRecord]:
        """The records to write for ``record``: summaries of ended windows, then ``record`` unless counted."""
        now = self._clock()
        out = self._ended(now)
        message = record.getMessage()
        key = (record.name, record.levelno, _NUMBERS.sub("#", message))
        kind = self._kinds.get(key)
        if kind is None:
            kind = self._kinds[key] = _Kind(now, message, record.levelno, record.name)
            if len(self._kinds) > _MAX_KINDS:
                _, oldest = self._kinds.popitem(last=False)
                out.extend(_summary(oldest, now))
        self._kinds.move_to_end(key)
        if kind.passed < self._burst:
            kind.passed += 1
            out.append(record)
        else:
            kind.suppressed += 1
        return out

    def flush(self) -> list[logging.LogRecord]:
        """Summaries of every pending count (the file is closing)."""
        now = self._clock()
        out = [summary for kind in self._kinds.values() for summary in _summary(kind, now)]
        self._kinds.clear()
        return out

    def _ended(self, now: float) -> list[logging.LogRecord]:
        out: list[logging.LogRecord] = []
        for key in [key for key, kind in self._kinds.items() if now - kind.started >= self._window]:
            out.extend(_summary(self._kinds.pop(key), now))
        return out


def _summary(kind: _Kind, now: float) -> list[logging.LogRecord]:
    if not kind.suppressed:
        return []
    sample = kind.sample if len(kind.sample) <= _QUOTED else kind.sample[:_QUOTED] + "…"
    text = (
        f"{kind.suppressed} more line(s) like this one in the last {now - kind.started:.0f} s "
        f"were not written: {sample}"
    )
    return [logging.LogRecord(kind.name, kind.level, __file__, 0, text, None, None)]


class _LimitsRepeats(logging.Handler):
    """Mixin: every record goes through a :class:`RepeatLimiter` before the handler writes it."""

    limiter: RepeatLimiter

    def emit(self, record: logging.LogRecord) -> None:
        for admitted in self.limiter.admit(record):
            super().emit(admitted)

    def close(self) -> None:
        self.acquire()
        try:
            for summary in self.limiter.flush():
                super().emit(summary)
        finally:
            self.release()
        super().close()


class RotatingLogFile(_LimitsRepeats, RotatingFileHandler):
    """A 0600 log file, rotated by size, with repeated lines counted."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        RotatingFileHandler.__init__(self, path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        self.limiter = RepeatLimiter()

    def _open(self) -> io.TextIOWrapper:
        # Created 0600 before the handler opens it (at start and at every rotation), so it
        # is never readable by others, not even for a moment.
        os.close(os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(self.baseFilename, 0o600)
        return super()._open()


class RepeatLimitedStreamHandler(_LimitsRepeats, logging.StreamHandler[TextIO]):
    """A stream handler (the daemon's stderr, i.e. ``logs/daemon.log``) with repeated lines counted."""

    def __init__(self, stream: TextIO) -> None:
        logging.StreamHandler.__init__(self, stream)
        self.limiter = RepeatLimiter()
