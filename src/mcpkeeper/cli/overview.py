"""What ``list`` and ``status`` show, read straight from the state directory.

Reading the stores (not asking the daemon) keeps ``list`` fast and working while the
daemon is down. Two corrections are applied on the way, without writing anything:

* a status that claims a live process (``running``, ``auth_retrying``…) whose recorded
  pid is gone is shown as ``stopped``: the process that wrote it died without saying so;
* an unreadable file becomes an ``unknown`` row with the reason, and the other rows are
  still listed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcpkeeper.cli.foreground import foreground_store, pid_alive
from mcpkeeper.state.status_store import StatusRecord, StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadConfig, WorkloadStore
from mcpkeeper.workloads.health import health_of

__all__ = ["WorkloadRow", "find_row", "load_rows", "local_url"]

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
    url: str | None = None
    port: int | None = None
    transport: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    pid: int | None = None
    desired_state: str | None = None
    foreground: bool = False

    @property
    def shown_by_default(self) -> bool:
        """Hidden only when stopped *and* meant to be: a workload whose host died still wants to run."""
        hidden = self.status in (WorkloadStatus.STOPPED, WorkloadStatus.REMOVING)
        return not hidden or self.desired_state == "running"

    def to_json(self) -> dict[str, Any]:
        """The control API's WorkloadInfo keys, plus ``desired_state`` and ``foreground``."""
        return {
            "name": self.name,
            "status": self.status,
            "status_context": self.status_context,
            "remote_url": self.remote_url,
            "url": self.url,
            "port": self.port,
            "transport": self.transport,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "health": health_of(self.status).value,
            "pid": self.pid,
            "desired_state": self.desired_state,
            "foreground": self.foreground,
        }


def local_url(config: WorkloadConfig) -> str | None:
    """The loopback URL clients use: the workload's port with the remote's path and query.

    Same rule as ``mcpkeeper.proxy.local_url_for``; restated here because importing the
    proxy would pull the whole HTTP stack into ``list``'s start-up.
    """
    if config.port is None:
        return None
    remote = urlsplit(config.remote_url)
    return urlunsplit(("http", f"127.0.0.1:{config.port}", remote.path or "/", remote.query, ""))


def load_rows(home: Path, *, alive: PidCheck = pid_alive) -> list[WorkloadRow]:
    """Every workload (daemon-managed and foreground), sorted by name."""
    statuses = StatusStore(home)
    rows: dict[str, WorkloadRow] = {}
    daemon = WorkloadStore(home).scan()
    for corrupt in daemon.corrupted:
        rows[corrupt.name] = WorkloadRow(corrupt.name, WorkloadStatus.UNKNOWN, f"config {corrupt.describe()}")
    for config in daemon.configs:
        rows[config.name] = _row(config, statuses, alive, foreground=False)
    for config in foreground_store(home).list():
        if config.name not in rows:
            rows[config.name] = _row(config, statuses, alive, foreground=True)
    return [rows[name] for name in sorted(rows)]


def find_row(home: Path, name: str, *, alive: PidCheck = pid_alive) -> WorkloadRow | None:
    """One workload's row; None when no workload has that name."""
    statuses = StatusStore(home)
    for store, foreground in ((WorkloadStore(home), False), (foreground_store(home), True)):
        try:
            config = store.get(name)
        except CorruptStateError as exc:
            return WorkloadRow(name, WorkloadStatus.UNKNOWN, str(exc))
        if config is not None:
            return _row(config, statuses, alive, foreground=foreground)
    return None


def _row(config: WorkloadConfig, statuses: StatusStore, alive: PidCheck, *, foreground: bool) -> WorkloadRow:
    record = statuses.get(config.name)
    status, context = _effective_status(record, alive, foreground=foreground)
    return WorkloadRow(
        name=config.name,
        status=status,
        status_context=context,
        remote_url=config.remote_url,
        url=local_url(config),
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


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
