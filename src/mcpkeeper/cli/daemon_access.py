"""Reaching the daemon from a command, with the CLI's error wording.

The API client (``mcpkeeper.api.client``) pulls in httpx, so it is imported here, inside
the functions, and only by the commands that talk to the daemon.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.foreground import foreground_store
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore

if TYPE_CHECKING:
    from mcpkeeper.api.client import DaemonClient

__all__ = ["connect_running_daemon", "require_daemon_workload", "start_daemon"]


def start_daemon(home: Path) -> DaemonClient:
    """A client of the daemon, starting it in the background if it is not running."""
    from mcpkeeper.api.client import DaemonUnavailableError, ensure_daemon

    try:
        return ensure_daemon(home)
    except DaemonUnavailableError as exc:
        raise CliError(exc.message, ExitCode.DAEMON_UNAVAILABLE) from None


def connect_running_daemon(home: Path) -> DaemonClient | None:
    """A client of the running daemon, or None when none answers (nothing is started)."""
    if not (home / "run").exists():
        return None
    from mcpkeeper.api.client import DaemonClient

    client = DaemonClient(home)
    if client.ping():
        return client
    client.close()
    return None


def require_daemon_workload(home: Path, name: str) -> None:
    """Fail fast, without starting a daemon, when ``name`` is not one of the daemon's workloads."""
    try:
        if WorkloadStore(home).get(name) is not None:
            return
    except CorruptStateError:
        return  # it exists; the daemon reports what it makes of it
    if foreground_store(home).exists(name):
        raise CliError(
            f"workload {name!r} runs in the foreground (mcpkeeper proxy); stop it there with Ctrl-C",
            ExitCode.FAILURE,
        )
    raise CliError(f"no workload named {name!r} (see 'mcpkeeper list --all')", ExitCode.NOT_FOUND)
