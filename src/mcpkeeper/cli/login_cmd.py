"""``mcpkeeper login URL|NAME``: log in through the browser and store the tokens.

With a URL, a new login is stored under ``--name`` (default: derived from the host). With
the NAME of an existing workload, the login is renewed in place — same remote, same
client registration — which is how an ``unauthenticated`` workload comes back.

The command prints the authorization URL even when a browser opens (headless machines,
SSH), shows progress while it waits, and ends with the issuer, client id, scopes and
expiry. It never prints a token. Failures are one line on stderr and a non-zero exit.

``python -m mcpkeeper.cli.login_cmd`` runs this command alone (used by its tests);
the ``mcpkeeper`` app registers :func:`login` as its ``login`` command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from mcpkeeper.cli._options import (
    CallbackPortOpt,
    ClientIdOpt,
    ClientMetadataUrlOpt,
    ClientSecretOpt,
    DeviceOpt,
    Grant,
    GrantOpt,
    NoBrowserOpt,
    PrivateKeyOpt,
    ScopeOpt,
    checked_remote_url,
    require_writable_home,
)
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.interactive_login import login_interactively, login_options
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.durations import format_duration, parse_duration
from mcpkeeper.state.names import NAME_PATTERN, validate_name
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadConfig, WorkloadStore

if TYPE_CHECKING:  # the HTTP stack is imported only when a login really runs (fast CLI start-up)
    from rich.console import Console

    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.auth.login import LoginResult

__all__ = ["LoginTarget", "default_workload_name", "login", "main", "resolve_target"]

_MAX_NAME = 63
_DEFAULT_TIMEOUT = "5m"  # mcpkeeper.auth.login.DEFAULT_LOGIN_TIMEOUT, spelled for --help


@dataclass(frozen=True, slots=True)
class LoginTarget:
    """What ``login`` works on: a remote, the workload name, and settings remembered for it."""

    remote_url: str
    name: str
    existing: bool
    callback_port: int | None = None
    scopes: tuple[str, ...] = ()
    issuer: str | None = None
    #: What the remote asked for after the workload started (``WWW-Authenticate``), if anything.
    challenge: str | None = None


def default_workload_name(url: str) -> str:
    """A workload name from a URL's host and explicit port.

    ``https://mcp.example.com/mcp`` → ``mcp.example.com``; ``http://127.0.0.1:8080/mcp`` →
    ``127.0.0.1-8080``.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().replace(":", "-")
    try:
        port = parts.port
    except ValueError:
        port = None
    name = f"{host}-{port}" if port else host
    name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "-" for ch in name)
    name = name.lstrip("._-")[:_MAX_NAME].rstrip("._-")
    if not name or not NAME_PATTERN.fullmatch(name):
        raise CliError(f"cannot derive a workload name from {url!r}; pass --name", ExitCode.USAGE)
    return name


def resolve_target(
    target: str, name: str | None, store: CredentialStore, workloads: WorkloadStore
) -> LoginTarget:
    """A URL (new or repeated login) or the name of a workload / stored login (re-login in place)."""
    if "://" in target:
        checked_remote_url(target)
        chosen = validate_name(name) if name else default_workload_name(target)
        config = _workload(workloads, chosen)
        if config is not None:
            return _target_of(config, target)
        return LoginTarget(target, chosen, False)
    if name is not None and name != target:
        raise CliError("--name cannot rename a workload; log in with its URL instead", ExitCode.USAGE)
    workload_name = validate_name(target)
    config = _workload(workloads, workload_name)
    if config is not None:
        return _target_of(config, config.remote_url)
    stored = store.load(workload_name)
    if stored is not None:
        return LoginTarget(stored.remote_url, workload_name, True, scopes=stored.scopes)
    raise CliError(
        f"no workload named {workload_name}; give the server URL to log in to a new one", ExitCode.NOT_FOUND
    )


def _target_of(config: WorkloadConfig, remote_url: str) -> LoginTarget:
    return LoginTarget(
        remote_url,
        config.name,
        True,
        config.callback_port,
        tuple(config.scopes),
        config.issuer,
        config.auth_challenge,
    )


def _workload(workloads: WorkloadStore, name: str) -> WorkloadConfig | None:
    try:
        return workloads.get(name)
    except CorruptStateError as exc:
        raise CliError(str(exc)) from None


