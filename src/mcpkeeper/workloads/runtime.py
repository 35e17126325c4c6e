"""One workload, running: token monitor + proxy app + its own loopback HTTP server.

Used by the daemon's manager (many in one loop, under a supervisor) and on its own by
``mcpkeeper proxy URL`` in the foreground::

    async with WorkloadRuntime(config, home=home) as rt:
        print(rt.url)
        await rt.wait_closed()

Start order matters for the status file: the server is listening before the status
says ``running``, and the first status is written *before* the monitor's task exists,
so the monitor's own transitions (auth_retrying, unauthenticated, running again) can
only come after it. A workload that needs no auth runs without a monitor until a login
arrives for it (:meth:`WorkloadRuntime.adopt_login`): the upstream asked for authorization
later, and a person logged in (``login=``, the foreground) or ran ``mcpkeeper login NAME``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from pathlib import Path
from types import TracebackType
from typing import Self

from mcpkeeper.aio import first_done
from mcpkeeper.auth.clock import Clock
from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.monitor import AuthState, MonitoredTokenSource, MonitorSnapshot
from mcpkeeper.auth.protocols import TokenProvider
from mcpkeeper.auth.token import Token
from mcpkeeper.net import InLoopServer, bind_loopback
from mcpkeeper.proxy.app import ProxyApp, create_proxy_app
from mcpkeeper.state.client_token import ensure_client_token
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.workload_store import WorkloadConfig, WorkloadStore
from mcpkeeper.workloads import info
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.grants import Grant, GrantLoader, StoreGrantLoader
from mcpkeeper.workloads.logs import WorkloadLogRouter, workload_context, workload_log_file
from mcpkeeper.workloads.observer import NO_WORKLOAD_OBSERVER, WorkloadObserver
from mcpkeeper.workloads.reauth import ForegroundLogin, WorkloadReauthorizer
from mcpkeeper.workloads.status_gate import StatusGate

__all__ = ["WorkloadRuntime", "local_url"]

log = logging.getLogger("mcpkeeper.workload")

_INITIAL_STATUS = {
    AuthState.FRESH: WorkloadStatus.RUNNING,
    AuthState.RETRYING: WorkloadStatus.AUTH_RETRYING,
    AuthState.DEAD: WorkloadStatus.UNAUTHENTICATED,
}


def local_url(config: WorkloadConfig) -> str | None:
    """The URL MCP clients use for the workload: its loopback port and the remote's path."""
    return info.local_url(config.remote_url, config.port)


