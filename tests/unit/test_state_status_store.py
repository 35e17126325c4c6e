"""StatusStore: records, timestamps, history, modes, atomicity, corruption, names, sink."""

from __future__ import annotations

import itertools
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mcpkeeper.state import StatusStore, WorkloadStatus

RUNNING = WorkloadStatus.RUNNING
RETRYING = WorkloadStatus.AUTH_RETRYING
DEAD = WorkloadStatus.UNAUTHENTICATED


class TickingClock:
    """Each call is one second later than the previous one: distinct, ordered timestamps."""

    def __init__(self) -> None:
        self.current = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


@pytest.fixture
def store(tmp_path: Path) -> StatusStore:
    return StatusStore(tmp_path, now=TickingClock())


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_set_then_get_returns_the_record(store: StatusStore) -> None:
    written = store.set("github", RUNNING, "token fresh", pid=4242)
    read = store.get("github")
    assert read == written
    assert read is not None
    assert (read.name, read.status, read.status_context, read.pid) == ("github", RUNNING, "token fresh", 4242)
    assert read.created_at.tzinfo is not None


def test_get_of_unknown_workload_is_none(store: StatusStore) -> None:
    assert store.get("nothing") is None
    assert store.list() == []


def test_file_holds_iso_utc_timestamps_and_the_fields(store: StatusStore, tmp_path: Path) -> None:
    store.set("github", DEAD, "invalid_grant", pid=7)
    data = json.loads((tmp_path / "statuses" / "github.json").read_text())
    assert data["status"] == "unauthenticated"
    assert data["status_context"] == "invalid_grant"
    assert data["pid"] == 7
    for key in ("created_at", "updated_at"):
        assert data[key].endswith("Z")
        assert datetime.fromisoformat(data[key]).utcoffset() == timedelta(0)


def test_created_at_is_preserved_and_updated_at_moves(store: StatusStore) -> None:
    first = store.set("w", WorkloadStatus.STARTING)
    second = store.set("w", RUNNING)
    third = store.set("w", RUNNING, pid=99)
    assert second.created_at == first.created_at == third.created_at
    assert first.updated_at < second.updated_at < third.updated_at


def test_list_is_sorted_and_delete_forgets(store: StatusStore) -> None:
    for name in ("zeta", "alpha", "mid"):
        store.set(name, RUNNING)
    assert [r.name for r in store.list()] == ["alpha", "mid", "zeta"]
    store.delete("mid")
    store.delete("mid")  # idempotent
    assert [r.name for r in store.list()] == ["alpha", "zeta"]
    assert store.get("mid") is None
    assert store.history("mid") == []


def test_history_appended_only_on_change_in_order(store: StatusStore) -> None:
    store.set("w", WorkloadStatus.STARTING)
    store.set("w", RUNNING, "ok")
    store.set("w", RUNNING, "ok")  # same: no transition
    store.set("w", RUNNING, "ok", pid=5)  # pid alone: no transition
    store.set("w", RUNNING, "other reason")  # context change: transition
    store.set("w", RETRYING, "500")
    history = store.history("w")
    assert [(t.status, t.status_context) for t in history] == [
        (WorkloadStatus.STARTING, ""),
        (RUNNING, "ok"),
        (RUNNING, "other reason"),
        (RETRYING, "500"),
    ]
    assert [t.previous_status for t in history] == [None, WorkloadStatus.STARTING, RUNNING, RUNNING]
    assert all(a.at < b.at for a, b in itertools.pairwise(history))
    assert [t.status for t in store.history("w", limit=2)] == [RUNNING, RETRYING]
    assert store.history("w", limit=0) == []


def test_history_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    store = StatusStore(tmp_path, history_limit=5, now=TickingClock())
    for i in range(23):
        store.set("w", RUNNING, f"step {i}")
    assert [t.status_context for t in store.history("w")] == [f"step {i}" for i in range(18, 23)]
    lines = (tmp_path / "statuses" / "w.history.jsonl").read_bytes().splitlines()
    assert len(lines) <= 10  # compacted at twice the bound
    # A fresh store (another process) sees the same bounded history.
    assert [t.status_context for t in StatusStore(tmp_path, history_limit=5).history("w")][-1] == "step 22"


def test_corrupt_history_lines_are_skipped(store: StatusStore, tmp_path: Path) -> None:
    store.set("w", RUNNING, "one")
    history_file = tmp_path / "statuses" / "w.history.jsonl"
    with open(history_file, "ab") as fh:
        fh.write(b'\xff\xfe garbage\n[1,2]\n{"status": "bogus"}\n')
        fh.write(b'{"status": "running", "at"')  # a torn last line, no newline
    store.set("w", RETRYING, "two")
    store.set("w", RUNNING, "three")
    assert [t.status_context for t in store.history("w")] == ["one", "two", "three"]


