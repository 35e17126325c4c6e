"""``mcpkeeper stop|start|restart|rm NAME``: lifecycle changes, done by the daemon.

Only the daemon writes workload configs and statuses, so these commands ask it (starting
it if needed) rather than touching files. An unknown name fails before any daemon is
started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.daemon_access import require_daemon_workload, start_daemon
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.cli.render import ellipsize
from mcpkeeper.state.paths import state_home

if TYPE_CHECKING:
    from mcpkeeper.api.client import DaemonClient

__all__ = ["remove", "restart", "start", "stop", "stop_daemon"]

Action = Callable[["DaemonClient", str], "dict[str, Any] | None"]


def stop(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop a workload; it stays stopped across daemon restarts until `start`."""
    _apply(name, lambda client, n: client.stop_workload(n), "stopped", output)


def start(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Start a stopped workload (with its stored login: no browser)."""
    _apply(name, lambda client, n: client.start_workload(n), "started", output)


def restart(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop and start a workload again."""
    _apply(name, lambda client, n: client.restart_workload(n), "restarted", output)


def remove(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop a workload and delete it: config, status, history and stored login."""
    _apply(name, lambda client, n: client.remove_workload(n), "removed", output)


def stop_daemon() -> None:
    """Stop the background daemon (workloads come back when it starts again)."""
    from mcpkeeper.cli.daemon_access import connect_running_daemon

    client = connect_running_daemon(state_home())
    if client is None:
        print("The daemon is not running.")
        return
    with client:
        client.shutdown()
    print("Daemon stopping.")


def _apply(name: str, action: Action, verb: str, output: OutputFormat) -> None:
    home = state_home()
    require_daemon_workload(home, checked_name(name))
    with start_daemon(home) as client:
        info = action(client, name)
    if output is OutputFormat.JSON:
        print_json(info if info is not None else {"name": name, "removed": True})
        return
    if info is None:
        print(f"{name}: {verb}")
        return
    reason = f" ({ellipsize(info.get('status_context') or '', 80)})" if info.get("status_context") else ""
    print(f"{name}: {verb}; status {info.get('status')}{reason}")
