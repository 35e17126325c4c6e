"""The workload statuses, spelled exactly as ToolHive spells them.

Tools written against ToolHive's API compare these strings, so the values are part of
our public contract and must never be renamed.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["WorkloadStatus"]


class WorkloadStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"
    STARTING = "starting"
    STOPPING = "stopping"
    UNHEALTHY = "unhealthy"
    REMOVING = "removing"
    UNKNOWN = "unknown"
    UNAUTHENTICATED = "unauthenticated"
    AUTH_RETRYING = "auth_retrying"
    POLICY_STOPPED = "policy_stopped"

    @property
    def hidden_by_default(self) -> bool:
        """``list`` hides only what needs no attention; anything asking for action stays visible."""
        return self in (WorkloadStatus.STOPPED, WorkloadStatus.REMOVING)
