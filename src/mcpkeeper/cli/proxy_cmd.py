"""``mcpkeeper proxy URL``: one workload in the foreground, no daemon (mcp-remote style).

The same :class:`~mcpkeeper.workloads.runtime.WorkloadRuntime` the daemon uses, in this
process: token monitor, proxy, status in the shared status store (so ``list`` shows it),
log in ``<home>/logs/<name>.log``. With ``--stdio`` the MCP stream is our stdin/stdout
(for clients that spawn a command) and every human word goes to stderr.

A stored login for the same remote is reused (refreshed as needed, no browser); without
one the browser login runs first. A person started this proxy, so when the remote asks
for authorization later (a 401 after ``initialize``, a 403 asking for more scopes) the
login runs then, with the same options, and the request is replayed
(:mod:`mcpkeeper.workloads.reauth`). When the proxy ends, its foreground registration and
status are removed; the login stays for next time.
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

from mcpkeeper.cli._options import CallbackPortOpt, checked_name, checked_remote_url, require_writable_home
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.foreground import foreground_store
from mcpkeeper.cli.interactive_login import (
    ClientIdOpt,
    ClientMetadataUrlOpt,
    ClientSecretOpt,
    DeviceOpt,
    Grant,
    GrantOpt,
    LoginOptions,
    NoBrowserOpt,
    PrivateKeyOpt,
    ScopeOpt,
    login_interactively,
    login_options,
)
from mcpkeeper.cli.login_cmd import default_workload_name
from mcpkeeper.cli.run_cmd import (
    ClientTokenOpt,
    NameOpt,
    PortOpt,
    RemoteUrlArg,
    check_name_free,
    check_port_free,
)
from mcpkeeper.state.paths import state_home
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore

if TYPE_CHECKING:
    from mcpkeeper.auth.www_authenticate import BearerChallenge
    from mcpkeeper.workloads.reauth import ForegroundLogin

__all__ = ["proxy"]


def proxy(
    url: RemoteUrlArg,
    name: NameOpt = None,
    stdio: Annotated[
        bool, typer.Option("--stdio", help="Serve MCP on stdin/stdout instead of printing a local URL.")
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
) -> None:
    """Run one workload in the foreground, without the daemon (Ctrl-C stops it)."""
    if stdio and port is not None:
        raise CliError("--stdio and --port exclude each other", ExitCode.USAGE)
    home = state_home()
    checked_remote_url(url)
    chosen = checked_name(name) if name else default_workload_name(url)
    if WorkloadStore(home).exists(chosen):
        raise CliError(
            f"{chosen!r} is a daemon workload; use 'mcpkeeper connect {chosen}' or pick another --name"
        )
    check_name_free(home, chosen)
    require_writable_home(home, "foreground/workloads")
    if port is not None:
        check_port_free(home, port)
    options = login_options(
        callback_port,
        client_id,
        client_secret,
        scopes,
        no_browser,
        grant,
        private_key,
        client_metadata_url,
        device,
    )
    remote_url, issuer = _reuse_login(home, chosen, url)
    auth = True  # a reused login has a token
    if remote_url is None:
        result = login_interactively(url, chosen, options)
        remote_url, issuer, auth = result.remote_url, result.issuer, result.auth_required
    config = WorkloadConfig(
        name=chosen,
        remote_url=remote_url,
        port=port or _free_port(home),
        auth=auth,
        issuer=issuer,
        callback_port=callback_port,
        client_auth=client_token,
    )
    foreground_store(home).put(config)
    try:
        # Ctrl-C and SIGTERM are the normal way to stop a foreground proxy, not errors.
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            from mcpkeeper.net.loop import run as run_loop

            run_loop(_serve(config, home, stdio=stdio, login=_LoginNow(config, options)))
    finally:
        foreground_store(home).delete(chosen)
        StatusStore(home).delete(chosen)


def _reuse_login(home: Path, name: str, url: str) -> tuple[str | None, str | None]:
    """(remote URL, issuer) of a stored login for this remote that still has a token, else (None, None)."""
    from mcpkeeper.auth.credentials import CredentialStore, CredentialStoreError

    try:
        stored = CredentialStore.open(home).load(name)
    except CredentialStoreError:
        return None, None
    if stored is None or stored.token is None or stored.remote_url.rstrip("/") != url.rstrip("/"):
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


async def _serve(config: WorkloadConfig, home: Path, *, stdio: bool, login: ForegroundLogin) -> None:
    """Run until Ctrl-C/SIGTERM, the end of stdin (``--stdio``), or the workload failing."""
    from mcpkeeper.workloads.aio import first_done
    from mcpkeeper.workloads.runtime import WorkloadRuntime

    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    from mcpkeeper.cli.connect_cmd import client_headers
    from mcpkeeper.workloads.client_auth import client_auth_required

    async with WorkloadRuntime(config, home=home, login=login) as runtime:
        headers = client_headers(home) if client_auth_required(config.client_auth) else None
        if stdio:
            print(f"mcpkeeper: {config.name} bridging stdio to {runtime.url}", file=sys.stderr)
            for finished in await first_done(_bridge(runtime.url, headers), runtime.wait_closed()):
                if finished is not None:
                    finished.result()  # re-raise what the bridge or the workload died of
        else:
            print(f"{config.name}: serving {runtime.url} -> {config.remote_url} (Ctrl-C to stop)", flush=True)
            if headers is not None:
                print(f"  clients must send 'Authorization: {headers['Authorization']}'", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await runtime.wait_closed()


async def _bridge(url: str, headers: dict[str, str] | None) -> None:
    from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

    await run_stdio_bridge(url, headers=headers)
