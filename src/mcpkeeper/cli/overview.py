"""What ``list`` and ``status`` show, read straight from the state directory.

Reading the stores (not asking the daemon) keeps ``list`` fast and working while the
daemon is down. They are read through the stores themselves (one schema,
:mod:`mcpkeeper.state._schema`, cheap enough to import for a ``list``). Two corrections
are applied on the way, without writing anything:

* a status that claims a live process (``running``, ``auth_retrying``…) whose recorded
  pid is gone is shown as ``stopped``: the process that wrote it died without saying so;
* an unreadable config becomes an ``unknown`` row with the reason, and the other rows are
  still listed; it stays so, whichever process moved it aside, until the user repairs
  it or runs ``mcpkeeper rm`` (:mod:`mcpkeeper.state._quarantine`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mcpkeeper.cli.foreground import foreground_root, pid_alive
from mcpkeeper.state import CorruptStateError
from mcpkeeper.state.status_store import StatusRecord, StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.workloads.info import info_json, local_url, unreadable_config_reason

__all__ = ["WorkloadRow", "find_row", "load_rows"]

#: Statuses only a live hosting process can be in.
_NEEDS_LIVE_PROCESS = frozenset(
    {
        WorkloadStatus.RUNNING,
        WorkloadStatus.AUTH_RETRYING,
        WorkloadStatus.STARTING,
        WorkloadStatus.STOPPING,
        WorkloadStatus.UNHEALTHY,
    }
)

PidCheck = Callable[[int | None], bool]


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """One workload as the CLI shows it. Holds no secret by construction."""

    name: str
    status: str
    status_context: str
    remote_url: str | None = None
    port: int | None = None
    transport: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    pid: int | None = None
    desired_state: str | None = None
    foreground: bool = False

    @property
    def url(self) -> str | None:
        """The local URL MCP clients use (None until the workload has a port)."""
        return local_url(self.remote_url, self.port) if self.remote_url is not None else None

    @property
    def shown_by_default(self) -> bool:
        """Hidden only when stopped *and* meant to be: a workload whose host died still wants to run."""
        hidden = self.status in (WorkloadStatus.STOPPED, WorkloadStatus.REMOVING)
        return not hidden or self.desired_state == "running"

    def to_json(self) -> dict[str, Any]:
        """The control API's WorkloadInfo keys, plus ``desired_state`` and ``foreground``."""
        info = info_json(
            self,
            status=self.status,
            status_context=self.status_context,
            updated_at=self.updated_at,
            pid=self.pid,
        )
        return {**info, "desired_state": self.desired_state, "foreground": self.foreground}


def load_rows(home: Path, *, alive: PidCheck = pid_alive) -> list[WorkloadRow]:
    """Every workload (daemon-managed and foreground), sorted by name."""
    rows: dict[str, WorkloadRow] = {}
    daemon = WorkloadStore(home).scan()
    for corrupt in daemon.corrupted:
        reason = unreadable_config_reason(corrupt)
        rows[corrupt.name] = WorkloadRow(corrupt.name, WorkloadStatus.UNKNOWN, reason)
    for config in daemon.configs:
        rows[config.name] = _row(home, config, alive, foreground=False)
    for config in WorkloadStore(foreground_root(home)).scan().configs:
        if config.name not in rows:
            rows[config.name] = _row(home, config, alive, foreground=True)
    return [rows[name] for name in sorted(rows)]


def find_row(home: Path, name: str, *, alive: PidCheck = pid_alive) -> WorkloadRow | None:
    """One workload's row; None when no workload has that name."""
    for root, foreground in ((home, False), (foreground_root(home), True)):
        try:
            config = WorkloadStore(root).get(name)
        except CorruptStateError as exc:
            return WorkloadRow(name, WorkloadStatus.UNKNOWN, unreadable_config_reason(exc.corrupt))
        if config is not None:
            return _row(home, config, alive, foreground=foreground)
    return None


def _row(home: Path, config: WorkloadConfig, alive: PidCheck, *, foreground: bool) -> WorkloadRow:
    record = StatusStore(home).get(config.name)
    status, context = _effective_status(record, alive, foreground=foreground)
    return WorkloadRow(
        name=config.name,
        status=status,
        status_context=context,
        remote_url=config.remote_url,
        port=config.port,
        transport=config.transport,
        created_at=config.created_at,
        updated_at=record.updated_at if record is not None else None,
        pid=record.pid if record is not None else None,
        desired_state=None if foreground else config.desired_state,
        foreground=foreground,
    )


def _effective_status(record: StatusRecord | None, alive: PidCheck, *, foreground: bool) -> tuple[str, str]:
    if record is None:
        return WorkloadStatus.UNKNOWN, "no status recorded yet"
    if record.status in _NEEDS_LIVE_PROCESS and not alive(record.pid):
        host = f"foreground proxy (pid {record.pid})" if foreground else "daemon"
        return WorkloadStatus.STOPPED, f"{host} not running (last status: {record.status})"
    return record.status, record.status_context
