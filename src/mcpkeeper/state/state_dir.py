"""The state directory as one object: its sub-paths and its stores.

The daemon and the CLI both start from ``StateDir.from_env()``; passing that single
object around keeps every part pointed at the same ``MCPKEEPER_HOME``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from mcpkeeper.state.locks import DEFAULT_LOCK_TIMEOUT, Locks, StateLock
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import ensure_private_dir, state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadStore

__all__ = ["StateDir"]


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def from_env(cls, environ: os._Environ[str] | dict[str, str] | None = None) -> StateDir:
        """The state directory named by ``$MCPKEEPER_HOME`` (or the platform default)."""
        return cls(state_home(environ))

    @cached_property
    def status_store(self) -> StatusStore:
        return StatusStore(self.root)

    @cached_property
    def workload_store(self) -> WorkloadStore:
        return WorkloadStore(self.root)

    @cached_property
    def _locks(self) -> Locks:
        return Locks(self.root)

    def lock(self, name: str, *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> StateLock:
        """A new handle on ``locks/<name>.lock``."""
        return self._locks.lock(name, timeout=timeout)

    @property
    def statuses(self) -> Path:
        return self.status_store.directory

    @property
    def workloads(self) -> Path:
        return self.workload_store.directory

    @property
    def locks(self) -> Path:
        return self._locks.directory

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Daemon runtime files: control socket, pid file, API token."""
        return self.root / "run"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{validate_name(name)}.log"

    def ensure(self) -> StateDir:
        """Create the root and every sub-directory, all 0700 (stores also create theirs on first write)."""
        ensure_private_dir(self.root)
        for directory in (self.statuses, self.workloads, self.locks, self.logs, self.run, self.secrets):
            ensure_private_dir(directory)
        return self
