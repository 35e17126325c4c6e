"""``<home>/run/vmcp.json``: where the daemon's aggregated endpoint listens, for the CLI.

Written by the daemon when the endpoint starts (``url``, ``port``, ``pid``) or cannot
(``url`` null, ``error`` says why), and again at shutdown with ``pid`` null. The file
outlives the daemon on purpose: its ``port`` is reused at the next start so the URL
configured in a client stays valid. A reader must treat a ``pid`` that is not alive as
"not running" (a daemon killed with -9 cannot clear it).

Cheap to import (no MCP SDK): the CLI reads it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mcpkeeper.state._atomic import atomic_write_json
from mcpkeeper.state.paths import ensure_private_dir

__all__ = ["VMCP_PATH", "VMCPInfo", "read_vmcp_info", "vmcp_info_path", "write_vmcp_info"]

VMCP_PATH = "/mcp"


@dataclass(frozen=True, slots=True)
class VMCPInfo:
    url: str | None
    """``http://127.0.0.1:<port>/mcp`` while served; None when disabled or failed."""
    port: int | None
    pid: int | None
    """The daemon serving it; None after a clean shutdown."""
    error: str | None = None
    """Why it is not served (one line), when it is not."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def vmcp_info_path(home: Path) -> Path:
    return home / "run" / "vmcp.json"


def read_vmcp_info(home: Path) -> VMCPInfo | None:
    """The recorded endpoint; None if there is no (readable) record."""
    try:
        data = json.loads(vmcp_info_path(home).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    url, port, pid, error = (data.get(key) for key in ("url", "port", "pid", "error"))
    return VMCPInfo(
        url=url if isinstance(url, str) else None,
        port=port if isinstance(port, int) and not isinstance(port, bool) else None,
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        error=error if isinstance(error, str) else None,
    )


def write_vmcp_info(home: Path, info: VMCPInfo) -> None:
    path = vmcp_info_path(home)
    ensure_private_dir(path.parent)
    atomic_write_json(path, info.to_json())
