"""Workloads run in the foreground by ``mcpkeeper proxy``, kept apart from the daemon's.

A foreground workload writes its status into the shared status store (so ``list`` shows
it next to the daemon's), but its config must stay out of the daemon's workload store:
a daemon starting later would otherwise adopt it, fight over its port and rewrite its
status. So its config lives in ``<home>/foreground/workloads/<name>.json`` (same format,
same :class:`WorkloadStore`), which only the CLI reads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mcpkeeper.state.workload_store import WorkloadStore

__all__ = ["foreground_root", "foreground_store", "pid_alive"]


def foreground_root(home: Path) -> Path:
    """The state root whose ``workloads/`` holds the foreground configs."""
    return home / "foreground"


def foreground_store(home: Path) -> WorkloadStore:
    from mcpkeeper.state.workload_store import WorkloadStore  # pydantic: not on list's path

    return WorkloadStore(foreground_root(home))


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid runs (ours or another user's); a zombie does not."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A dead process nobody reaped yet still answers kill(0); /proc tells (Linux only)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself contain ") ".
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] == "Z"
