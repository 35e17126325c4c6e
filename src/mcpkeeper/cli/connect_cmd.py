"""``mcpkeeper connect NAME``: MCP over stdin/stdout for clients that spawn a command.

Claude Desktop and similar clients start a process and speak JSON-RPC on its pipes; this
command bridges those pipes to the workload's local URL. The bridge never sees a token:
the daemon's proxy injects it. stdout belongs to the MCP stream, so every human word
goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.daemon_access import start_daemon
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.foreground import foreground_store, pid_alive
from mcpkeeper.cli.render import printable
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore
from mcpkeeper.workloads.info import local_url

__all__ = ["bridge_stdio", "connect"]

_NOT_RUNNING = frozenset({"stopped", "error", "unknown"})


def connect(name: WorkloadNameArg) -> None:
    """Bridge stdin/stdout (MCP stdio) to a workload, starting the daemon and workload if needed."""
    home = state_home()
    checked_name(name)
    url = _foreground_url(home, name) or _daemon_url(home, name)
    bridge_stdio(url)


def bridge_stdio(url: str) -> None:
    """Relay MCP messages between our stdin/stdout and ``url`` until stdin closes."""
    import anyio

    from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

    anyio.run(lambda: run_stdio_bridge(url))


def _foreground_url(home: Path, name: str) -> str | None:
    """The URL of a live ``mcpkeeper proxy`` running under this name, if any."""
    try:
        config = foreground_store(home).get(name)
    except CorruptStateError:
        return None
    if config is None or WorkloadStore(home).exists(name):
        return None
    record = StatusStore(home).get(name)
    return local_url(config.remote_url, config.port) if record is not None and pid_alive(record.pid) else None


def _daemon_url(home: Path, name: str) -> str:
    if not WorkloadStore(home).exists(name):
        raise CliError(f"no workload named {name!r} (see 'mcpkeeper list --all')", ExitCode.NOT_FOUND)
    with start_daemon(home) as client:
        info: dict[str, Any] = client.get_workload(name)
        if info.get("status") in _NOT_RUNNING:
            print(f"Starting workload {name}…", file=sys.stderr)
            info = client.start_workload(name)
    status = info.get("status")
    if status != "running":
        reason = printable(info.get("status_context") or "")
        print(f"warning: workload {name} is {printable(status)}: {reason}", file=sys.stderr)
    url = info.get("url")
    if not isinstance(url, str):
        raise CliError(f"workload {name!r} has no local URL yet")
    return url