def login(
    target: Annotated[
        str, typer.Argument(metavar="URL|NAME", help="MCP server URL, or an existing workload's name.")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Workload name for a new login (default: from the host).")
    ] = None,
    callback_port: CallbackPortOpt = None,
    client_id: ClientIdOpt = None,
    client_secret: ClientSecretOpt = None,
    scopes: ScopeOpt = None,
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Authorization server to use instead of the server's.")
    ] = None,
    timeout: Annotated[
        str, typer.Option("--timeout", help="How long to wait for the browser login (e.g. 5m, 90s).")
    ] = _DEFAULT_TIMEOUT,
    no_browser: NoBrowserOpt = False,
    grant: GrantOpt = Grant.AUTHORIZATION_CODE,
    private_key: PrivateKeyOpt = None,
    client_metadata_url: ClientMetadataUrlOpt = None,
    device: DeviceOpt = False,
    output: FormatOpt = OutputFormat.TABLE,
) -> str:
    """Log in to an OAuth-protected MCP server (browser, device code, client credentials); keep the tokens."""
    from rich.console import Console

    from mcpkeeper.auth.credentials import CredentialStore
    from mcpkeeper.auth.www_authenticate import parse_www_authenticate_or_none

    wait = _parse_timeout(timeout)
    store = CredentialStore.open()
    chosen = resolve_target(target, name, store, WorkloadStore(state_home()))
    require_writable_home(state_home())  # before the browser: a login that cannot be stored is lost
    options = login_options(
        callback_port or chosen.callback_port,
        client_id,
        client_secret,
        scopes or list(chosen.scopes) or None,
        no_browser,
        grant,
        private_key,
        client_metadata_url,
        device,
    )
    result = login_interactively(
        chosen.remote_url,
        chosen.name,
        options,
        issuer=issuer or chosen.issuer,
        timeout=wait,
        store=store,
        challenge=parse_www_authenticate_or_none(chosen.challenge),
    )
    if output is OutputFormat.JSON:
        print_json(_result_json(result))
    else:
        _report(Console(highlight=False), Console(stderr=True, highlight=False), result)
    return chosen.name  # the workload logged in, for cli.login_wrapper (typer ignores it)


def _result_json(result: LoginResult) -> dict[str, object]:
    """What a login did, for scripts: the same facts as the human report, never a token."""
    return {
        "name": result.name,
        "remote_url": result.remote_url,
        "auth_required": result.auth_required,
        "issuer": result.issuer,
        "client_id": result.client_id,
        "registered_client": result.registered_client,
        "scopes": list(result.scopes),
        "granted_scope": result.granted_scope,
        "expires_at": result.expires_at,
        "has_refresh_token": result.has_refresh_token,
        "warnings": list(result.warnings),
    }


def _parse_timeout(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise CliError(f"invalid --timeout {text!r}: {exc}", ExitCode.USAGE) from None
    if seconds <= 0:
        raise CliError("--timeout must be positive", ExitCode.USAGE)
    return seconds


def _report(out: Console, err: Console, result: LoginResult) -> None:
    if not result.auth_required:
        out.print(f"{result.remote_url} needs no login: it answers without credentials. Nothing stored.")
        return
    client_note = "registered now" if result.registered_client else "existing registration"
    out.print(f"Logged in to {result.remote_url} as workload [bold]{result.name}[/bold]")
    out.print(f"  issuer:   {result.issuer}", markup=False)
    out.print(f"  client:   {result.client_id} ({client_note})", markup=False)
    scopes = result.granted_scope or " ".join(result.scopes) or "(server default)"
    out.print(f"  scopes:   {scopes}", markup=False)
    out.print(f"  expires:  {_expiry(result.expires_at)}", markup=False)
    out.print(f"  refresh:  {'yes' if result.has_refresh_token else 'no'}", markup=False)
    for warning in result.warnings:
        err.print(f"warning: {warning}", markup=False)


def _expiry(expires_at: float | None) -> str:
    if expires_at is None:
        return "not stated by the server"
    moment = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(expires_at))
    return f"in {format_duration(max(0.0, expires_at - time.time()))} ({moment})"


_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
_app.command()(login)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the login command alone; every failure is one ``error:`` line and a non-zero exit."""
    from typer._click.exceptions import ClickException

    from mcpkeeper.cli.failures import describe_failure, error_line

    command = typer.main.get_command(_app)
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        command.main(args=args, prog_name="mcpkeeper login", standalone_mode=False)
    except ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code or ExitCode.USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        message, code = describe_failure(exc)
        print(error_line(message), file=sys.stderr)
        return code
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
