"""The bottom layer: files on disk. Imports nothing from the rest of mcpkeeper and nothing HTTP."""

from mcpkeeper.state._atomic import atomic_write_bytes, atomic_write_json
from mcpkeeper.state._quarantine import CorruptFile
from mcpkeeper.state.history import DEFAULT_HISTORY_LIMIT, Transition
from mcpkeeper.state.locks import DEFAULT_LOCK_TIMEOUT, Locks, LockTimeout, StateLock
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import ensure_private_dir, state_home
from mcpkeeper.state.state_dir import StateDir
from mcpkeeper.state.status_store import StatusRecord, StatusStore, StoreStatusSink
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import (
    CorruptStateError,
    WorkloadConfig,
    WorkloadListing,
    WorkloadStore,
)

# SecretStore (state/secrets.py, owned by the "login" helper) is to be re-exported here:
#   from mcpkeeper.state.secrets import SecretStore   (+ "SecretStore" in __all__)

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_LOCK_TIMEOUT",
    "CorruptFile",
    "CorruptStateError",
    "LockTimeout",
    "Locks",
    "StateDir",
    "StateLock",
    "StatusRecord",
    "StatusStore",
    "StoreStatusSink",
    "Transition",
    "WorkloadConfig",
    "WorkloadListing",
    "WorkloadStatus",
    "WorkloadStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "ensure_private_dir",
    "state_home",
    "validate_name",
]
