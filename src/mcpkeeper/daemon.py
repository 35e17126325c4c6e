"""``mcpkeeper serve``: the daemon hosting the control API and every workload in one loop.

Start-up, in this order, so that a second daemon can never half-start next to a first:

1. take ``run/daemon.lock`` (flock, released by the kernel if we die): one daemon per
   home; losing it exits with :data:`EXIT_ALREADY_RUNNING`;
2. remove a stale socket (one nobody listens on: a daemon killed with ``-9``) and bind
   ``run/daemon.sock`` with mode 0600 before it accepts anyone;
3. write ``run/daemon.pid``, serve the API, then restore every workload whose desired
   state is ``running``, from the stored tokens, without any browser, and serve the
   aggregated MCP endpoint over all of them (vMCP; its URL in ``run/vmcp.json``).

With ``--api 127.0.0.1:PORT`` (or ``MCPKEEPER_API``) the same API is also served on
loopback TCP behind a bearer token, with ``/metrics`` and the dashboard beside it
(:mod:`mcpkeeper.api.http_listener`); a port that is taken fails the start, before any
workload runs.

SIGTERM/SIGINT (or ``POST /shutdown``) stop the API and the vMCP first, then every
workload (their desired state untouched, so the next daemon restores them), then remove
the socket and pid file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from mcpkeeper.aio import first_done, must_finish, owned_tasks
from mcpkeeper.api.app import create_api_app
from mcpkeeper.api.client import EXIT_ALREADY_RUNNING
from mcpkeeper.api.dashboard import DashboardSessions, dashboard_link_route, dashboard_routes
from mcpkeeper.api.events import EventHub
from mcpkeeper.api.http_listener import (
    ApiAddressError,
    BearerGate,
    api_file,
    parse_api_address,
    write_api_file,
)
from mcpkeeper.api.metrics import DaemonMetrics, WorkloadFacts
from mcpkeeper.api.metrics_route import metrics_route
from mcpkeeper.api.paths import (
    daemon_log_path,
    lock_path,
    pid_path,
    run_dir,
    socket_path,
    socket_uses_short_dir,
)
from mcpkeeper.api.socket_dir import UnsafeSocketDirError, prepare_socket_dir
from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.auth.token_client import DEFAULT_TOKEN_TIMEOUT
from mcpkeeper.gateway.access import AllowList
from mcpkeeper.gateway.app import GatewayApp
from mcpkeeper.gateway.inbound import Authenticator, InboundConfigError
from mcpkeeper.gateway.listener import GatewayOptions, open_listener
from mcpkeeper.net import LOOPBACK, InLoopServer, PortInUseError, bind_loopback, bind_unix
from mcpkeeper.net.loop import run as run_loop
from mcpkeeper.proxy.app import create_upstream_client
from mcpkeeper.state._atomic import atomic_write_bytes
from mcpkeeper.state.api_token import ensure_api_token
from mcpkeeper.state.locks import LockTimeout, StateLock
from mcpkeeper.state.paths import ensure_private_dir, state_home
from mcpkeeper.state.store import SharedStore, Store, StoreUnreachableError, StoreURLError, open_store
from mcpkeeper.vmcp.service import VMCPService
from mcpkeeper.workloads.grants import StoreGrantLoader
from mcpkeeper.workloads.log_limits import RepeatLimitedStreamHandler
from mcpkeeper.workloads.login_sessions import LoginSessions
from mcpkeeper.workloads.logs import TokenRedactingFilter, written_to_workload_file
from mcpkeeper.workloads.manager import WorkloadManager

__all__ = ["DaemonAlreadyRunningError", "main", "serve"]

log = logging.getLogger("mcpkeeper.daemon")

_WANTED_FILES = 65536


class DaemonAlreadyRunningError(RuntimeError):
    """Another daemon owns this state directory."""


async def serve(
    home: Path,
    *,
    ready: Callable[[], None] | None = None,
    store_url: str | None = None,
    gateway: GatewayOptions | None = None,
    api_address: str | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT or ``POST /shutdown``; ``ready`` is called once serving.

    ``store_url`` names the state backend (default ``$MCPKEEPER_STORE``, else the files of
    ``home``); ``gateway`` opens the authenticated gateway listener, through which every
    workload is then served (no per-workload loopback ports: replicas may share a host).
    ``api_address`` (``127.0.0.1:PORT``) also serves the control API, ``/metrics`` and the
    dashboard on loopback TCP behind a bearer token.
    """
    api_port = parse_api_address(api_address) if api_address else None
    store = open_store(store_url, home)
    gate = gateway.check() if gateway is not None else None  # a bad setting fails before anything binds
    ensure_private_dir(home)
    ensure_private_dir(run_dir(home))
    ensure_private_dir(daemon_log_path(home).parent)
    lock = StateLock(lock_path(home), timeout=0)
    try:
        lock.acquire()
    except LockTimeout:
        raise DaemonAlreadyRunningError(_already_running_message(home)) from None
    try:
        await store.start()
        try:
            async with owned_tasks() as owned:  # the daemon's own tasks: restore, store follower
                await _serve_locked(owned, home, ready, store, gateway, gate, api_port)
        finally:
            await store.aclose()
    finally:
        lock.release()


