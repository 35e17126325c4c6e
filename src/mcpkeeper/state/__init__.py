"""The bottom layer: files on disk. Imports nothing from the rest of mcpkeeper and nothing HTTP.

Every name below is importable as ``from mcpkeeper.state import X``, but its module is
imported only on first use (PEP 562 ``__getattr__``). Importing any submodule runs this
file first, and ``mcpkeeper list`` reads two small stores: it must not pay for the lock
module (filelock, which pulls in asyncio) or anything else it does not touch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcpkeeper.state._atomic import atomic_write_bytes, atomic_write_json
    from mcpkeeper.state._quarantine import CorruptFile, CorruptStateError
    from mcpkeeper.state.history import DEFAULT_HISTORY_LIMIT, Transition
    from mcpkeeper.state.locks import DEFAULT_LOCK_TIMEOUT, Locks, LockTimeout, StateLock
    from mcpkeeper.state.names import validate_name
    from mcpkeeper.state.paths import ensure_private_dir, state_home
    from mcpkeeper.state.secrets import SecretStore
    from mcpkeeper.state.state_dir import StateDir
    from mcpkeeper.state.status_store import StatusRecord, StatusStore, StoreStatusSink
    from mcpkeeper.state.statuses import WorkloadStatus
    from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadListing, WorkloadStore

#: Exported name -> the submodule defining it.
_EXPORTS: dict[str, str] = {
    "atomic_write_bytes": "_atomic",
    "atomic_write_json": "_atomic",
    "CorruptFile": "_quarantine",
    "DEFAULT_HISTORY_LIMIT": "history",
    "Transition": "history",
    "DEFAULT_LOCK_TIMEOUT": "locks",
    "Locks": "locks",
    "LockTimeout": "locks",
    "StateLock": "locks",
    "validate_name": "names",
    "ensure_private_dir": "paths",
    "state_home": "paths",
    "SecretStore": "secrets",
    "StateDir": "state_dir",
    "StatusRecord": "status_store",
    "StatusStore": "status_store",
    "StoreStatusSink": "status_store",
    "WorkloadStatus": "statuses",
    "CorruptStateError": "_quarantine",
    "WorkloadConfig": "workload_store",
    "WorkloadListing": "workload_store",
    "WorkloadStore": "workload_store",
}

__all__ = [
    "DEFAULT_HISTORY_LIMIT",
    "DEFAULT_LOCK_TIMEOUT",
    "CorruptFile",
    "CorruptStateError",
    "LockTimeout",
    "Locks",
    "SecretStore",
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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
