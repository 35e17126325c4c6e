"""Every workload of the daemon: lifecycle, restarts, and what is written where.

The manager is the daemon's only writer of workload configs and statuses. Each running
workload is a supervisor task (:mod:`.supervisor`) whose body runs one
:class:`~.runtime.WorkloadRuntime` until asked to stop; a crash is restarted with
back-off and ends in ``error`` after too many.

Two states are kept apart on purpose: the *desired* state (``desired_state`` in the
config, what the user last asked for: start/stop) and the *status* (what is happening).
A daemon shutdown stops every workload without touching the desired state, so the next
daemon brings back exactly what was running, with the stored tokens and no browser.

Operations on one workload are serialised by a per-name lock; ports are assigned under
a global lock so two creations cannot pick the same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.types import ASGIApp

from mcpkeeper.aio import first_done
from mcpkeeper.auth.clock import Clock
from mcpkeeper.auth.config import RetryConfig
from mcpkeeper.auth.monitor import MonitorSnapshot
from mcpkeeper.auth.token import Token
from mcpkeeper.net import PortInUseError, bind_loopback, free_port
from mcpkeeper.state.history import Transition
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.remote_url import InvalidRemoteUrlError
from mcpkeeper.state.status_store import StatusRecord
from mcpkeeper.state.statuses import WorkloadStatus
from mcpkeeper.state.store import FileStore, StatusRecords, Store, WorkloadConfigs
from mcpkeeper.state.workload_store import CorruptStateError, WorkloadConfig, WorkloadListing
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.errors import InvalidWorkloadError, WorkloadExistsError, WorkloadNotFoundError
from mcpkeeper.workloads.grants import GrantLoader, StoreGrantLoader
from mcpkeeper.workloads.logs import remove_workload_logs
from mcpkeeper.workloads.observer import NO_WORKLOAD_OBSERVER, WorkloadObserver
from mcpkeeper.workloads.runtime import WorkloadRuntime
from mcpkeeper.workloads.status_gate import StatusGate
from mcpkeeper.workloads.supervisor import RestartPolicy, Supervisor

__all__ = ["WorkloadManager"]

log = logging.getLogger(__name__)

#: A first start that takes longer than this (binding a port, starting uvicorn) is reported as failed.
_FIRST_START_TIMEOUT = 15.0

RuntimeFactory = Callable[..., WorkloadRuntime]


def _new_future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


@dataclass(eq=False)
class _Slot:
    """One running (or restarting) workload."""

    config: WorkloadConfig
    gate: StatusGate
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    first_start: asyncio.Future[None] = field(default_factory=_new_future)
    runtime: WorkloadRuntime | None = None
    task: asyncio.Task[None] | None = None
    #: When the current runtime started serving (ToolHive's ``started_at``: changes on restart).
    started_at: datetime | None = None


class WorkloadManager:
    """Creates, starts, stops, restarts and removes workloads; see the module docstring."""

    def __init__(
        self,
        home: Path,
        *,
        grants: GrantLoader | None = None,
        retry_config: RetryConfig | None = None,
        clock: Clock | None = None,
        restart_policy: RestartPolicy | None = None,
        remove_secrets: Callable[[str], None] | None = None,
        store: Store | None = None,
        listen: bool = True,
        observer: WorkloadObserver = NO_WORKLOAD_OBSERVER,
    ) -> None:
        self.home = home
        self.observer = observer
        store = store or FileStore(home)
        self.configs: WorkloadConfigs = store.workloads
        self.statuses: StatusRecords = store.statuses
        self._grants = grants or StoreGrantLoader(home, store=store)
        #: False in gateway mode: workloads are served through the gateway listener only.
        self._listen = listen
        self._retry_config = retry_config or RetryConfig.from_env()
        self._clock = clock
        self._policy = restart_policy or RestartPolicy()
        self._remove_secrets = remove_secrets
        #: Other replicas serve the same workloads: stopping this one writes no status.
        self._shared = store.shared
        self._slots: dict[str, _Slot] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._create_lock = asyncio.Lock()
        self._closed = False

    # ------------------------------------------------------------------ queries --
    def config(self, name: str) -> WorkloadConfig:
        try:
            config = self.configs.get(_checked(name))
        except CorruptStateError as exc:  # moved aside by the store; the message says where
            raise InvalidWorkloadError(str(exc)) from None
        if config is None:
            raise WorkloadNotFoundError(name)
        return config

    def list_configs(self) -> list[WorkloadConfig]:
        return self.configs.list()

    def client_auth_in_use(self) -> bool:
        """Whether a workload that runs now requires the client token (then so does the vMCP)."""
        return any(client_auth_required(slot.config.client_auth) for slot in self._slots.values())

    def scan_configs(self) -> WorkloadListing:
        """Every readable config, and every unreadable one not yet dealt with (see ``rm``)."""
        return self.configs.scan()

    def status(self, name: str) -> StatusRecord | None:
        return self.statuses.get(name)

    def history(self, name: str) -> list[Transition]:
        return self.statuses.history(name)

    def snapshot(self, name: str) -> MonitorSnapshot | None:
        slot = self._slots.get(name)
        runtime = slot.runtime if slot is not None else None
        return runtime.snapshot() if runtime is not None else None

    def started_at(self, name: str) -> datetime | None:
        """When the workload's proxy last started serving; None while it is not running."""
        slot = self._slots.get(name)
        return slot.started_at if slot is not None and slot.runtime is not None else None

    def stored_token(self, name: str) -> Token | None:
        """The stored login's token (for facts shown while no monitor runs)."""
        return self._grants.load(name).token

    def is_active(self, name: str) -> bool:
        return name in self._slots

    def app_for(self, name: str) -> ASGIApp | None:
        """The proxy of a running workload (the gateway routes to it), None if it is not running."""
        slot = self._slots.get(name)
        runtime = slot.runtime if slot is not None else None
        return runtime.app if runtime is not None else None

    async def follow(self, kind: str, name: str) -> None:
        """Another replica changed ``name`` in the shared store: converge on what it says.

        A new or changed config starts (or stops) the workload as its desired state says;
        a deleted one is stopped; a new login is handed to the running monitor.
        """
        if self._closed:
            return
        if kind == "deleted":
            async with self._lock(name):
                await self._halt(name, None, "")
            return
        if kind == "login":
            with contextlib.suppress(WorkloadNotFoundError, InvalidWorkloadError):
                slot = self._slots.get(name)
                if slot is not None and slot.runtime is not None:
                    slot.runtime.reload_credentials()
            return
        config = self.configs.get(name)
        if config is None:
            return
        async with self._lock(name):
            running = name in self._slots
            if config.desired_state == "running" and not running:
                await self._launch(config)
            elif config.desired_state != "running" and running:
                await self._halt(name, None, "")

    # ---------------------------------------------------------------- lifecycle --
    async def restore(self) -> None:
        """Bring back every workload whose desired state is ``running`` (no login, no browser).

        Workloads the user stopped stay stopped; a status left ``running`` by a daemon
        that died is corrected to ``stopped`` for them.
        """
        listing = self.configs.scan()
        for corrupt in listing.corrupted:
            self.statuses.set(corrupt.name, WorkloadStatus.ERROR, f"config {corrupt.describe()}")
        wanted = [config for config in listing.configs if config.desired_state == "running"]
        for config in listing.configs:
            if config.desired_state != "running":
                self._settle_stopped(config.name)
        starts = [self.start(config.name) for config in wanted]
        results = await asyncio.gather(*starts, return_exceptions=True)
        for config, result in zip(wanted, results, strict=True):
            if isinstance(result, Exception):
                log.error("could not restore workload %s: %s", config.name, result)
            elif isinstance(result, BaseException):
                raise result

    def _settle_stopped(self, name: str) -> None:
        record = self.statuses.get(name)
        if record is None or record.status not in (WorkloadStatus.STOPPED, WorkloadStatus.ERROR):
            self.statuses.set(name, WorkloadStatus.STOPPED, "stopped by the user")

    async def create(
        self,
        name: str,
        remote_url: str,
        *,
        port: int | None = None,
        auth: bool = True,
        client_auth: bool = False,
    ) -> WorkloadConfig:
        """Save a new workload and start it. Its port is fixed now and kept for good."""
        name = _checked(name)
        async with self._create_lock:
            if self.configs.exists(name):
                raise WorkloadExistsError(name)
            chosen = self._choose_port(name, port)
            try:
                # Issuer and client of the stored login are kept for display (no secrets).
                grant = self._grants.load(name) if auth else None
                config = WorkloadConfig(
                    name=name,
                    remote_url=remote_url,
                    port=chosen,
                    auth=auth,
                    client_auth=client_auth,
                    issuer=grant.issuer if grant is not None else None,
                    client_id=grant.client_id if grant is not None else None,
                    resource=grant.resource if grant is not None else None,
                )
            except InvalidRemoteUrlError as exc:
                raise InvalidWorkloadError(f"invalid remote_url: {exc}") from None
            except ValueError as exc:  # WorkloadConfig's own checks (state/_schema.py)
                raise InvalidWorkloadError(str(exc)) from None
            self.configs.put(config)
        log.info("created workload %s -> %s on port %s", name, remote_url, chosen)
        await self.start(name)
        return self.config(name)

    def _choose_port(self, name: str, requested: int | None) -> int:
        taken = {c.port: c.name for c in self.configs.list() if c.port is not None}
        if requested is None:
            return free_port(avoid=set(taken))
        if not 1 <= requested <= 65535:
            raise InvalidWorkloadError(f"port {requested} is not a valid TCP port")
        if requested in taken:
            raise InvalidWorkloadError(f"port {requested} is already used by workload {taken[requested]!r}")
        try:
            bind_loopback(requested).close()
        except PortInUseError as exc:
            raise InvalidWorkloadError(str(exc)) from None
        return requested

    async def start(self, name: str) -> None:
        """Set the desired state to ``running`` and start the workload if it is not."""
        async with self._lock(name):
            config = self._set_desired(name, "running")
            if name in self._slots:
                return
            await self._launch(config)

    async def stop(self, name: str) -> None:
        """Set the desired state to ``stopped`` and stop the workload."""
        async with self._lock(name):
            self._set_desired(name, "stopped")
            await self._halt(name, WorkloadStatus.STOPPED, "stopped by the user")
            self._settle_stopped(name)

    async def restart(self, name: str) -> None:
        async with self._lock(name):
            config = self._set_desired(name, "running")
            await self._halt(name, None, "")
            await self._launch(config)

    async def remove(self, name: str) -> None:
        """Stop the workload and forget it: config, status, history, log and stored secrets."""
        name = _checked(name)  # a bad name is the caller's mistake (400), not a crash
        async with self._lock(name):
            with contextlib.suppress(InvalidWorkloadError):  # unreadable: rm is how the user deals with it
                self.config(name)
            self.statuses.set(name, WorkloadStatus.REMOVING, "removing")
            await self._halt(name, None, "")
            self.configs.delete(name)
            self.configs.discard_quarantined(name)
            self.statuses.delete(name)
            remove_workload_logs(self.home, name)
            self.observer.forget(name)
            if self._remove_secrets is not None:
                self._remove_secrets(name)
        self._locks.pop(name, None)
        log.info("removed workload %s", name)

    async def reload_credentials(self, name: str) -> bool:
        """Hand a freshly stored login to the running monitor; False if none is stored.

        A workload that needed no authorization until the remote asked for it becomes an
        authenticated one: its config says so from now on (and forgets the challenge).
        """
        async with self._lock(name):
            config = self.config(name)
            grant = self._grants.load(name)
            if grant.token is not None and (not config.auth or config.auth_challenge is not None):
                self.configs.put(
                    config.replace(
                        auth=True,
                        auth_challenge=None,
                        issuer=grant.issuer,
                        client_id=grant.client_id,
                        resource=grant.resource,
                    )
                )
            slot = self._slots.get(name)
            if slot is None or slot.runtime is None:
                return True  # the next start reads the store anyway
            if grant.token is not None and not slot.runtime.adopts_logins_in_place:
                # Started without a login: its monitor cannot renew one; a restart builds it anew.
                await self._halt(name, None, "")
                await self._launch(self.config(name))
                return True
            return slot.runtime.reload_credentials()

    async def shutdown(self) -> None:
        """Stop every workload, leaving desired states alone (the next daemon restores them)."""
        self._closed = True
        reason = "daemon shut down; restored when it starts again"
        status = None if self._shared else WorkloadStatus.STOPPED
        await asyncio.gather(
            *(self._halt(name, status, reason) for name in list(self._slots)),
            return_exceptions=True,
        )

    # ---------------------------------------------------------------- internals --
    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def _set_desired(self, name: str, desired: str) -> WorkloadConfig:
        config = self.config(name)
        if config.desired_state != desired:
            config = config.replace(desired_state=desired)
            self.configs.put(config)
        return config

    async def _launch(self, config: WorkloadConfig) -> None:
        """Start the supervisor task and wait for its first start (or first crash)."""
        if self._closed:
            raise InvalidWorkloadError("the daemon is shutting down")
        if config.port is None:  # a config written by hand: pick its port once, for good
            config = config.replace(port=self._choose_port(config.name, None))
            self.configs.put(config)
        gate = StatusGate(self.statuses, config.name, on_change=self.observer.status_changed)
        slot = _Slot(config=config, gate=gate)
        events = _SlotEvents(slot.gate, config.name)
        supervisor = Supervisor(
            lambda: self._run_once(slot),
            events,
            stop_requested=slot.stop_requested,
            policy=self._policy,
            clock=self._clock,
            name=config.name,
        )
        self._slots[config.name] = slot
        slot.task = asyncio.create_task(self._supervise(slot, supervisor), name=f"workload:{config.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FIRST_START_TIMEOUT):
                await asyncio.shield(slot.first_start)

    async def _supervise(self, slot: _Slot, supervisor: Supervisor) -> None:
        try:
            await supervisor.run()
        finally:
            _settle(slot.first_start)
            if self._slots.get(slot.config.name) is slot:
                del self._slots[slot.config.name]

    async def _run_once(self, slot: _Slot) -> None:
        runtime = WorkloadRuntime(
            slot.config,
            home=self.home,
            gate=slot.gate,
            grants=self._grants,
            retry_config=self._retry_config,
            clock=self._clock,
            listen=self._listen,
            observer=self.observer,
        )
        try:
            await runtime.start()
        finally:
            _settle(slot.first_start)
        slot.runtime = runtime
        slot.started_at = datetime.now(UTC)
        try:
            _, closed = await first_done(slot.stop_requested.wait(), runtime.wait_closed())
            if closed is not None:
                closed.result()  # a crash: raises for the supervisor
        finally:
            slot.runtime = None
            await runtime.close(status=None)

    async def _halt(self, name: str, status: WorkloadStatus | None, reason: str) -> None:
        """Stop the workload's supervisor and runtime; record ``status`` if given."""
        slot = self._slots.get(name)
        if slot is None:
            if status is not None and self.statuses.get(name) is not None:
                self.statuses.set(name, status, reason)
            return
        slot.gate.seal()
        if status is not None:
            slot.gate.set(WorkloadStatus.STOPPING, "stopping")
        slot.stop_requested.set()
        if slot.task is not None:
            await asyncio.wait({slot.task})
        if status is not None:
            slot.gate.set(status, reason)


class _SlotEvents:
    """Turns supervisor events into statuses."""

    def __init__(self, gate: StatusGate, name: str) -> None:
        self._gate = gate
        self._name = name

    def crashed(self, reason: str, restart_in: float, crashes: int, limit: int) -> None:
        self._gate.seal()
        self._gate.set(
            WorkloadStatus.UNHEALTHY,
            f"failed: {reason}; restarting in {restart_in:g}s (attempt {crashes}/{limit})",
        )

    def gave_up(self, reason: str, crashes: int) -> None:
        self._gate.seal()
        self._gate.set(
            WorkloadStatus.ERROR,
            f"failed {crashes} times in a row, last: {reason}; "
            f"see `mcpkeeper logs {self._name}`, then `mcpkeeper restart {self._name}`",
        )


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _checked(name: str) -> str:
    try:
        return validate_name(name)
    except ValueError as exc:
        raise InvalidWorkloadError(str(exc)) from None
