"""The daemon's workloads as the vMCP sees them, read from the :class:`WorkloadManager`.

Everything comes from what the manager already keeps: the config (URL, transport) and
the status record (the single writer's latest word, one small file read). A workload the
manager does not run is reported as not running whatever its file says, so a status left
behind by a dead daemon can never make its tools reappear.
"""

from __future__ import annotations

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.vmcp.view import WorkloadView
from mcpkeeper.workloads.errors import InvalidWorkloadError, WorkloadNotFoundError
from mcpkeeper.workloads.health import Health, health_of
from mcpkeeper.workloads.manager import WorkloadManager
from mcpkeeper.workloads.runtime import local_url

__all__ = ["ManagerDirectory"]


class ManagerDirectory:
    """A :class:`~mcpkeeper.vmcp.view.WorkloadDirectory` over a :class:`WorkloadManager`."""

    def __init__(self, manager: WorkloadManager) -> None:
        self._manager = manager

    def workloads(self) -> list[WorkloadView]:
        views = (self._view(config) for config in self._manager.list_configs())
        return sorted((view for view in views if view is not None), key=lambda v: v.name)

    def workload(self, name: str) -> WorkloadView | None:
        try:
            config = self._manager.config(name)
        except (WorkloadNotFoundError, InvalidWorkloadError):
            return None
        return self._view(config)

    def reserved_ports(self) -> set[int]:
        return {config.port for config in self._manager.list_configs() if config.port is not None}

    def _view(self, config: WorkloadConfig) -> WorkloadView | None:
        url = local_url(config)
        if url is None:
            return None
        name = config.name
        record = self._manager.status(name)
        status = record.status if record is not None else WorkloadStatus.UNKNOWN
        reason = record.status_context if record is not None else ""
        since = record.updated_at if record is not None else None
        if not self._manager.is_active(name) and health_of(status) is not Health.UNHEALTHY:
            status, reason = WorkloadStatus.STOPPED, "not running"
        return WorkloadView(
            name=name,
            url=url,
            transport=config.transport,
            status=status,
            reason=reason,
            status_since=since,
        )
