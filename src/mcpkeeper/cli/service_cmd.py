"""``mcpkeeper service install|uninstall|status``: the daemon starts at login, and every workload with it.

URL clients (Claude Code, Cursor, VS Code, Windsurf) reach a workload's local port, which
only a running daemon serves; without this, nothing brings the daemon back after a
reboot until someone runs a command that needs it. The daemon restores every workload
whose desired state is ``running`` from the stored logins, with no browser.

When systemd or launchd takes over, a daemon the CLI started earlier is shut down first
(its workloads come back in the managed one), so the manager's daemon owns the home.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mcpkeeper.autostart.service import (
    ServiceError,
    ServiceReport,
    choose_manager,
    install,
    status,
    uninstall,
)
from mcpkeeper.autostart.units import daemon_environment
from mcpkeeper.cli._lazy import LightCommand, LightGroup
from mcpkeeper.cli.daemon_access import connect_running_daemon, start_daemon
from mcpkeeper.cli.errors import CliError
from mcpkeeper.cli.foreground import pid_alive
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.clientconfig.clients import spawn_command
from mcpkeeper.clientconfig.files import home_relative
from mcpkeeper.state.paths import state_home

if TYPE_CHECKING:
    from mcpkeeper.api.client import DaemonClient

__all__ = ["service_app"]

_HANDOVER_TIMEOUT = 15.0
_POLL = 0.1

service_app = typer.Typer(
    cls=LightGroup,
    help="Start the daemon at login (systemd user unit, launchd agent), so URL clients work after a reboot.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@service_app.command("install", cls=LightCommand)
def install_service(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Start the daemon at every login, and now."""
    home = state_home()
    command = spawn_command()
    try:
        manager, _ = choose_manager(sys.platform)
        if manager != "xdg-autostart":
            _stop_unmanaged_daemon(home)
        custom_home = None if _is_default_home(home) else home
        report = install(
            sys.platform,
            Path.home(),
            os.environ,
            command,
            daemon_environment(os.environ, custom_home),
            home / "logs" / "daemon.log",
        )
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    if report.manager == "xdg-autostart":
        pid = _daemon_pid(home, start=True)  # now: the entry only runs at the next login
    else:
        pid = _daemon_pid(home, wait=_HANDOVER_TIMEOUT)  # started by the manager
    if output is OutputFormat.JSON:
        print_json({**_report_json(report), "daemon_pid": pid})
        return
    where = home_relative(report.path, Path.home())
    running = f"runs now (pid {pid})" if pid is not None else "is not answering yet"
    print(f"Installed {where} ({report.manager}): the daemon starts at every login; it {running}.")
    for note in report.notes:
        print(f"note: {note}")


@service_app.command("uninstall", cls=LightCommand)
def uninstall_service(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Stop starting the daemon at login (a running daemon managed by systemd or launchd stops)."""
    try:
        reports = uninstall(sys.platform, Path.home(), os.environ)
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    if output is OutputFormat.JSON:
        print_json([_report_json(report) for report in reports])
        return
    if not reports:
        print("Nothing to remove: the daemon was not set to start at login.")
    for report in reports:
        print(f"Removed {home_relative(report.path, Path.home())} ({report.manager}).")
    if reports:
        print("The daemon starts again with the next mcpkeeper command that needs it.")


@service_app.command("status", cls=LightCommand)
def service_status(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Show whether the daemon starts at login, and whether it runs now."""
    home = state_home()
    try:
        reports = status(sys.platform, Path.home(), os.environ, spawn_command())
    except ServiceError as exc:
        raise CliError(str(exc)) from None
    pid = _daemon_pid(home)
    installed = [report for report in reports if report.installed]
    if output is OutputFormat.JSON:
        print_json({"installed": [_report_json(r) for r in installed], "daemon_pid": pid})
        return
    if not installed:
        print(
            "Not installed: the daemon starts with the first mcpkeeper command that needs it, not at login."
        )
    for report in installed:
        managed = {True: ", running it now", False: ", not running it now", None: ""}[report.running]
        print(f"Installed: {home_relative(report.path, Path.home())} ({report.manager}{managed})")
        for note in report.notes:
            print(f"  {note}")
    print(f"Daemon: running (pid {pid})" if pid is not None else "Daemon: not running")


def _stop_unmanaged_daemon(home: Path) -> None:
    """Shut down a daemon the CLI started, and wait until it is gone (bounded)."""
    client = connect_running_daemon(home)
    if client is None:
        return
    with client:
        pid = client.health().get("pid")
        client.shutdown()
    deadline = time.monotonic() + _HANDOVER_TIMEOUT
    while isinstance(pid, int) and pid_alive(pid):
        if time.monotonic() > deadline:
            raise CliError(f"the running daemon (pid {pid}) did not stop within {_HANDOVER_TIMEOUT:g}s")
        time.sleep(_POLL)


def _daemon_pid(home: Path, *, start: bool = False, wait: float = 0.0) -> int | None:
    """The pid of the daemon: started first if ``start``, else waited for up to ``wait`` seconds."""
    client: DaemonClient | None
    if start:
        client = start_daemon(home)
    else:
        deadline = time.monotonic() + wait
        while (client := connect_running_daemon(home)) is None and time.monotonic() < deadline:
            time.sleep(_POLL)
    if client is None:
        return None
    with client:
        pid = client.health().get("pid")
    return pid if isinstance(pid, int) else None


def _is_default_home(home: Path) -> bool:
    return os.path.abspath(home) == os.path.abspath(state_home({}))


def _report_json(report: ServiceReport) -> dict[str, Any]:
    return {
        "manager": report.manager,
        "path": str(report.path),
        "installed": report.installed,
        "running": report.running,
        "notes": report.notes,
    }
