"""The browser login as ``run``, ``proxy`` and ``login`` present it: URL always printed, a spinner meanwhile.

Everything goes to stderr, so that ``run --format json`` and ``proxy --stdio`` keep
stdout for their machine-readable output (or for the MCP stream itself).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.auth.login import LoginResult

__all__ = [
    "ClientIdOpt",
    "ClientSecretOpt",
    "LoginOptions",
    "NoBrowserOpt",
    "ScopeOpt",
    "login_interactively",
]

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
    bool, typer.Option("--no-browser", help="Only print the login URL; open no browser.")
]


@dataclass(frozen=True, slots=True)
class LoginOptions:
    """The login settings ``run`` and ``proxy`` take from their command line."""

    callback_port: int | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] | None = None
    open_browser: bool = True


def login_interactively(
    remote_url: str,
    name: str,
    options: LoginOptions,
    *,
    issuer: str | None = None,
    timeout: float | None = None,
    store: CredentialStore | None = None,
) -> LoginResult:
    """Discover, register if needed, log in through the browser and store the login as ``name``.

    A remote that needs no authentication returns at once with ``auth_required`` False.
    ``issuer`` overrides the server's authorization server; ``timeout`` (seconds) bounds
    the wait for the browser (default: ``auth.login.DEFAULT_LOGIN_TIMEOUT``); ``store``
    defaults to the state home's credential store.
    """
    from rich.console import Console

    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.auth.login import DEFAULT_LOGIN_TIMEOUT, open_in_browser, perform_login
    from mcpkeeper.cli.errors import CliError, ExitCode
    from mcpkeeper.cli.render import printable

    if options.client_secret is not None and options.client_id is None:
        raise CliError("--client-secret needs --client-id", ExitCode.USAGE)
    err = Console(stderr=True, highlight=False)

    def show_url(url: str) -> None:
        err.print("Open this URL to log in (a browser should open by itself):")
        err.print(printable(url), soft_wrap=True, markup=False)

    def progress(message: str) -> None:
        if err.is_terminal:
            status.update(printable(message))
        else:  # no spinner without a terminal: say each step once instead
            print(printable(message), file=sys.stderr)

    with err.status(f"Logging in to {remote_url}…") as status:
        return asyncio.run(
            perform_login(
                remote_url,
                name,
                store=store or CredentialStore.open(),
                callback_port=options.callback_port,
                client_id=options.client_id,
                client_secret=options.client_secret,
                scopes=options.scopes or None,
                issuer=issuer,
                timeout=DEFAULT_LOGIN_TIMEOUT if timeout is None else timeout,
                show_url=show_url,
                progress=progress,
                open_browser=open_in_browser if options.open_browser else None,
            )
        )