class WorkloadRuntime:
    """Runs one workload until :meth:`close`; see the module docstring."""

    def __init__(
        self,
        config: WorkloadConfig,
        *,
        home: Path,
        gate: StatusGate | None = None,
        grants: GrantLoader | None = None,
        retry_config: RetryConfig | None = None,
        clock: Clock | None = None,
        login: ForegroundLogin | None = None,
        listen: bool = True,
        observer: WorkloadObserver = NO_WORKLOAD_OBSERVER,
    ) -> None:
        if config.port is None:
            raise ValueError(f"workload {config.name} has no port assigned")
        self.config = config
        self.home = home
        self.gate = gate or StatusGate(StatusStore(home), config.name)
        self._grants = grants or StoreGrantLoader(home)
        self._retry_config = retry_config or RetryConfig.from_env()
        self._clock = clock
        self._observer = observer
        self._monitor: MonitoredTokenSource | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._app: ProxyApp | None = None
        self._server: InLoopServer | None = None
        self._no_login_reason: str | None = None
        #: The monitor was built without a stored login: its refresher cannot renew anything.
        self._started_without_login = False
        self._closing = False
        self._log_router = WorkloadLogRouter.install()
        #: ``login`` None (the daemon) refuses what needs a person, saying `mcpkeeper login NAME`.
        self._reauthorizer = WorkloadReauthorizer(self, login)
        self._held_scopes: tuple[str, ...] = ()
        #: False for a gateway replica: the workload has no listener of its own, the gateway
        #: routes to :attr:`app` (several replicas on one host cannot share its port).
        self._listen = listen
        self._closed = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def url(self) -> str:
        url = local_url(self.config)
        assert url is not None  # checked in __init__
        return url

    @property
    def app(self) -> ProxyApp | None:
        """The workload's proxy while it runs (what the gateway listener and ``proxy --stdio`` use)."""
        return self._app

    def snapshot(self) -> MonitorSnapshot | None:
        """The monitor's view of the grant (no secrets), None for a workload without auth."""
        return self._monitor.snapshot() if self._monitor is not None else None

    async def start(self) -> None:
        """Listen, then report the first status, then start the monitor.

        Raises :class:`~mcpkeeper.net.PortInUseError` if the port is taken.
        """
        with workload_context(self.name):
            self._log_router.open_file(self.name, workload_log_file(self.home, self.name))
            self.gate.set(WorkloadStatus.STARTING, f"starting the proxy on port {self.config.port}")
            try:
                await self._start()
            except BaseException:
                await self.close(status=None)
                raise

    async def _start(self) -> None:
        assert self.config.port is not None
        sock = bind_loopback(self.config.port) if self._listen else None
        if self.config.auth:
            grant = self._grants.load(self.name)
            if grant.token is None and grant.reason:
                self._no_login_reason = grant.reason
            self._started_without_login = grant.token is None
            self._monitor = self._new_monitor(grant)
        client_token = None
        if self._listen and client_auth_required(self.config.client_auth):
            client_token = ensure_client_token(self.home)  # the gateway authenticates its callers itself
        self._app = create_proxy_app(
            self.config.remote_url,
            self._monitor,
            name=self.name,
            client_token=client_token,
            reauthorizer=self._reauthorizer,
            behind_gateway=not self._listen,
            observer=self._observer.proxy_observer(self.name),
        )
        if sock is not None:
            self._server = InLoopServer(self._app, sock, name=self.name, lifespan="off")
            await self._server.start()
        # No await from here to the task's creation: the first status is on disk before
        # the monitor can report anything.
        if self._monitor is None:
            self.gate.set(WorkloadStatus.RUNNING, "proxying (no authentication)")
        else:
            snap = self._monitor.snapshot()
            reason = self._no_login_reason or snap.reason or "token loaded; proxying"
            self.gate.set(_INITIAL_STATUS[snap.state], reason)
            self._monitor_task = asyncio.create_task(self._monitor.run(), name=f"monitor:{self.name}")
        self.gate.open()
        where = self.url if self._listen else "through the gateway"
        log.info("workload %s serving %s -> %s", self.name, where, self.config.remote_url)

    def _new_monitor(self, grant: Grant) -> MonitoredTokenSource:
        self._held_scopes = grant.scopes
        return MonitoredTokenSource(
            grant.token,
            grant.refresher,
            self.gate,
            config=self._retry_config,
            clock=self._clock,
            probe=grant.probe,
            name=self.name,
            observer=self._observer.monitor_observer(self.name),
        )

    # -- what the reauthorizer needs (workloads.reauth) ----------------------------------
    def current_provider(self) -> TokenProvider | None:
        return self._monitor

    def held_scopes(self) -> tuple[str, ...]:
        return self._held_scopes

    def note_status(self, status: WorkloadStatus | None, reason: str) -> None:
        """A status (or, with None, a new reason for the current one) from the reauthorizer."""
        current = status or self.gate.last
        if current is not None:
            self.gate.report(current, reason)

    def workload_store(self) -> WorkloadStore | None:
        """The daemon's config store when this workload is one of its (the foreground has none)."""
        store = WorkloadStore(self.home)
        return store if store.exists(self.name) else None

    def adopt_login(self) -> TokenProvider | None:
        """Serve the stored login from now on; None when none is stored.

        A workload with a monitor hands it the new token (``relogin``); one without (it
        needed no authorization until now) gets a monitor, which the proxy uses at once.
        """
        grant = self._grants.load(self.name)
        if grant.token is None:
            return None
        if self._monitor is not None:
            self._held_scopes = grant.scopes
            self.relogin(grant.token)
            return self._monitor
        with workload_context(self.name):
            log.info("workload %s: a login arrived; injecting its token from now on", self.name)
        monitor = self._new_monitor(grant)
        self._monitor = monitor
        if self._app is not None:
            self._app.use_provider(monitor)
        self.note_status(WorkloadStatus.RUNNING, "logged in; proxying with the new login")
        task = asyncio.create_task(monitor.run(), name=f"monitor:{self.name}")
        task.add_done_callback(self._monitor_ended)
        self._monitor_task = task
        return monitor

    def _monitor_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.error("workload %s: token monitor failed: %s", self.name, task.exception())

    def relogin(self, token: Token) -> None:
        """A new login was stored: hand its token to the monitor (unauthenticated -> running)."""
        if self._monitor is None:
            return
        with workload_context(self.name):
            log.info("workload %s: new login loaded", self.name)
            self._monitor.relogin(token)

    @property
    def adopts_logins_in_place(self) -> bool:
        """Whether a new login can be handed to the running monitor (:meth:`adopt_login`).

        Not when the monitor started without any login: it holds a refresher that can only
        refuse, so the owner restarts the workload to build one from the new login.
        """
        return not self._started_without_login

    def reload_credentials(self) -> bool:
        """Re-read the stored login and serve it (:meth:`adopt_login`); False when none is stored.

        A workload that needs no authorization and has no login stays as it is (True).
        """
        if self._monitor is None and not self.config.auth and self._grants.load(self.name).token is None:
            return True
        return self.adopt_login() is not None

    async def wait_closed(self) -> None:
        """Return when the runtime was closed; raise if the server or the monitor died first.

        Either ending while nobody asked is a crash for the supervisor to handle.
        """
        waits: list[Awaitable[object]] = [self._closed.wait()]
        if self._server is not None:
            waits.append(self._server.wait_closed())
        if self._monitor_task is not None:
            waits.append(asyncio.shield(self._monitor_task))
        finished = [f for f in await first_done(*waits) if f is not None]
        if self._closing:
            return
        for future in finished:
            future.result()
        if self._monitor_task is not None and self._monitor_task.done():
            raise RuntimeError("the token monitor stopped")
        raise RuntimeError("the proxy server stopped")

    async def close(
        self, status: WorkloadStatus | None = WorkloadStatus.STOPPED, reason: str = "stopped"
    ) -> None:
        """Stop the monitor (no status change) and the server; then record ``status``.

        ``status=None`` writes nothing: the owner reports (a crash, a removal). Closing
        again is a no-op.
        """
        if self._closing:
            return
        self._closing = True
        self._closed.set()
        self.gate.seal()
        if status is not None:
            self.gate.set(WorkloadStatus.STOPPING, "stopping")
        task, self._monitor_task = self._monitor_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # never raises: the caller's own cancellation still reaches it
            if not task.cancelled() and task.exception() is not None:
                log.warning("workload %s: token monitor had failed: %s", self.name, task.exception())
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        app, self._app = self._app, None
        if app is not None:
            await app.aclose()
        if status is not None:
            self.gate.set(status, reason)
        with workload_context(self.name):
            log.info("workload %s stopped", self.name)
        self._log_router.close_file(self.name)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
