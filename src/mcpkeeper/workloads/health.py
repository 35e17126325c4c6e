"""Aggregator health of a workload, derived from its status (architecture.md §4).

A separate, pure mapping so that the control API, ``list`` and the aggregated endpoint
all agree on one table, and so the table is tested on its own.
"""

from __future__ import annotations

from enum import StrEnum

from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["Health", "health_of"]


class Health(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNAUTHENTICATED = "unauthenticated"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


_HEALTH: dict[WorkloadStatus, Health] = {
    WorkloadStatus.RUNNING: Health.HEALTHY,
    # Degraded, not unhealthy: the monitor is retrying a transient failure and the
    # workload comes back by itself; its tools stay advertised.
    WorkloadStatus.AUTH_RETRYING: Health.DEGRADED,
    WorkloadStatus.UNAUTHENTICATED: Health.UNAUTHENTICATED,
    WorkloadStatus.UNHEALTHY: Health.UNHEALTHY,
    WorkloadStatus.STOPPED: Health.UNHEALTHY,
    WorkloadStatus.ERROR: Health.UNHEALTHY,
    WorkloadStatus.STOPPING: Health.UNHEALTHY,
    WorkloadStatus.REMOVING: Health.UNHEALTHY,
    WorkloadStatus.POLICY_STOPPED: Health.UNHEALTHY,
    WorkloadStatus.STARTING: Health.UNKNOWN,
    WorkloadStatus.UNKNOWN: Health.UNKNOWN,
}


def health_of(status: WorkloadStatus | str) -> Health:
    """The health the aggregator shows for ``status``; an unrecognised string is ``unknown``."""
    try:
        return _HEALTH[WorkloadStatus(status)]
    except ValueError:
        return Health.UNKNOWN
