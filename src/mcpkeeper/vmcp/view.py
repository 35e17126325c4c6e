"""What the aggregated endpoint needs to know about one workload, and where it gets it.

The aggregator depends on the :class:`WorkloadDirectory` protocol, not on the workload
manager, so the decisions it makes (list? forward? refuse?) are testable with plain
values and the manager stays unaware of the vMCP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.workloads.health import Health, health_of

__all__ = ["WorkloadDirectory", "WorkloadView"]


@dataclass(frozen=True, slots=True)
class WorkloadView:
    """One workload as the vMCP sees it (no secrets).

    ``status_since`` changes whenever the status is written again, which is how the tool
    cache notices a workload that (re)started or turned ``running``.
    """

    name: str
    url: str
    transport: str
    status: WorkloadStatus
    reason: str = ""
    status_since: datetime | None = None

    @property
    def health(self) -> Health:
        return health_of(self.status)


class WorkloadDirectory(Protocol):
    """The workloads the vMCP aggregates."""

    def workloads(self) -> list[WorkloadView]:
        """Every known workload, running or not, sorted by name."""
        ...

    def workload(self, name: str) -> WorkloadView | None:
        """One workload; None if it does not exist (any more)."""
        ...

    def reserved_ports(self) -> set[int]:
        """Ports the workloads own, which the vMCP must not pick for itself."""
        ...