async def _serve_locked(
    owned: asyncio.TaskGroup,
    home: Path,
    ready: Callable[[], None] | None,
    store: Store,
    gateway: GatewayOptions | None,
    gate: tuple[Authenticator, AllowList] | None,
    api_port: int | None,
) -> None:
    tcp_sock = bind_loopback(api_port) if api_port is not None else None  # taken: fail before anything
    sock = _bind_control_socket(home)
    atomic_write_bytes(pid_path(home), f"{os.getpid()}\n".encode())
    http = create_upstream_client()  # shared by every workload's refresher and probe
    grants = StoreGrantLoader(home, http=http, store=store)
    events = EventHub()
    # The manager reports to the metrics, which read the manager back at scrape time.
    metrics = DaemonMetrics(lambda: _facts(manager), on_status=events.notify)
    manager = WorkloadManager(
        home,
        grants=grants,
        remove_secrets=grants.forget,
        store=store,
        listen=gateway is None,
        observer=metrics,
    )
    following = _follow_store(store, manager, owned)
    listener = None
    if gateway is not None and gate is not None:
        routes = GatewayApp(*gate, app_for=manager.app_for, known=manager.configs.exists)
        listener = open_listener(gateway, routes)
    logins = LoginSessions(CredentialStore(store.secrets), manager.reload_credentials, http=http)
    stop = asyncio.Event()
    sessions = DashboardSessions(ensure_api_token(home)) if tcp_sock is not None else None
    api_url = f"http://{LOOPBACK}:{tcp_sock.getsockname()[1]}" if tcp_sock is not None else None
    link = dashboard_link_route(sessions, lambda: api_url)

    def api_app(extra: list[BaseRoute]) -> Starlette:
        return create_api_app(
            manager, request_shutdown=stop.set, logins=logins, events=events, extra_routes=[link, *extra]
        )

    server = InLoopServer(api_app([]), sock, name="control-api", lifespan="off")
    tcp: InLoopServer | None = None
    if tcp_sock is not None and sessions is not None:
        gated = BearerGate(api_app([metrics_route(metrics.registry), *dashboard_routes(sessions)]), sessions)
        tcp = InLoopServer(gated, tcp_sock, name="http-api", lifespan="off")
    # The aggregated MCP endpoint over every workload; not in gateway mode, where workloads
    # have no loopback port of their own for it to call.
    vmcp = VMCPService(home, manager) if gateway is None else None
    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT)
    restore: asyncio.Task[None] | None = None
    try:
        for sig in handled:
            loop.add_signal_handler(sig, stop.set)
        if tcp is not None and api_url is not None:  # before the socket answers: clients wait on that
            await tcp.start()
            write_api_file(home, api_url, os.getpid())
            log.info("HTTP API, /metrics and the dashboard on %s (`mcpkeeper dashboard` opens it)", api_url)
        await server.start()
        log.info("mcpkeeper daemon %d serving %s", os.getpid(), socket_path(home))
        if listener is not None and gateway is not None:
            await listener.start()
            scheme = "https" if gateway.tls_cert is not None else "http"
            log.info("gateway listening on %s://%s:%d/<workload>/…", scheme, gateway.host, gateway.port)
        restore = owned.create_task(_restore(manager), name="restore-workloads")
        if vmcp is not None:
            await vmcp.start()  # never raises: the daemon serves its workloads without it
        if ready is not None:
            ready()
        await _until_stopped(stop, server)
    finally:
        log.info("mcpkeeper daemon shutting down")
        for sig in handled:
            loop.remove_signal_handler(sig)
        if listener is not None:
            await listener.stop()
        following.close()
        events.close()  # open event streams and log follows end now, not at the grace timeout
        await server.stop()
        if tcp is not None:
            await tcp.stop()
            api_file(home).unlink(missing_ok=True)
        await logins.aclose()
        if vmcp is not None:
            await vmcp.stop()
        if restore is not None:
            restore.cancel()
            await asyncio.wait({restore})
        await manager.shutdown()
        # A refresh in flight finishes and saves (its callers are gone) before its client closes.
        if await must_finish.wait(DEFAULT_TOKEN_TIMEOUT):
            log.error("a token refresh did not finish before the daemon stopped")
        await http.aclose()
        for path in (socket_path(home), pid_path(home)):
            path.unlink(missing_ok=True)
        if socket_uses_short_dir(home):
            with contextlib.suppress(OSError):  # the per-home directory outside the home, if empty
                socket_path(home).parent.rmdir()
        log.info("mcpkeeper daemon stopped")


