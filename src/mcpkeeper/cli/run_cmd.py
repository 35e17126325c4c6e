"""``mcpkeeper run URL``: log in, hand the workload to the daemon, print how to connect.

Order matters: the name is checked free *before* the browser login (a login stores
tokens under the name, and must not overwrite another workload's), and a workload the
daemon refuses to create (port taken…) leaves no fresh login behind.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mcpkeeper.cli._options import (
    CallbackPortOpt,
    ClientIdOpt,
    ClientMetadataUrlOpt,
    ClientSecretOpt,
    ClientTokenOpt,
    DeviceOpt,
    Grant,
    GrantOpt,
    NameOpt,
    NoBrowserOpt,
    PortOpt,
    PrivateKeyOpt,
    RemoteUrlArg,
    ScopeOpt,
    checked_name,
    checked_remote_url,
    require_writable_home,
)
from mcpkeeper.cli.client_setup import target_for
from mcpkeeper.cli.daemon_access import start_daemon
from mcpkeeper.cli.errors import CliError
from mcpkeeper.cli.foreground import foreground_store, pid_alive
from mcpkeeper.cli.interactive_login import login_interactively, login_options
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.cli.login_cmd import default_workload_name
from mcpkeeper.cli.snippets import client_snippets
from mcpkeeper.state.client_token import load_client_token
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadStore

if TYPE_CHECKING:
    from mcpkeeper.api.client import DaemonClient

__all__ = ["check_name_free", "check_port_free", "run"]

#: How long ``run`` waits for a new workload to leave ``starting`` before printing it as it is.
_SETTLE_TIMEOUT = 15.0
_POLL = 0.1


def run(
    url: RemoteUrlArg,
    name: NameOpt = None,
    port: PortOpt = None,
    callback_port: CallbackPortOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: ClientSecretOpt = None,
    scopes: ScopeOpt = None,
    no_browser: NoBrowserOpt = False,
    client_token: ClientTokenOpt = False,
    grant: GrantOpt = Grant.AUTHORIZATION_CODE,
    private_key: PrivateKeyOpt = None,
    client_metadata_url: ClientMetadataUrlOpt = None,
    device: DeviceOpt = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Log in to a remote MCP server and keep it available locally (via the daemon)."""
    home = state_home()
    checked_remote_url(url)
    chosen = checked_name(name) if name else default_workload_name(url)
    check_name_free(home, chosen)
    require_writable_home(home)
    if port is not None:
        check_port_free(home, port)
    result = login_interactively(
        url,
        chosen,
        login_options(
            callback_port,
            client_id,
            client_secret,
            scopes,
            no_browser,
            grant,
            private_key,
            client_metadata_url,
            device,
        ),
    )
    with start_daemon(home) as client:
        info = _create(
            client, home, chosen, result.remote_url, port, auth=result.auth_required, client_auth=client_token
        )
        info = _settled(client, chosen, info)
    token = load_client_token(home) if info.get("client_auth") else None
    target = target_for(home, chosen)
    snippets = client_snippets(
        chosen, str(info.get("url")), command=target.command, client_token=token, env=target.env
    )
    setup = f"mcpkeeper client setup {chosen}"
    if output is OutputFormat.JSON:
        print_json({"workload": info, "clients": snippets, "client_setup": setup})
    else:
        _print_human(info, snippets)
        _offer_client_setup(home, chosen, setup)


def check_name_free(home: Path, name: str) -> None:
    """Refuse a name already used by a daemon workload or a live foreground proxy."""
    if WorkloadStore(home).exists(name):
        raise CliError(
            f"a workload named {name!r} already exists; use 'mcpkeeper start {name}' or pick another --name"
        )
    if foreground_store(home).exists(name):
        record = StatusStore(home).get(name)
        if record is not None and pid_alive(record.pid):
            raise CliError(f"{name!r} is running in the foreground (mcpkeeper proxy, pid {record.pid})")
        foreground_store(home).delete(name)  # a leftover of a proxy that died: the name is free


def check_port_free(home: Path, port: int) -> None:
    """Refuse, before the browser opens, a ``--port`` another workload owns or another process holds."""
    from mcpkeeper.net import PortInUseError, bind_loopback

    for config in WorkloadStore(home).list():
        if config.port == port:
            raise CliError(f"port {port} is already used by workload {config.name!r}")
    try:
        bind_loopback(port).close()
    except PortInUseError as exc:
        raise CliError(str(exc)) from None


def _create(
    client: DaemonClient,
    home: Path,
    name: str,
    remote_url: str,
    port: int | None,
    *,
    auth: bool,
    client_auth: bool,
) -> dict[str, Any]:
    from mcpkeeper.api.client import DaemonError

    try:
        return client.create_workload(name, remote_url, port=port, auth=auth, client_auth=client_auth)
    except DaemonError:
        if auth and not WorkloadStore(home).exists(name):
            _forget_login(home, name)
        raise


def _forget_login(home: Path, name: str) -> None:
    """The workload was not created: its just-stored tokens must not linger unowned."""
    from mcpkeeper.auth.credentials import CredentialStore

    CredentialStore.open(home).delete(name)


def _settled(client: DaemonClient, name: str, info: dict[str, Any]) -> dict[str, Any]:
    """The workload's info once it has left ``starting`` (bounded wait)."""
    deadline = time.monotonic() + _SETTLE_TIMEOUT
    while info.get("status") == "starting" and time.monotonic() < deadline:
        time.sleep(_POLL)
        info = client.get_workload(name)
    return info


def _print_human(info: dict[str, Any], snippets: dict[str, dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.text import Text

    from mcpkeeper.cli.render import printable, status_style

    out = Console(highlight=False, soft_wrap=True)
    status = str(info.get("status"))
    out.print(
        Text.assemble(
            "Workload ",
            (str(info.get("name")), "bold"),
            " is ",
            (status, status_style(status)),
            f": {info.get('url')}",
        )
    )
    if info.get("status_context"):
        out.print(Text(f"  {printable(info['status_context'])}", style="dim"))
    out.print()
    for client_name, snippet in snippets.items():
        out.print(Text(f"{client_name}:", style="bold"))
        out.print(Text(json.dumps(snippet, indent=2)))
        out.print()
    sys.stdout.flush()


def _offer_client_setup(home: Path, name: str, setup: str) -> None:
    """Ask (at a terminal) whether to write the workload into the clients installed here,
    else say which command does it. Then the hint that keeps URL clients alive after a reboot."""
    from mcpkeeper.cli.client_cmd import print_plans, run_setup
    from mcpkeeper.cli.client_setup import Machine, installed_clients
    from mcpkeeper.clientconfig.clients import CLIENTS

    machine = Machine.current()
    found = installed_clients(machine)
    if found and sys.stdin.isatty() and sys.stdout.isatty():
        labels = ", ".join(CLIENTS[client].label for client in found)
        if typer.confirm(f"Add {name} to {labels} now?", default=True):
            print_plans(run_setup(machine, home, name, found), machine, dry_run=False, name=name)
        else:
            print(f"Later: {setup}")
    else:
        found_note = f" (found here: {', '.join(found)})" if found else ""
        print(f"To add it to your MCP clients' config files{found_note}: {setup}")
    if not _starts_at_login():
        print("To keep URL clients working after a reboot: mcpkeeper service install")
    sys.stdout.flush()


def _starts_at_login() -> bool:
    import os

    from mcpkeeper.autostart.service import service_files

    return any(path.exists() for path in service_files(sys.platform, Path.home(), os.environ).values())
