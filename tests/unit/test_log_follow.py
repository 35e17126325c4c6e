"""LogCursor: a follower of a log file reads on after appends and restarts after rotation or truncation."""

from __future__ import annotations

from pathlib import Path

from mcpkeeper.workloads.log_follow import LogCursor


def test_appended_bytes_are_waiting_from_the_position(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(b"one\n")
    cursor = LogCursor(log, 4)
    assert not cursor.has_more()
    with log.open("ab") as fh:
        fh.write(b"two\n")
    assert cursor.has_more() and cursor.position == 4


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(b"one\ntwo\n")
    cursor = LogCursor(log, 8)
    log.write_bytes(b"3\n")  # shorter than what was read
    assert cursor.has_more() and cursor.position == 0


def test_a_rotated_file_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(b"one\n")
    cursor = LogCursor(log, 2)
    log.rename(tmp_path / "w.log.1")
    log.write_bytes(b"new file, longer\n")  # another inode, not shorter than the position
    assert cursor.has_more() and cursor.position == 0


def test_an_absent_file_has_nothing_and_keeps_the_position(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    cursor = LogCursor(log, 0)
    assert not cursor.has_more()
    log.write_bytes(b"late\n")
    assert cursor.has_more() and cursor.position == 0
