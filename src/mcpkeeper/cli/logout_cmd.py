"""``mcpkeeper logout NAME``: end a workload's login, at the server and here.

The login is revoked where the authorization server offers RFC 7009 revocation, then
deleted. A daemon workload that was running is restarted without it, so its status says
``unauthenticated`` (and ``mcpkeeper login NAME`` brings it back in place) instead of
serving from a token held in memory. A workload served by a live ``mcpkeeper proxy`` is
refused: that process holds the login, and is stopped with Ctrl-C.
"""

from __future__ import annotations

from mcpkeeper.cli._options import NoRevokeOpt, WorkloadNameArg, checked_name
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.foreground import foreground_store, pid_alive
from mcpkeeper.cli.forget_login import forget_login, print_revocation, revocation_json
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore

__all__ = ["logout"]

_IDLE = frozenset({"stopped", "error", "removing"})


def logout(
    name: WorkloadNameArg,
    no_revoke: NoRevokeOpt = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Delete a workload's stored login, revoking it at the server when it offers RFC 7009."""
    home = state_home()
    checked_name(name)
    _refuse_live_foreground(name)
    forgotten = forget_login(home, name, revoke=not no_revoke)
    if not forgotten.existed:
        raise CliError(f"no stored login named {name!r}", ExitCode.NOT_FOUND)
    status = _restart_without_login(name)
    if output is OutputFormat.JSON:
        print_json({"name": name, "revocation": revocation_json(forgotten.revocation), "status": status})
        return
    print(f"Logged out of {name}: its tokens are deleted here.")
    print_revocation(forgotten.revocation)
    if status is not None:
        print(f"Workload {name} is now {status}; `mcpkeeper login {name}` logs in again.")


def _refuse_live_foreground(name: str) -> None:
    home = state_home()
    if not foreground_store(home).exists(name):
        return
    record = StatusStore(home).get(name)
    if record is not None and pid_alive(record.pid):
        raise CliError(f"{name!r} is served by a running `mcpkeeper proxy` (pid {record.pid}); stop it first")


def _restart_without_login(name: str) -> str | None:
    """Restart the daemon's running workload ``name`` so that it drops the login; its new status."""
    home = state_home()
    try:
        if WorkloadStore(home).get(name) is None:
            return None
    except CorruptStateError:
        return None
    from mcpkeeper.cli.daemon_access import connect_running_daemon

    client = connect_running_daemon(home)
    if client is None:
        return None
    with client:
        info = client.get_workload(name)
        if info.get("status") in _IDLE:
            return str(info.get("status"))
        info = client.restart_workload(name)
    return str(info.get("status"))
