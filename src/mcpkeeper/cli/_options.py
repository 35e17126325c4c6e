"""Arguments and options shared by several commands, declared once so they read the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import STATE_SUBDIRS, HomeNotWritableError, check_writable_home
from mcpkeeper.state.remote_url import InvalidRemoteUrlError, check_remote_url

__all__ = [
    "CallbackPortOpt",
    "WorkloadNameArg",
    "checked_name",
    "checked_remote_url",
    "complete_workload_names",
    "require_writable_home",
]


def complete_workload_names(incomplete: str) -> list[str]:
    """Shell completion of a NAME: the workloads (daemon and foreground) whose name starts so."""
    from mcpkeeper.state.paths import state_home

    home = state_home()
    names: set[str] = set()
    for directory in (home / "workloads", home / "foreground" / "workloads"):
        try:
            names.update(
                entry.name[: -len(".json")] for entry in directory.iterdir() if entry.suffix == ".json"
            )
        except OSError:
            continue
    return sorted(name for name in names if name.startswith(incomplete) and not name.startswith("."))


WorkloadNameArg = Annotated[
    str,
    typer.Argument(
        metavar="NAME",
        help="Workload name (see `mcpkeeper list`).",
        autocompletion=complete_workload_names,
    ),
]

CallbackPortOpt = Annotated[
    int | None,
    typer.Option(
        "--callback-port",
        min=1,
        max=65535,
        help="Fixed local port for the OAuth redirect (default: a free port); "
        "for authorization servers that only accept a registered redirect URI.",
    ),
]


def checked_name(name: str) -> str:
    """``name`` if it is a valid workload name, else a one-line usage error."""
    try:
        return validate_name(name)
    except ValueError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def checked_remote_url(url: str) -> str:
    """``url`` if it is acceptable as a remote MCP server URL (the rule the control API and the
    stores apply too: :mod:`mcpkeeper.state.remote_url`), else a one-line usage error."""
    try:
        return check_remote_url(url)
    except InvalidRemoteUrlError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def require_writable_home(home: Path, *extra: str) -> None:
    """Fail now, before any browser opens, if the state home cannot take what a login stores."""
    try:
        check_writable_home(home, (*STATE_SUBDIRS, *extra))
    except HomeNotWritableError as exc:
        raise CliError(str(exc)) from None
