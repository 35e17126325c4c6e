"""StateDir: paths agree with the stores, from_env honours MCPKEEPER_HOME, ensure() makes 0700 dirs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mcpkeeper.state import StateDir, WorkloadStatus


def test_from_env_uses_mcpkeeper_home(tmp_path: Path) -> None:
    state = StateDir.from_env({"MCPKEEPER_HOME": str(tmp_path)})
    assert state.root == tmp_path


def test_paths_and_stores_agree(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    assert state.statuses == tmp_path / "statuses"
    assert state.workloads == tmp_path / "workloads"
    assert state.locks == tmp_path / "locks"
    assert state.logs == tmp_path / "logs"
    assert state.run == tmp_path / "run"
    assert state.secrets == tmp_path / "secrets"
    assert state.log_file("w") == tmp_path / "logs" / "w.log"
    state.status_store.set("w", WorkloadStatus.RUNNING)
    assert (state.statuses / "w.json").exists()
    assert state.status_store is state.status_store
    with state.lock("w") as lock:
        assert lock.path == state.locks / "w.lock"


def test_ensure_creates_private_directories(tmp_path: Path) -> None:
    root = tmp_path / "home"
    state = StateDir(root).ensure()
    directories = (root, state.statuses, state.workloads, state.locks, state.logs, state.run, state.secrets)
    for directory in directories:
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700


def test_log_file_rejects_bad_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="invalid workload name"):
        StateDir(tmp_path).log_file("../x")
