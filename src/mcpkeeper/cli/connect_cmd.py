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
from mcpkeeper.state.client_token import client_token_path, load_client_token
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.info import local_url

__all__ = ["bridge_stdio", "client_headers", "connect", "daemon_target"]

_NOT_RUNNING = frozenset({"stopped", "error", "unknown"})


def connect(name: WorkloadNameArg) -> None:
    """Bridge stdin/stdout (MCP stdio) to a workload, starting the daemon and workload if needed."""
    home = state_home()
    checked_name(name)
    target = _foreground_target(home, name) or daemon_target(home, name)
    url, needs_token = target
    bridge_stdio(url, client_headers(home) if needs_token else None)


def client_headers(home: Path) -> dict[str, str]:
    """The header that opens a workload requiring the client token (the bridge sends it)."""
    token = load_client_token(home)
    if token is None:
        raise CliError(f"the workload requires the client token, but {client_token_path(home)} is missing")
    return {"Authorization": f"Bearer {token}"}


def bridge_stdio(url: str, headers: dict[str, str] | None = None) -> None:
    """Relay MCP messages between our stdin/stdout and ``url`` until stdin closes."""
    import anyio

    from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

    anyio.run(lambda: run_stdio_bridge(url, headers=headers))


def _foreground_target(home: Path, name: str) -> tuple[str, bool] | None:
    """The URL of a live ``mcpkeeper proxy`` running under this name (and whether it needs the token)."""
    try:
        config = foreground_store(home).get(name)
    except CorruptStateError:
        return None
    if config is None or WorkloadStore(home).exists(name):
        return None
    record = StatusStore(home).get(name)
    url = local_url(config.remote_url, config.port)
    if url is None or record is None or not pid_alive(record.pid):
        return None
    return url, client_auth_required(config.client_auth)


def daemon_target(home: Path, name: str) -> tuple[str, bool]:
    """The daemon workload's local URL (and whether it needs the client token), started if needed."""
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
    return url, info.get("client_auth") is True
