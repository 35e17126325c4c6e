"""``mcpkeeper stop|start|restart|rm NAME``: lifecycle changes, done by the daemon.

Only the daemon writes workload configs and statuses, so these commands ask it (starting
it if needed) rather than touching files. An unknown name fails before any daemon is
started.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcpkeeper.cli._options import NoRevokeOpt, WorkloadNameArg, checked_name
from mcpkeeper.cli.daemon_access import require_daemon_workload, start_daemon
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.cli.render import ellipsize
from mcpkeeper.state.paths import state_home

if TYPE_CHECKING:
    from mcpkeeper.api.client import DaemonClient

__all__ = ["remove", "restart", "start", "stop", "stop_daemon"]

Action = Callable[["DaemonClient", str], "dict[str, Any]"]


def stop(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop a workload; it stays stopped across daemon restarts until `start`."""
    _apply(name, lambda client, n: client.stop_workload(n), "stopped", output)


def start(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Start a stopped workload (with its stored login: no browser)."""
    _apply(name, lambda client, n: client.start_workload(n), "started", output)


def restart(name: WorkloadNameArg, output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop and start a workload again."""
    _apply(name, lambda client, n: client.restart_workload(n), "restarted", output)


def remove(
    name: WorkloadNameArg,
    no_revoke: NoRevokeOpt = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Stop a workload and delete it: config, status, history, log and stored login (revoked
    at the server when it offers RFC 7009)."""
    from mcpkeeper.api.client import DaemonError
    from mcpkeeper.cli.forget_login import print_revocation, revocation_json, revoke_stored, stored_login

    home = state_home()
    require_daemon_workload(home, checked_name(name))
    with start_daemon(home) as client:
        with contextlib.suppress(DaemonError):  # an unreadable config cannot be stopped; rm still works
            client.stop_workload(name)  # its refresher is done: the stored login is the last one
        login = stored_login(home, name)
        client.remove_workload(name)
    outcome = (
        revoke_stored(login) if login is not None and login.token is not None and not no_revoke else None
    )
    if output is OutputFormat.JSON:
        print_json({"name": name, "removed": True, "revocation": revocation_json(outcome)})
        return
    print(f"{name}: removed")
    print_revocation(outcome)


def stop_daemon(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop the background daemon (workloads come back when it starts again)."""
    from mcpkeeper.cli.daemon_access import connect_running_daemon

    client = connect_running_daemon(state_home())
    if client is not None:
        with client:
            client.shutdown()
    if output is OutputFormat.JSON:
        print_json({"was_running": client is not None})
    else:
        print("Daemon stopping." if client is not None else "The daemon is not running.")


def _apply(name: str, action: Action, verb: str, output: OutputFormat) -> None:
    home = state_home()
    require_daemon_workload(home, checked_name(name))
    with start_daemon(home) as client:
        info = action(client, name)
    if output is OutputFormat.JSON:
        print_json(info)
        return
    reason = f" ({ellipsize(info.get('status_context') or '', 80)})" if info.get("status_context") else ""
    print(f"{name}: {verb}; status {info.get('status')}{reason}")
