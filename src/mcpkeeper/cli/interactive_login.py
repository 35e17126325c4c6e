"""Logging in as ``run``, ``proxy`` and ``login`` present it: URL always printed, a spinner meanwhile.

Everything goes to stderr, so that ``run --format json`` and ``proxy --stdio`` keep
stdout for their machine-readable output (or for the MCP stream itself).

Which login runs:

* ``--grant client-credentials`` (with ``--client-id`` and ``--client-secret`` or
  ``--private-key FILE``): no browser, no user; a service account's token;
* ``--device``: the device authorization grant (RFC 8628), a code entered on any device;
* otherwise the browser login (PKCE); with ``--no-browser`` the URL is only printed, and
  when stdin is a terminal the URL the browser ended on may be pasted there, for a
  browser on another machine that cannot reach our loopback callback.

A re-login of a stored login (``mcpkeeper login NAME``) without those flags repeats the
kind it was, with the client it had: a service account stays one.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from mcpkeeper.cli._options import Grant

if TYPE_CHECKING:
    from mcpkeeper.auth.credentials import CredentialStore, StoredLogin
    from mcpkeeper.auth.device import DeviceCode
    from mcpkeeper.auth.login import LoginResult
    from mcpkeeper.auth.www_authenticate import BearerChallenge

__all__ = ["Grant", "LoginOptions", "login_in_loop", "login_interactively", "login_options"]


@dataclass(frozen=True, slots=True)
class LoginOptions:
    """The login settings ``run``, ``proxy`` and ``login`` take from their command line."""

    callback_port: int | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: list[str] | None = None
    open_browser: bool = True
    grant: Grant = Grant.AUTHORIZATION_CODE
    private_key: Path | None = None
    client_metadata_url: str | None = None
    device: bool = False
    #: RFC 8707 resource to ask for instead of the discovered one (mcp-remote's ``--resource``).
    resource: str | None = None
    #: Send no resource indicator (mcp-remote's ``--disable-resource-parameter``).
    omit_resource: bool = False


def login_options(
    callback_port: int | None,
    client_id: str | None,
    client_secret: str | None,
    scopes: list[str] | None,
    no_browser: bool,
    grant: Grant,
    private_key: Path | None,
    client_metadata_url: str | None,
    device: bool,
) -> LoginOptions:
    """The options of one command line, checked together (usage errors before any network)."""
    from mcpkeeper.cli.errors import CliError, ExitCode

    if client_secret is not None and client_id is None:
        raise CliError("--client-secret needs --client-id", ExitCode.USAGE)
    if private_key is not None and client_id is None:
        raise CliError("--private-key needs --client-id", ExitCode.USAGE)
    if grant is Grant.CLIENT_CREDENTIALS:
        if client_id is None or (client_secret is None) == (private_key is None):
            raise CliError(
                "--grant client-credentials needs --client-id and one of --client-secret, --private-key",
                ExitCode.USAGE,
            )
        if device:
            raise CliError("--device and --grant client-credentials exclude each other", ExitCode.USAGE)
    elif private_key is not None:
        raise CliError("--private-key is for --grant client-credentials", ExitCode.USAGE)
    return LoginOptions(
        callback_port,
        client_id,
        client_secret,
        scopes,
        not no_browser,
        grant,
        private_key,
        client_metadata_url,
        device,
    )


def login_interactively(
    remote_url: str,
    name: str,
    options: LoginOptions,
    *,
    issuer: str | None = None,
    timeout: float | None = None,
    store: CredentialStore | None = None,
    challenge: BearerChallenge | None = None,
) -> LoginResult:
    """Discover, register if needed, log in and store the login as ``name`` (see the module docstring).

    A remote that needs no authentication returns at once with ``auth_required`` False.
    ``issuer`` overrides the server's authorization server; ``timeout`` (seconds) bounds
    the wait for the user (default: ``auth.login.DEFAULT_LOGIN_TIMEOUT``); ``store``
    defaults to the state home's credential store.
    """
    from rich.console import Console

    from mcpkeeper.cli.render import printable

    err = Console(stderr=True, highlight=False)

    def progress(message: str) -> None:
        if err.is_terminal:
            status.update(printable(message))
        else:  # no spinner without a terminal: say each step once instead
            print(printable(message), file=sys.stderr)

    with err.status(f"Logging in to {remote_url}…") as status:
        return asyncio.run(
            login_in_loop(
                remote_url,
                name,
                options,
                issuer=issuer,
                timeout=timeout,
                store=store,
                challenge=challenge,
                progress=progress,
            )
        )


async def login_in_loop(
    remote_url: str,
    name: str,
    options: LoginOptions,
    *,
    issuer: str | None = None,
    timeout: float | None = None,
    store: CredentialStore | None = None,
    challenge: BearerChallenge | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoginResult:
    """The same login from inside a running event loop (the foreground proxy logging in later)."""
    from mcpkeeper.auth.client_credentials import perform_client_credentials_login
    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.auth.device import perform_device_login
    from mcpkeeper.auth.login import DEFAULT_LOGIN_TIMEOUT, open_in_browser, perform_login

    store = store or CredentialStore.open()
    options = _repeat_stored_kind(options, _stored(store, name, remote_url))
    if (options.resource is not None or options.omit_resource) and (
        options.device or options.grant is Grant.CLIENT_CREDENTIALS
    ):
        from mcpkeeper.cli.errors import CliError, ExitCode

        raise CliError("--resource and --disable-resource-parameter go with a browser login", ExitCode.USAGE)
    wait = DEFAULT_LOGIN_TIMEOUT if timeout is None else timeout
    common = _CommonArgs(
        store=store,
        client_secret=options.client_secret,
        scopes=options.scopes or None,
        issuer=issuer,
        progress=progress or _print_progress,
    )
    if options.grant is Grant.CLIENT_CREDENTIALS:
        assert options.client_id is not None  # checked by login_options
        return await perform_client_credentials_login(
            remote_url, name, client_id=options.client_id, private_key=options.private_key, **common
        )
    if options.device:
        return await perform_device_login(
            remote_url, name, client_id=options.client_id, timeout=wait, show_code=_show_code, **common
        )
    pasted = _pasted_lines() if not options.open_browser and sys.stdin.isatty() else None
    try:
        return await perform_login(
            remote_url,
            name,
            callback_port=options.callback_port,
            client_id=options.client_id,
            timeout=wait,
            show_url=lambda url: _show_url(url, opens=options.open_browser, paste=pasted is not None),
            open_browser=open_in_browser if options.open_browser else None,
            client_metadata_url=options.client_metadata_url,
            challenge=challenge,
            pasted=pasted,
            resource=options.resource,
            omit_resource=options.omit_resource,
            **common,
        )
    finally:
        if pasted is not None:
            await pasted.aclose()


class _CommonArgs(TypedDict):
    """What every kind of login is given the same way."""

    store: CredentialStore
    client_secret: str | None
    scopes: list[str] | None
    issuer: str | None
    progress: Callable[[str], None]


def _stored(store: CredentialStore, name: str, remote_url: str) -> StoredLogin | None:
    from mcpkeeper.auth.credentials import CredentialStoreError

    try:
        stored = store.load(name)
    except CredentialStoreError:
        return None
    if stored is None or stored.remote_url.rstrip("/") != remote_url.rstrip("/"):
        return None
    return stored


def _repeat_stored_kind(options: LoginOptions, stored: StoredLogin | None) -> LoginOptions:
    """Without flags saying otherwise, a re-login is the same kind of login as the stored one."""
    plain = options.grant is Grant.AUTHORIZATION_CODE and not options.device and options.client_id is None
    if stored is None or not plain:
        return options
    if stored.grant == "client_credentials":
        client = stored.client
        key = Path(client.private_key_path) if client.private_key_path else None
        return replace(
            options,
            grant=Grant.CLIENT_CREDENTIALS,
            client_id=client.client_id,
            client_secret=client.client_secret,
            private_key=key,
        )
    if stored.grant == "device_code":
        return replace(options, device=True)
    if stored.client.metadata_document and options.client_metadata_url is None:
        return replace(options, client_metadata_url=stored.client.client_id)
    return options


def _print_progress(message: str) -> None:
    from mcpkeeper.cli.render import printable

    print(printable(message), file=sys.stderr, flush=True)


def _show_url(url: str, *, opens: bool, paste: bool) -> None:
    from mcpkeeper.cli.render import printable

    hint = " (a browser should open by itself)" if opens else ""
    print(f"Open this URL to log in{hint}:", file=sys.stderr)
    print(printable(url), file=sys.stderr, flush=True)
    if paste:
        print(
            "If the browser cannot reach this machine, paste the URL it ends on (…/callback?code=…) here:",
            file=sys.stderr,
            flush=True,
        )


def _show_code(code: DeviceCode) -> None:
    from mcpkeeper.cli.render import printable  # every part of it comes from the server

    print(f"To log in, open {printable(code.verification_uri)} on any device", file=sys.stderr)
    print(f"and enter the code: {printable(code.user_code)}", file=sys.stderr)
    if code.verification_uri_complete:
        print(f"(or open {printable(code.verification_uri_complete)})", file=sys.stderr)
    sys.stderr.flush()


async def _pasted_lines() -> AsyncGenerator[str, None]:
    """Lines typed on stdin (a terminal), read without blocking the event loop."""
    from mcpkeeper.cli.paste import read_lines

    async for line in read_lines(sys.stdin.fileno()):
        yield line
