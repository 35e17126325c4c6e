"""What the workload layer tells whoever watches it (the daemon's metrics and live views).

One object per daemon, handed to :class:`~.manager.WorkloadManager`; it gives each
workload the observers of its token monitor and its proxy, and hears every status the
workload's :class:`~.status_gate.StatusGate` records. The foreground proxy and the tests
get :data:`NO_WORKLOAD_OBSERVER`, so nothing below the daemon depends on Prometheus.
"""

from __future__ import annotations

from typing import Protocol

from mcpkeeper.auth.protocols import NO_OBSERVER, MonitorObserver
from mcpkeeper.proxy.observer import NO_PROXY_OBSERVER, ProxyObserver
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["NO_WORKLOAD_OBSERVER", "WorkloadObserver"]


class WorkloadObserver(Protocol):
    def status_changed(self, name: str, status: WorkloadStatus) -> None:
        """``name``'s status was recorded (synchronously, in the order of the writes)."""
        ...

    def monitor_observer(self, name: str) -> MonitorObserver:
        """The observer of ``name``'s token monitor."""
        ...

    def proxy_observer(self, name: str) -> ProxyObserver:
        """The observer of ``name``'s proxy."""
        ...

    def forget(self, name: str) -> None:
        """``name`` was removed: drop what is kept about it."""
        ...


class _NoWorkloadObserver:
    def status_changed(self, name: str, status: WorkloadStatus) -> None:
        return None

    def monitor_observer(self, name: str) -> MonitorObserver:
        return NO_OBSERVER

    def proxy_observer(self, name: str) -> ProxyObserver:
        return NO_PROXY_OBSERVER

    def forget(self, name: str) -> None:
        return None


NO_WORKLOAD_OBSERVER: WorkloadObserver = _NoWorkloadObserver()
