"""``mcpkeeper dashboard``: open the web dashboard with a one-time login link.

The daemon must serve the HTTP API (``mcpkeeper serve --api 127.0.0.1:PORT``, or
``MCPKEEPER_API`` in the environment of the daemon the CLI starts). The link is asked
for over the Unix socket, so only this user can get one; its code works once, for two
minutes (see :mod:`mcpkeeper.api.dashboard`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json

__all__ = ["dashboard"]


def dashboard(
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the link; open no browser.")
    ] = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Open the web dashboard (live statuses, timelines, stop/start/restart, login)."""
    from mcpkeeper.api.client import DaemonError
    from mcpkeeper.cli.daemon_access import connect_running_daemon
    from mcpkeeper.state.paths import state_home

    client = connect_running_daemon(state_home())
    if client is None:
        raise CliError(
            "the daemon is not running; start it with `mcpkeeper serve --api 127.0.0.1:PORT`",
            ExitCode.DAEMON_UNAVAILABLE,
        )
    with client:
        try:
            url = str(client.dashboard_link()["url"])
        except DaemonError as exc:
            raise CliError(exc.message) from None
    if output is OutputFormat.JSON:
        print_json({"url": url})
    else:
        print(url)
    if not no_browser:
        from mcpkeeper.auth.login import open_in_browser

        open_in_browser(url)
