"""Arguments and options shared by several commands, declared once so they read the same."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import STATE_SUBDIRS, HomeNotWritableError, check_writable_home
from mcpkeeper.state.remote_url import InvalidRemoteUrlError, check_remote_url

__all__ = [
    "CallbackPortOpt",
    "ClientIdOpt",
    "ClientMetadataUrlOpt",
    "ClientSecretOpt",
    "ClientTokenOpt",
    "DeviceOpt",
    "Grant",
    "GrantOpt",
    "NameOpt",
    "NoBrowserOpt",
    "NoRevokeOpt",
    "PortOpt",
    "PrivateKeyOpt",
    "RemoteUrlArg",
    "ScopeOpt",
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
NoRevokeOpt = Annotated[
    bool, typer.Option("--no-revoke", help="Only delete the login here; do not tell the server.")
]

# What `run` and `proxy` take besides the login options.
RemoteUrlArg = Annotated[str, typer.Argument(metavar="URL", help="The remote MCP server's URL.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Workload name (default: from the URL's host).")]
PortOpt = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="Local port to serve on (default: a free one).")
]
ClientTokenOpt = Annotated[
    bool,
    typer.Option(
        "--client-token",
        help="Require the local client token (Authorization: Bearer ...) from MCP clients, so that "
        "other users of this machine cannot use the workload; the snippets below include it.",
    ),
]


class Grant(StrEnum):
    AUTHORIZATION_CODE = "authorization-code"
    CLIENT_CREDENTIALS = "client-credentials"


# The login options of `run`, `proxy` and `login` (checked together by
# cli.interactive_login.login_options).
ClientIdOpt = Annotated[
    str | None,
    typer.Option("--client-id", help="Use this pre-registered OAuth client instead of registering."),
]
ClientSecretOpt = Annotated[
    str | None,
    typer.Option("--client-secret", envvar="MCPKEEPER_CLIENT_SECRET", help="Secret of --client-id."),
]
ScopeOpt = Annotated[
    list[str] | None, typer.Option("--scope", help="Scope to request (repeatable; default: from metadata).")
]
NoBrowserOpt = Annotated[
    bool,
    typer.Option(
        "--no-browser",
        help="Only print the login URL; open no browser. If the browser cannot reach this machine, "
        "paste the URL it ends on here.",
    ),
]
GrantOpt = Annotated[
    Grant,
    typer.Option(
        "--grant",
        help="client-credentials: log in as a service account (--client-id with --client-secret or "
        "--private-key), no browser.",
    ),
]
PrivateKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--private-key",
        metavar="FILE",
        help="PEM private key of --client-id for private_key_jwt (must be readable by you alone).",
    ),
]
ClientMetadataUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--client-metadata-url",
        envvar="MCPKEEPER_CLIENT_METADATA_URL",
        help="HTTPS URL of your Client ID Metadata Document, used as the client id where supported.",
    ),
]
DeviceOpt = Annotated[
    bool,
    typer.Option("--device", help="Log in with a code entered on another device (RFC 8628), no callback."),
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
