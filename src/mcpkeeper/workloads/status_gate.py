"""The single writer of one workload's status.

Two parties change a workload's status: its owner (manager or standalone runtime:
starting, running, stopping, stopped, error…) and its token monitor (auth_retrying,
unauthenticated, running again). Both go through one :class:`StatusGate` so their
writes stay in order. The monitor's reports pass only while the gate is open: the
owner seals it, synchronously, *before* writing ``stopping``, so a monitor transition
racing a stop can never land after it and make a stopped workload look alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mcpkeeper.state.status_store import StoreStatusSink
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.store import StatusRecords

__all__ = ["StatusGate"]

log = logging.getLogger(__name__)


class StatusGate:
    """A ``StatusSink`` for the monitor plus direct writes for the owner."""

    def __init__(
        self,
        store: StatusRecords,
        name: str,
        *,
        on_change: Callable[[str, WorkloadStatus], None] | None = None,
    ) -> None:
        self._sink: StoreStatusSink = store.sink(name)
        #: Told of every status recorded, after the write (the daemon's metrics and live views).
        self._on_change = on_change
        self._open = False
        self.last: WorkloadStatus | None = None

    @property
    def name(self) -> str:
        return self._sink.name

    def open(self) -> None:
        self._open = True

    def seal(self) -> None:
        self._open = False

    def set(self, status: WorkloadStatus, reason: str) -> None:
        """The owner's write: always recorded."""
        self.last = status
        self._sink.report(status, reason)
        if self._on_change is not None:
            self._on_change(self._sink.name, status)

    def report(self, status: WorkloadStatus, reason: str) -> None:
        """The monitor's write: recorded only while the workload is up."""
        if not self._open:
            log.debug("%s: status %s after stop ignored", self.name, status)
            return
        self.set(status, reason)
