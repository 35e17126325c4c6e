"""The vMCP's knobs, from the environment (bad values are logged and replaced by defaults,
as for the token monitor's settings: a typo must not keep the daemon from starting).

``MCPKEEPER_VMCP_PORT``
    unset: the port used last time (remembered in ``<home>/run/vmcp.json``) if it is
    free, else a new free port, so the URL a user configured keeps working across daemon
    restarts; ``1``-``65535``: exactly that port; ``off``: no aggregated endpoint.
``MCPKEEPER_VMCP_CALL_TIMEOUT`` (default ``5m``)
    the longest a forwarded tools/call may take; a longer one becomes a tool error.
``MCPKEEPER_VMCP_TOOLS_MAX_AGE`` (default ``1m``)
    a healthy workload's cached tool list is fetched again on tools/list when older.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mcpkeeper.durations import positive_duration
from mcpkeeper.envsettings import read_setting

__all__ = ["PORT_ENV", "VMCPSettings"]

PORT_ENV = "MCPKEEPER_VMCP_PORT"
CALL_TIMEOUT_ENV = "MCPKEEPER_VMCP_CALL_TIMEOUT"
TOOLS_MAX_AGE_ENV = "MCPKEEPER_VMCP_TOOLS_MAX_AGE"
_DISABLED = frozenset({"off", "no", "false", "disabled", "none"})
#: (enabled, fixed port) when MCPKEEPER_VMCP_PORT is unset: enabled, the remembered or a free port.
_PORT_UNSET: tuple[bool, int | None] = (True, None)


@dataclass(frozen=True, slots=True)
class VMCPSettings:
    enabled: bool = True
    port: int | None = None
    """A fixed port; None: the remembered one, else a free one."""
    connect_timeout: float = 10.0
    """Opening a session with a backend (through its local proxy)."""
    list_timeout: float = 10.0
    """Fetching one backend's tool list (all pages)."""
    call_timeout: float = 300.0
    tools_max_age: float = 60.0
    fetch_retry_interval: float = 5.0
    """After a failed tool-list fetch, how long tools/list uses the cache without retrying."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VMCPSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        enabled, port = read_setting(
            env,
            [PORT_ENV],
            _port,
            _PORT_UNSET,
            what="a TCP port (1-65535) or 'off'",
            instead="the remembered or a free port",
        )
        return cls(
            enabled=enabled,
            port=port,
            call_timeout=_duration(env, CALL_TIMEOUT_ENV, defaults.call_timeout),
            tools_max_age=_duration(env, TOOLS_MAX_AGE_ENV, defaults.tools_max_age),
        )


def _port(raw: str) -> tuple[bool, int | None] | None:
    """(enabled, fixed port) of a set ``MCPKEEPER_VMCP_PORT``; None when it is neither."""
    text = raw.strip().lower()
    if text in _DISABLED:
        return False, None
    if text.isdigit() and 1 <= int(text) <= 65535:
        return True, int(text)
    return None


def _duration(env: Mapping[str, str], key: str, default: float) -> float:
    return read_setting(env, [key], positive_duration, default, what="a positive duration such as 30s or 5m")
