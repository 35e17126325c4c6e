"""``mcpkeeper proxy URL``: one workload in the foreground, no daemon (mcp-remote style).

The same :class:`~mcpkeeper.workloads.runtime.WorkloadRuntime` the daemon uses, in this
process: token monitor, proxy, status in the shared status store (so ``list`` shows it),
log in ``<home>/logs/<name>.log``. With ``--stdio`` the MCP stream is our stdin/stdout
(for clients that spawn a command) and every human word goes to stderr.

Any number of ``proxy URL --stdio`` for the same workload share one workload and one
refresher (:mod:`mcpkeeper.cli.stdio_share`: the first hosts, the others attach, one of
them takes over when the host exits); a daemon workload for the same remote is attached
to as ``mcpkeeper connect`` does. mcp-remote's flags are accepted or mapped
(:mod:`mcpkeeper.cli.mcp_remote_flags`), so ``npx mcp-remote URL [flags]`` becomes
``mcpkeeper proxy URL --stdio [flags]``.

A stored login for the same remote is reused (refreshed as needed, no browser); without
one the browser login runs first. A person (or their client) started this proxy, so when
the remote asks for authorization later (a 401 after ``initialize``, a 403 asking for
more scopes) the login runs then, with the same options, and the request is replayed
(:mod:`mcpkeeper.workloads.reauth`). When the last proxy of a workload ends, its
foreground registration and status are removed; the login stays for next time.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.foreground import foreground_store
from mcpkeeper.cli.interactive_login import LoginOptions, login_interactively, login_options
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat, print_json
from mcpkeeper.cli.login_cmd import default_workload_name
from mcpkeeper.cli.mcp_remote_flags import McpRemoteFlags, resolve_flags
from mcpkeeper.cli.run_cmd import check_name_free, check_port_free
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore

if TYPE_CHECKING:
    from mcpkeeper.auth.www_authenticate import BearerChallenge
    from mcpkeeper.workloads.reauth import ForegroundLogin

__all__ = ["proxy"]

_COMPAT = "mcp-remote compatibility"
_MAX_NAME = 63
#: mcp-remote's default login wait is 30 s; ours (when --auth-timeout is not given) is 5 min.
_DEFAULT_LOGIN_WAIT = 300.0


def proxy(
    url: RemoteUrlArg,
    positional_port: Annotated[
        int | None,
        typer.Argument(
            metavar="CALLBACK_PORT",
            min=1,
            max=65535,
            help="The OAuth callback port, as mcp-remote takes it after the URL (same as --callback-port).",
            show_default=False,
        ),
    ] = None,
    name: NameOpt = None,
    stdio: Annotated[
        bool,
        typer.Option(
            "--stdio",
            help="Serve MCP on stdin/stdout (for clients that spawn a command); any number of them "
            "share one workload.",
        ),
    ] = False,
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
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            metavar="'NAME: VALUE'",
            rich_help_panel=_COMPAT,
            help="An HTTP header sent to the server with every MCP request (repeatable; --stdio).",
        ),
    ] = None,
    resource: Annotated[
        str | None,
        typer.Option(
            "--resource",
            metavar="URI",
            rich_help_panel=_COMPAT,
            help="RFC 8707 resource to log in for (one login per tenant of a shared server); "
            "the default name gets its host.",
        ),
    ] = None,
    disable_resource: Annotated[
        bool,
        typer.Option(
            "--disable-resource-parameter",
            rich_help_panel=_COMPAT,
            help="Send no resource indicator (servers that refuse it).",
        ),
    ] = False,
    static_client_info: Annotated[
        str | None,
        typer.Option(
            "--static-oauth-client-info",
            metavar="JSON|@FILE",
            rich_help_panel=_COMPAT,
            help="A pre-registered client: {client_id, client_secret} (as --client-id/--client-secret).",
        ),
    ] = None,
    static_client_metadata: Annotated[
        str | None,
        typer.Option(
            "--static-oauth-client-metadata",
            metavar="JSON|@FILE",
            rich_help_panel=_COMPAT,
            help="Client metadata; its scope is used (as --scope).",
        ),
    ] = None,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http",
            rich_help_panel=_COMPAT,
            help="Accepted: http:// servers need no flag; OAuth endpoints stay https (loopback aside).",
        ),
    ] = False,
    transport: Annotated[
        str | None,
        typer.Option(
            "--transport",
            metavar="STRATEGY",
            rich_help_panel=_COMPAT,
            help="Accepted; the bridge speaks streamable HTTP (sse-only is refused).",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            rich_help_panel=_COMPAT,
            help="Callback host: localhost or 127.0.0.1 (the callback always listens on 127.0.0.1).",
        ),
    ] = None,
    auth_timeout: Annotated[
        int | None,
        typer.Option(
            "--auth-timeout",
            metavar="SECONDS",
            min=1,
            rich_help_panel=_COMPAT,
            help="How long to wait for the browser login (default 300).",
        ),
    ] = None,
    silent: Annotated[
        bool, typer.Option("--silent", rich_help_panel=_COMPAT, help="Accepted; stderr is short already.")
    ] = False,
    enable_proxy: Annotated[
        bool,
        typer.Option(
            "--enable-proxy",
            rich_help_panel=_COMPAT,
            help="Accepted: HTTP(S)_PROXY and NO_PROXY are always honoured.",
        ),
    ] = False,
    ignore_tool: Annotated[
        list[str] | None,
        typer.Option(
            "--ignore-tool",
            metavar="PATTERN",
            rich_help_panel=_COMPAT,
            help="Refused: tools are not filtered.",
        ),
    ] = None,
) -> None:
    """Run one workload in the foreground, without the daemon (Ctrl-C stops it); with --stdio, the
    drop-in for `npx mcp-remote URL`."""
    del allow_http, silent, enable_proxy  # mcp-remote flags for what mcpkeeper always does
    flags = resolve_flags(
        positional_port=positional_port,
        callback_port=callback_port,
        headers=header or [],
        resource=resource,
        disable_resource=disable_resource,
        static_client_info=static_client_info,
        static_client_metadata=static_client_metadata,
        transport=transport,
        host=host,
        auth_timeout=auth_timeout,
        ignore_tools=ignore_tool or [],
        client_id=client_id,
        client_secret=client_secret,
        scopes=scopes,
    )
    if stdio and port is not None:
        raise CliError("--stdio and --port exclude each other", ExitCode.USAGE)
    if flags.headers and not stdio:
        raise CliError(
            "--header is for --stdio (clients of a local URL send their own headers)", ExitCode.USAGE
        )
    for note in flags.notes:
        print(f"mcpkeeper: {note}", file=sys.stderr)
    home = state_home()
    checked_remote_url(url)
    chosen = checked_name(name) if name else _default_name(url, flags.resource)
    options = replace(
        login_options(
            flags.callback_port,
            flags.client_id,
            flags.client_secret,
            flags.scopes,
            no_browser,
            grant,
            private_key,
            client_metadata_url,
            device,
        ),
        resource=flags.resource,
        omit_resource=flags.omit_resource,
    )
    if stdio:
        _proxy_stdio(home, url, chosen, options, flags, client_token, explicit_name=name is not None)
    else:
        _proxy_port(home, url, chosen, options, flags, port, client_token, output)


def _default_name(url: str, resource: str | None) -> str:
    """From the URL's host; with ``--resource``, the resource's host too (one workload per tenant)."""
    base = default_workload_name(url)
    if resource is None:
        return base
    return checked_name(f"{base}-{default_workload_name(resource)}"[:_MAX_NAME].rstrip("._-"))


def _proxy_stdio(
    home: Path,
    url: str,
    name: str,
    options: LoginOptions,
    flags: McpRemoteFlags,
    client_token: bool,
    *,
    explicit_name: bool,
) -> None:
    """Attach to a daemon workload for this remote, else share a foreground workload (stdio_share)."""
    daemon_name = _daemon_workload(home, name, url, explicit_name=explicit_name)
    if daemon_name is not None:
        from mcpkeeper.cli.connect_cmd import bridge_stdio, client_headers, daemon_target

        target, needs_token = daemon_target(home, daemon_name)
        print(
            f"mcpkeeper: {url} is daemon workload {daemon_name}: bridging stdio to {target}", file=sys.stderr
        )
        bridge_stdio(target, {**flags.headers, **(client_headers(home) if needs_token else {})})
        return
    require_writable_home(home, "foreground/workloads")
    from mcpkeeper.cli.stdio_share import HostPlan, serve_shared_stdio

    wait = flags.login_timeout or _DEFAULT_LOGIN_WAIT

    async def prepare(port: int | None) -> WorkloadConfig:
        return await _config_to_host(home, url, name, options, client_token, port, wait)

    plan = HostPlan(
        home,
        name,
        prepare=prepare,
        login=lambda config: _LoginNow(config, options),
        headers=flags.headers,
        wait_for_host=wait + 30.0,
    )
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        from mcpkeeper.net.loop import run as run_loop

        run_loop(serve_shared_stdio(plan))


def _proxy_port(
    home: Path,
    url: str,
    name: str,
    options: LoginOptions,
    flags: McpRemoteFlags,
    port: int | None,
    client_token: bool,
    output: OutputFormat,
) -> None:
    """The workload on a local port, in this process, until Ctrl-C."""
    if WorkloadStore(home).exists(name):
        raise CliError(
            f"{name!r} is a daemon workload; use 'mcpkeeper connect {name}' or pick another --name"
        )
    check_name_free(home, name)
    require_writable_home(home, "foreground/workloads")
    if port is not None:
        check_port_free(home, port)
    from mcpkeeper.cli.stdio_share import host_lock
    from mcpkeeper.state.locks import LockTimeout

    lock = host_lock(home, name)
    try:
        lock.acquire(timeout=0)
    except LockTimeout:
        raise CliError(
            f"{name!r} is served by a running `mcpkeeper proxy --stdio`; pick another --name"
        ) from None
    try:
        remote_url, issuer = _reuse_login(home, name, url, options)
        auth = True  # a reused login has a token
        if remote_url is None:
            result = login_interactively(url, name, options, timeout=flags.login_timeout)
            remote_url, issuer, auth = result.remote_url, result.issuer, result.auth_required
        config = _config(name, remote_url, port or _free_port(home), auth, issuer, options, client_token)
        foreground_store(home).put(config)
        try:
            # Ctrl-C and SIGTERM are the normal way to stop a foreground proxy, not errors.
            with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
                from mcpkeeper.net.loop import run as run_loop

                run_loop(_serve(config, home, login=_LoginNow(config, options), output=output))
        finally:
            foreground_store(home).delete(name)
            StatusStore(home).delete(name)
    finally:
        lock.release()


async def _config_to_host(
    home: Path,
    url: str,
    name: str,
    options: LoginOptions,
    client_token: bool,
    port: int | None,
    wait: float,
) -> WorkloadConfig:
    """The config a stdio host serves: the stored login reused, else a login now (in the loop)."""
    remote_url, issuer = _reuse_login(home, name, url, options)
    auth = True
    if remote_url is None:
        from mcpkeeper.cli.interactive_login import login_in_loop

        result = await login_in_loop(url, name, options, timeout=wait)
        remote_url, issuer, auth = result.remote_url, result.issuer, result.auth_required
    return _config(name, remote_url, port or _free_port(home), auth, issuer, options, client_token)


def _config(
    name: str,
    remote_url: str,
    port: int,
    auth: bool,
    issuer: str | None,
    options: LoginOptions,
    client_token: bool,
) -> WorkloadConfig:
    return WorkloadConfig(
        name=name,
        remote_url=remote_url,
        port=port,
        auth=auth,
        issuer=issuer,
        callback_port=options.callback_port,
        client_auth=client_token,
    )


def _daemon_workload(home: Path, name: str, url: str, *, explicit_name: bool) -> str | None:
    """The daemon workload serving this remote: by name, else (no --name given) by remote URL."""
    workloads = WorkloadStore(home)
    config = workloads.get(name)
    if config is not None:
        if config.remote_url.rstrip("/") != url.rstrip("/"):
            raise CliError(f"daemon workload {name!r} is for {config.remote_url}; pick another --name")
        return name
    if explicit_name:
        return None
    wanted = url.rstrip("/")
    return next((c.name for c in workloads.list() if c.remote_url.rstrip("/") == wanted), None)


def _reuse_login(home: Path, name: str, url: str, options: LoginOptions) -> tuple[str | None, str | None]:
    """(remote URL, issuer) of a stored login for this remote (and resource) that still has a token."""
    from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError

    try:
        stored = CredentialStore.open(home).load(name)
    except CredentialStoreError:
        return None, None
    if stored is None or stored.token is None or stored.remote_url.rstrip("/") != url.rstrip("/"):
        return None, None
    if options.resource is not None and stored.resource != options.resource:
        return None, None
    return stored.remote_url, stored.issuer


def _free_port(home: Path) -> int:
    """A free loopback port that no daemon workload has reserved for itself."""
    from mcpkeeper.net import free_port

    reserved = {config.port for config in WorkloadStore(home).list() if config.port is not None}
    return free_port(avoid=reserved)


class _LoginNow:
    """The foreground's :class:`~mcpkeeper.workloads.reauth.ForegroundLogin`: the same login, right now."""

    def __init__(self, config: WorkloadConfig, options: LoginOptions) -> None:
        self._config = config
        self._options = options

    async def __call__(self, challenge: BearerChallenge | None, scopes: Sequence[str] | None) -> None:
        from mcpkeeper.cli.interactive_login import login_in_loop

        options = replace(self._options, scopes=list(scopes)) if scopes else self._options
        print(f"mcpkeeper: {self._config.remote_url} asks for authorization; logging in", file=sys.stderr)
        await login_in_loop(self._config.remote_url, self._config.name, options, challenge=challenge)


async def _serve(config: WorkloadConfig, home: Path, *, login: ForegroundLogin, output: OutputFormat) -> None:
    """Serve on the local port until Ctrl-C/SIGTERM or the workload failing."""
    from mcpkeeper.cli.connect_cmd import client_headers
    from mcpkeeper.workloads.client_auth import client_auth_required
    from mcpkeeper.workloads.runtime import WorkloadRuntime

    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    async with WorkloadRuntime(config, home=home, login=login) as runtime:
        headers = client_headers(home) if client_auth_required(config.client_auth) else None
        if output is OutputFormat.JSON:
            print_json({"name": config.name, "url": runtime.url, "remote_url": config.remote_url})
            sys.stdout.flush()
        else:
            print(f"{config.name}: serving {runtime.url} -> {config.remote_url} (Ctrl-C to stop)", flush=True)
            if headers is not None:
                print(f"  clients must send 'Authorization: {headers['Authorization']}'", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await runtime.wait_closed()
