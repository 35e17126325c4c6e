"""Log files stay bounded: repeated lines are counted, files rotate by size (real files)."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

from mcpkeeper.workloads.log_limits import RepeatLimiter, RotatingLogFile


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(message: str, *args: object, level: int = logging.INFO, name: str = "x") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def _messages(records: list[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


def test_a_burst_passes_then_repeats_are_counted_until_the_window_ends() -> None:
    clock = _Clock()
    limiter = RepeatLimiter(burst=2, window=60.0, clock=clock)
    written = [m for i in range(10) for m in _messages(limiter.admit(_record("503, retry in %d s", 10 - i)))]
    assert written == ["503, retry in 10 s", "503, retry in 9 s"]  # numbers do not make lines different

    clock.now = 61.0
    after = _messages(limiter.admit(_record("503, retry in %d s", 1)))
    assert len(after) == 2
    assert after[0].startswith("8 more line(s) like this one in the last 61 s were not written: 503")
    assert after[1] == "503, retry in 1 s"  # a new window starts with this line


def test_different_lines_levels_and_loggers_are_limited_separately() -> None:
    limiter = RepeatLimiter(burst=1, window=60.0, clock=_Clock())
    records = [
        _record("a"),
        _record("a", level=logging.WARNING),
        _record("a", name="y"),
        _record("b"),
        _record("a"),
    ]
    assert [len(limiter.admit(r)) for r in records] == [1, 1, 1, 1, 0]


def test_pending_counts_are_written_when_the_file_closes(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    handler = RotatingLogFile(path)
    for _ in range(50):
        handler.handle(_record("same line"))
    handler.close()
    lines = path.read_text().splitlines()
    assert lines[:5] == ["same line"] * 5
    assert lines[5].startswith("45 more line(s) like this one")
    assert len(lines) == 6


def test_the_file_rotates_at_its_size_and_keeps_a_bounded_number_of_old_files(tmp_path: Path) -> None:
    path = tmp_path / "w.log"
    handler = RotatingLogFile(path, max_bytes=1000, backups=2)
    for i in range(500):
        handler.handle(_record("distinct line %s", "x" * (i % 7) + str(i) + "y" * (i % 5)))
    handler.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["w.log", "w.log.1", "w.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 1000
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