async def _until_stopped(stop: asyncio.Event, server: InLoopServer) -> None:
    _, closed = await first_done(stop.wait(), server.wait_closed())
    if closed is not None and not stop.is_set():
        closed.result()
        raise RuntimeError("the control API server stopped unexpectedly")


class _Following:
    """Hands the shared store's changes (another replica's doing) to the manager, in order."""

    def __init__(self, manager: WorkloadManager, owned: asyncio.TaskGroup) -> None:
        self._manager = manager
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._task = owned.create_task(self._run(), name="follow-store")

    def changed(self, kind: str, name: str) -> None:
        self._queue.put_nowait((kind, name))

    async def _run(self) -> None:
        while True:
            kind, name = await self._queue.get()
            try:
                await self._manager.follow(kind, name)
            except Exception as exc:
                log.error("could not follow a change of workload %s (%s): %s", name, kind, exc)

    def close(self) -> None:
        self._task.cancel()


def _follow_store(store: Store, manager: WorkloadManager, owned: asyncio.TaskGroup) -> _Following:
    following = _Following(manager, owned)
    if isinstance(store, SharedStore):
        store.redis.listeners.append(following.changed)
    return following


def _facts(manager: WorkloadManager) -> list[WorkloadFacts]:
    """What a metrics scrape reads of every workload (config files, status files, live monitors)."""
    return [
        WorkloadFacts(config.name, manager.status(config.name), manager.snapshot(config.name))
        for config in manager.list_configs()
    ]


async def _restore(manager: WorkloadManager) -> None:
    """Bring back the workloads meant to run; a failure is logged, the daemon serves on."""
    try:
        await manager.restore()
    except Exception as exc:
        log.error("restoring workloads failed: %s", exc)


def _bind_control_socket(home: Path) -> socket.socket:
    path = prepare_socket_dir(home)  # under <home>/run, or a short private directory if that is too long
    if path.exists() or path.is_symlink():
        if _answers(path):
            raise DaemonAlreadyRunningError(_already_running_message(home))
        log.info("removing stale control socket %s", path)
        path.unlink()
    return bind_unix(path, mode=0o600)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _already_running_message(home: Path) -> str:
    try:
        pid = pid_path(home).read_text().strip()
    except OSError:
        pid = "?"
    return f"another mcpkeeper daemon (pid {pid}) already serves {home}"


def _configure_logging() -> None:
    """Daemon-wide log lines go to stderr (``logs/daemon.log`` when the CLI started us), repeats counted."""
    handler = RepeatLimitedStreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TokenRedactingFilter())
    handler.addFilter(_not_workload_chatter)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("mcpkeeper").setLevel(logging.INFO)


def _not_workload_chatter(record: logging.LogRecord) -> bool:
    """A workload's routine lines are in its own (rotated) log; daemon.log keeps its warnings."""
    return record.levelno >= logging.WARNING or not written_to_workload_file(record)


def _raise_file_limit() -> None:
    """Each workload holds a listening socket, its clients' connections and a log file:
    lift the soft descriptor limit (often 1024) to the hard one so hundreds fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else _WANTED_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, _WANTED_FILES), hard))


def main(
    *, store_url: str | None = None, gateway: GatewayOptions | None = None, api_address: str | None = None
) -> None:
    """Entry point of ``mcpkeeper serve`` (and ``python -m mcpkeeper.daemon``).

    ``api_address`` None reads ``MCPKEEPER_API`` (how a daemon the CLI starts gets one).
    """
    _configure_logging()
    _raise_file_limit()
    address = api_address or os.environ.get("MCPKEEPER_API") or None
    try:
        run_loop(serve(state_home(), store_url=store_url, gateway=gateway, api_address=address))
    except (StoreURLError, InboundConfigError, StoreUnreachableError, ApiAddressError, PortInUseError) as exc:
        print(f"mcpkeeper serve: {exc}", file=sys.stderr)
        sys.exit(1)
    except DaemonAlreadyRunningError as exc:
        print(f"mcpkeeper serve: {exc}", file=sys.stderr)
        sys.exit(EXIT_ALREADY_RUNNING)
    except UnsafeSocketDirError as exc:
        print(f"mcpkeeper serve: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        pass
    with contextlib.suppress(Exception):
        logging.shutdown()


if __name__ == "__main__":
    main()