def test_modes_are_private_even_under_a_permissive_umask(store: StatusStore, tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        store.set("w", RUNNING)
    finally:
        os.umask(previous)
    directory = tmp_path / "statuses"
    assert _mode(directory) == 0o700
    assert _mode(directory / "w.json") == 0o600
    assert _mode(directory / "w.history.jsonl") == 0o600


def test_writes_leave_no_temporary_files(store: StatusStore, tmp_path: Path) -> None:
    for i in range(20):
        store.set("w", RUNNING if i % 2 else RETRYING, str(i))
    assert sorted(p.name for p in (tmp_path / "statuses").iterdir()) == ["w.history.jsonl", "w.json"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x00\xffnot json at all", "not valid JSON"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"status": "running"}', "created_at"),
        (
            b'{"status": "sleeping", "created_at": "2025-01-01T00:00:00Z",'
            b' "updated_at": "2025-01-01T00:00:00Z"}',
            "status",
        ),
        (b"", "not valid JSON"),
    ],
)
def test_corrupt_status_file_is_moved_aside_and_reported_unknown(
    store: StatusStore, tmp_path: Path, content: bytes, why: str
) -> None:
    store.set("good", RUNNING)
    bad = tmp_path / "statuses" / "bad.json"
    bad.write_bytes(content)

    records = {r.name: r for r in store.list()}

    assert records["good"].status == RUNNING
    assert records["bad"].status == WorkloadStatus.UNKNOWN
    moved = tmp_path / "statuses" / "bad.json.corrupted"
    assert str(moved) in records["bad"].status_context
    assert why in records["bad"].status_context
    assert moved.read_bytes() == content
    # The report is persisted: later readers tell the same story, and history records it.
    again = store.get("bad")
    assert again is not None and again.status == WorkloadStatus.UNKNOWN
    assert str(moved) in again.status_context
    assert [t.status for t in store.history("bad")] == [WorkloadStatus.UNKNOWN]


def test_second_corruption_does_not_overwrite_the_first(store: StatusStore, tmp_path: Path) -> None:
    directory = tmp_path / "statuses"
    (directory).mkdir(mode=0o700)
    (directory / "w.json").write_bytes(b"first garbage")
    assert store.get("w") is not None
    (directory / "w.json").write_bytes(b"second garbage")
    record = store.get("w")
    assert record is not None and str(directory / "w.json.corrupted.1") in record.status_context
    assert (directory / "w.json.corrupted").read_bytes() == b"first garbage"
    assert (directory / "w.json.corrupted.1").read_bytes() == b"second garbage"


def test_set_over_a_corrupt_file_keeps_the_evidence(store: StatusStore, tmp_path: Path) -> None:
    directory = tmp_path / "statuses"
    directory.mkdir(mode=0o700)
    (directory / "w.json").write_bytes(b"{")
    record = store.set("w", RUNNING, "recovered")
    assert store.get("w") == record
    assert (directory / "w.json.corrupted").read_bytes() == b"{"
    assert [t.status for t in store.history("w")] == [WorkloadStatus.UNKNOWN, RUNNING]


def test_unreadable_entry_does_not_break_the_listing(store: StatusStore, tmp_path: Path) -> None:
    store.set("good", RUNNING)
    (tmp_path / "statuses" / "dir.json").mkdir()  # a directory where a file should be
    records = {r.name: r for r in store.list()}
    assert records["good"].status == RUNNING
    assert records["dir"].status == WorkloadStatus.UNKNOWN
    assert "cannot read" in records["dir"].status_context


def test_listing_ignores_foreign_files(store: StatusStore, tmp_path: Path) -> None:
    store.set("good", RUNNING)
    directory = tmp_path / "statuses"
    for foreign in (".good.json.abc.tmp", "notes.txt", "-bad.json", "good.json.corrupted"):
        (directory / foreign).write_text("x")
    assert [r.name for r in store.list()] == ["good"]


@pytest.mark.parametrize(
    "name", ["", "../etc", "a/b", ".hidden", "-dash", "x" * 64, "sp ace", "nul\x00", "é", "a\\b"]
)
def test_invalid_names_are_rejected(store: StatusStore, name: str) -> None:
    with pytest.raises(ValueError, match="invalid workload name"):
        store.set(name, RUNNING)
    with pytest.raises(ValueError, match="invalid workload name"):
        store.get(name)
    with pytest.raises(ValueError, match="invalid workload name"):
        store.sink(name)


def test_valid_edge_names_are_accepted(store: StatusStore) -> None:
    for name in ("a", "A.b_c-d", "x" * 63, "9lives"):
        store.set(name, RUNNING)
    assert len(store.list()) == 4


def test_invalid_status_is_rejected_without_writing(store: StatusStore, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        store.set("w", "sleeping")
    assert store.get("w") is None


def test_sink_reports_land_in_order(store: StatusStore) -> None:
    sink = store.sink("w")
    sink.report(RUNNING, "")
    sink.report(RETRYING, "token endpoint 503")
    sink.report(DEAD, "invalid_grant")
    sink.report(RUNNING, "re-login")
    record = store.get("w")
    assert record is not None
    assert (record.status, record.status_context, record.pid) == (RUNNING, "re-login", os.getpid())
    assert [t.status for t in store.history("w")] == [RUNNING, RETRYING, DEAD, RUNNING]


def test_sink_logs_write_failures_instead_of_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    sink = StatusStore(blocker).sink("w")
    sink.report(RUNNING, "")  # the statuses dir cannot be created under a file
    assert "could not record status running of workload w" in caplog.text


def test_to_json_is_serialisable(store: StatusStore) -> None:
    record = store.set("w", RUNNING, "ok", pid=1)
    assert json.loads(json.dumps(record.to_json()))["name"] == "w"
    transition = store.history("w")[0]
    assert json.loads(json.dumps(transition.to_json()))["status"] == "running"
