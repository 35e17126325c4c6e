"""``mcpkeeper login NAME|URL``, plus handing the new login to the running daemon.

The login itself (browser, PKCE, storing the tokens) is :func:`mcpkeeper.cli.login_cmd.login`.
A workload the daemon is running keeps using the tokens it loaded at start, so after a
successful login of one of its workloads we ask it to reload: that is what turns an
``unauthenticated`` workload back to ``running`` in place, without ``rm`` + ``run``.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from mcpkeeper.cli import login_cmd
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadStore

__all__ = ["login"]


@functools.wraps(login_cmd.login)  # same parameters, so typer builds the same options
def login(*args: Any, **kwargs: Any) -> None:
    _reload_in_daemon(login_cmd.login(*args, **kwargs))


def _reload_in_daemon(name: str) -> None:
    """Tell a running daemon about the new login of one of its workloads (never starts one)."""
    home = state_home()
    try:
        if WorkloadStore(home).get(name) is None:
            return
    except CorruptStateError:
        return
    from mcpkeeper.cli.daemon_access import connect_running_daemon

    client = connect_running_daemon(home)
    if client is None:
        print(f"The daemon is not running; {name} uses the new login when it starts.", file=sys.stderr)
        return
    with client:
        info = client.reload_credentials(name)
    print(f"Workload {name} reloaded its login: status {info.get('status')}", file=sys.stderr)
