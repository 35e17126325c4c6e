"""What ``list``/``status`` read from disk: real stores in a temporary home, no daemon."""

from __future__ import annotations

import os
from pathlib import Path

from mcpkeeper.cli.foreground import foreground_store, pid_alive
from mcpkeeper.cli.overview import find_row, load_rows
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore

_LIVE_PID = 4242


def _alive(pid: int | None) -> bool:
    return pid == _LIVE_PID


def _workload(
    home: Path, name: str, status: WorkloadStatus | None, *, pid: int | None = _LIVE_PID, **kw: object
) -> None:
    WorkloadStore(home).put(
        WorkloadConfig(name=name, remote_url=f"https://{name}.example.com/mcp?x=1", port=41000, **kw)  # type: ignore[arg-type]
    )
    if status is not None:
        StatusStore(home).set(name, status, f"reason of {name}", pid=pid)


def test_rows_carry_config_and_status_and_the_local_url(tmp_path: Path) -> None:
    _workload(tmp_path, "b", WorkloadStatus.AUTH_RETRYING)
    _workload(tmp_path, "a", WorkloadStatus.RUNNING)
    rows = load_rows(tmp_path, alive=_alive)
    assert [r.name for r in rows] == ["a", "b"]
    a = rows[0].to_json()
    assert a["status"] == "running" and a["status_context"] == "reason of a"
    assert a["remote_url"] == "https://a.example.com/mcp?x=1"
    assert a["url"] == "http://127.0.0.1:41000/mcp?x=1"
    assert a["health"] == "healthy" and a["updated_at"].endswith("Z")
    assert rows[1].to_json()["health"] == "degraded"


def test_status_of_a_dead_host_process_shows_stopped_without_rewriting_the_file(tmp_path: Path) -> None:
    _workload(tmp_path, "w", WorkloadStatus.RUNNING, pid=_LIVE_PID + 1)
    before = StatusStore(tmp_path).path("w").read_bytes()
    (row,) = load_rows(tmp_path, alive=_alive)
    assert row.status == WorkloadStatus.STOPPED
    assert "daemon not running" in row.status_context
    assert row.shown_by_default  # it wants to run: the user must see it
    assert StatusStore(tmp_path).path("w").read_bytes() == before


def test_statuses_that_need_no_process_are_shown_as_recorded(tmp_path: Path) -> None:
    _workload(tmp_path, "w", WorkloadStatus.UNAUTHENTICATED, pid=None)
    (row,) = load_rows(tmp_path, alive=_alive)
    assert row.status == WorkloadStatus.UNAUTHENTICATED


def test_a_user_stopped_workload_is_hidden_by_default(tmp_path: Path) -> None:
    _workload(tmp_path, "w", WorkloadStatus.STOPPED, desired_state="stopped")
    (row,) = load_rows(tmp_path, alive=_alive)
    assert not row.shown_by_default


def test_corrupt_status_file_is_one_unknown_row_and_the_others_still_list(tmp_path: Path) -> None:
    _workload(tmp_path, "good", WorkloadStatus.RUNNING)
    _workload(tmp_path, "bad", WorkloadStatus.RUNNING)
    StatusStore(tmp_path).path("bad").write_text("{ not json")
    rows = {r.name: r for r in load_rows(tmp_path, alive=_alive)}
    assert rows["good"].status == WorkloadStatus.RUNNING
    assert rows["bad"].status == WorkloadStatus.UNKNOWN
    assert "unreadable" in rows["bad"].status_context


def test_corrupt_config_is_an_unknown_row(tmp_path: Path) -> None:
    _workload(tmp_path, "good", WorkloadStatus.RUNNING)
    (tmp_path / "workloads" / "broken.json").write_text("[]")
    rows = {r.name: r for r in load_rows(tmp_path, alive=_alive)}
    assert rows["broken"].status == WorkloadStatus.UNKNOWN and "broken.json" in rows["broken"].status_context
    assert rows["good"].status == WorkloadStatus.RUNNING


def test_config_without_status_is_unknown(tmp_path: Path) -> None:
    _workload(tmp_path, "new", None)
    (row,) = load_rows(tmp_path, alive=_alive)
    assert row.status == WorkloadStatus.UNKNOWN and row.status_context == "no status recorded yet"


def test_foreground_workloads_are_listed_and_found(tmp_path: Path) -> None:
    config = WorkloadConfig(name="fg", remote_url="http://127.0.0.1:9/mcp", port=41001)
    foreground_store(tmp_path).put(config)
    StatusStore(tmp_path).set("fg", WorkloadStatus.RUNNING, "proxying", pid=_LIVE_PID + 7)
    (row,) = load_rows(tmp_path, alive=_alive)
    assert row.foreground and row.desired_state is None
    assert row.status == WorkloadStatus.STOPPED and "foreground proxy" in row.status_context
    assert find_row(tmp_path, "fg", alive=_alive) == row
    assert find_row(tmp_path, "missing", alive=_alive) is None


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(None) and not pid_alive(0)
