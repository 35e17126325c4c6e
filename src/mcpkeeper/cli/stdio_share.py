"""Any number of ``mcpkeeper proxy URL --stdio`` for one remote, sharing one workload and one refresher.

MCP clients that spawn a command start one process per configured server, and often
more (Claude Desktop starts each server twice; two clients configured alike each start
one). Each such process serving its own workload would mean one refresher per process
spending the same rotating refresh token: the second one to refresh kills the grant for
everyone. So the processes for one workload name form a group:

* the **host** (whoever takes ``<home>/locks/<name>.proxy-host.lock``) runs the workload
  in-process (token monitor + local proxy, as ``proxy`` always did) and bridges its own
  stdio to the local URL;
* every other process is an **attacher**: it bridges its stdio to the host's local URL
  (read from the foreground config the host writes) and waits on the host lock;
* **hand-over**: when the host exits (its client closed, or it was killed), the kernel
  releases the lock and one attacher takes it, starts the workload *on the same port*
  and keeps going. The other attachers' bridges never change URL: a request in flight
  during the change gets one JSON-RPC error (the bridge's "proxy unreachable" reply), the
  next one is served by the new host. The upstream MCP session is the remote's, so it
  carries on.

The port must outlive a host while attachers point at it. Attachers hold a *shared*
flock on ``<name>.proxy-clients.lock`` for their whole life; a host that exits removes
the foreground config (the port) only when it can take that lock *exclusively*, i.e.
when nobody is attached, and keeps it otherwise so the next host reuses the port. Both
locks are released by the kernel when a process dies, so a crash never leaves a group
stuck. An attacher takes its shared lock before reading the config; the exiting host
holds the exclusive one while it deletes, so an attacher can never read a port that is
about to be forgotten.

When a daemon workload already serves the remote (``mcpkeeper run``), the process
attaches to it as ``mcpkeeper connect`` does, and the daemon's refresher is the one.

Why hand-over rather than always attaching to the daemon: a command a client spawns
should live and die with that client, as mcp-remote does, and leave no background
service behind unless the user asked for one; the first process logs in with a browser
when the remote needs it, later too (a 401 after ``initialize``, a 403 asking for more
scopes), which the daemon never does; and a private ``MCPKEEPER_HOME`` (the conformance
suite, a test) stays self-contained. See the README for the user's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from mcpkeeper.cli.connect_cmd import client_headers
from mcpkeeper.cli.errors import CliError
from mcpkeeper.cli.foreground import foreground_store
from mcpkeeper.net.sockets import PortInUseError, bind_loopback
from mcpkeeper.state.locks import StateLock
from mcpkeeper.state.paths import ensure_private_dir
from mcpkeeper.state.status_store import StatusStore
from mcpkeeper.state.workload_store import WorkloadConfig
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.info import local_url
from mcpkeeper.workloads.reauth import ForegroundLogin

if TYPE_CHECKING:
    from mcpkeeper.proxy.app import ProxyApp
    from mcpkeeper.workloads.runtime import WorkloadRuntime

_fcntl: ModuleType | None
try:
    import fcntl as _fcntl
except ImportError:  # Windows: no shared flocks; each host forgets its port (no hand-over of it)
    _fcntl = None

__all__ = ["HostPlan", "host_lock", "serve_shared_stdio"]

#: How often an attacher looks at the host lock and the config while waiting.
_POLL = 0.05
#: Binding the port a previous host used: it closed it before releasing the lock, so this
#: only covers another program grabbing the port meanwhile.
_REBIND_TIMEOUT = 3.0
#: An attacher waits this long past the login timeout for the host to serve.
_HOST_GRACE = 30.0


@dataclass(frozen=True, slots=True)
class HostPlan:
    """What a process needs to host the workload when its turn comes."""

    home: Path
    name: str
    #: Builds the config to host (logging in first if needed); ``port`` is the one to reuse.
    prepare: Callable[[int | None], Awaitable[WorkloadConfig]]
    login: Callable[[WorkloadConfig], ForegroundLogin]
    #: Headers the bridge sends with every request (``--header``), beside the client token.
    headers: dict[str, str] = field(default_factory=dict)
    #: How long an attacher waits for a host that is logging in.
    wait_for_host: float = 300.0 + _HOST_GRACE
    #: The workload's proxy app while this process hosts it: our own bridge hands its
    #: requests to it directly, no socket (attachers go through the host's port).
    hosted: _Hosted = field(default_factory=lambda: _Hosted())


class _Hosted:
    """Which proxy app this process hosts right now (None: it only attaches)."""

    def __init__(self) -> None:
        self.app: ProxyApp | None = None

    def __call__(self) -> ProxyApp | None:
        return self.app


def host_lock(home: Path, name: str) -> StateLock:
    """The lock whose holder runs ``name``'s workload (any foreground ``proxy``); waits without limit
    unless a call says otherwise (``acquire(timeout=0)`` tries once)."""
    return StateLock(home / "locks" / f"{name}.proxy-host.lock", timeout=None)


def _clients_lock_path(home: Path, name: str) -> Path:
    return home / "locks" / f"{name}.proxy-clients.lock"


async def serve_shared_stdio(plan: HostPlan) -> None:
    """Host or attach (see the module docstring) until our stdin closes or a signal comes."""
    main_task = asyncio.current_task()
    assert main_task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    lock = host_lock(plan.home, plan.name)
    if await _try(lock):
        await _host_from_start(plan, lock)
        return
    with _Attached(_clients_lock_path(plan.home, plan.name)) as attached:
        await attached.registered()
        config = await _wait_for_host(plan, lock)
        if config is None:  # the host went away before serving: our turn, from the start
            attached.leave()
            await _host_from_start(plan, lock)
            return
        await _attach(plan, lock, config, attached)


async def _host_from_start(plan: HostPlan, lock: StateLock) -> None:
    """We hold the host lock and no bridge runs yet: prepare, serve, bridge our stdio."""
    try:
        config = await plan.prepare(_port_to_reuse(plan))
        foreground_store(plan.home).put(config)  # attachers waiting for a host read it
        bridge = asyncio.ensure_future(_bridge(plan, config))
        await _host(plan, config, bridge)
    finally:
        _leave_host(plan)
        lock.release()


async def _attach(plan: HostPlan, lock: StateLock, config: WorkloadConfig, attached: _Attached) -> None:
    """Bridge to the host; take over when the host lock comes free, until our stdin closes."""
    bridge = asyncio.ensure_future(_bridge(plan, config))
    takeover = asyncio.ensure_future(lock.acquire_async(timeout=None))
    try:
        await asyncio.wait({bridge, takeover}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        for task in (bridge, takeover):
            task.cancel()
        raise
    if bridge.done():
        takeover.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await takeover
        lock.release()  # in case it was taken in the same instant
        bridge.result()
        return
    takeover.result()  # the lock is ours (an error taking it ends this process)
    print(f"mcpkeeper: {plan.name}: taking over the workload on port {config.port}", file=sys.stderr)
    attached.leave()  # a host is not an attacher: its own exit decides about the port
    try:
        await _host(plan, config, bridge)
    finally:
        _leave_host(plan)
        lock.release()


async def _host(plan: HostPlan, config: WorkloadConfig, bridge: asyncio.Future[None]) -> None:
    """Run the workload on ``config.port`` until ``bridge`` (our own stdio) ends or the workload dies."""
    from mcpkeeper.aio import first_done

    try:
        runtime = await _started(plan, config)
    except BaseException:
        bridge.cancel()
        raise
    foreground_store(plan.home).put(config)  # ours now (a takeover rewrites the same)
    plan.hosted.app = runtime.app
    try:
        for finished in await first_done(bridge, runtime.wait_closed()):
            if finished is not None:
                finished.result()  # re-raise what the bridge or the workload died of
    finally:
        plan.hosted.app = None
        bridge.cancel()
        await runtime.close(status=None)


async def _started(plan: HostPlan, config: WorkloadConfig) -> WorkloadRuntime:
    """The workload, serving on ``config.port``; the port may take a moment to come free after
    the previous host, and a runtime that failed to start is closed, so each try is a new one."""
    from mcpkeeper.workloads.runtime import WorkloadRuntime

    loop = asyncio.get_running_loop()
    deadline = loop.time() + _REBIND_TIMEOUT
    while True:
        runtime = WorkloadRuntime(config, home=plan.home, login=plan.login(config))
        try:
            await runtime.start()
            return runtime
        except PortInUseError:
            if loop.time() > deadline:
                raise CliError(
                    f"port {config.port} of {config.name} is taken by another program; "
                    "the clients bridged to it cannot be moved"
                ) from None
            await asyncio.sleep(_POLL)


async def _bridge(plan: HostPlan, config: WorkloadConfig) -> None:
    """Our stdin/stdout, bridged to the workload's local URL (through the bridge's public function)."""
    from mcpkeeper.proxy.stdio_bridge import run_stdio_bridge

    url = local_url(config.remote_url, config.port)
    assert url is not None
    headers = dict(plan.headers)
    if client_auth_required(config.client_auth):
        headers.update(client_headers(plan.home))
    await run_stdio_bridge(url, headers=headers, app=plan.hosted)


async def _wait_for_host(plan: HostPlan, lock: StateLock) -> WorkloadConfig | None:
    """The host's config once its proxy accepts connections; None when we got the host lock instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + plan.wait_for_host
    while loop.time() < deadline:
        if await _try(lock):
            return None
        config = foreground_store(plan.home).get(plan.name)
        if config is not None and config.port is not None and await _accepts(config.port):
            return config
        await asyncio.sleep(_POLL)
    raise CliError(
        f"the mcpkeeper proxy hosting {plan.name} did not start serving within {plan.wait_for_host:g}s"
    )


def _port_to_reuse(plan: HostPlan) -> int | None:
    """The port the last host left for its attachers (or a crashed host left behind).

    Attachers may be bridged to it: it must be this one. When it is taken by another
    program and nobody is attached, a new one is as good.
    """
    config = foreground_store(plan.home).get(plan.name)
    if config is None or config.port is None:
        return None
    try:
        bind_loopback(config.port).close()
    except PortInUseError:
        return None if _nobody_attached(plan, forget=False) else config.port
    return config.port


def _leave_host(plan: HostPlan) -> None:
    """Forget the config and status when nobody is attached; else keep the port for the next host."""
    _nobody_attached(plan, forget=True)


def _nobody_attached(plan: HostPlan, *, forget: bool) -> bool:
    """Whether no attacher holds the clients lock; with ``forget``, then delete config and status
    while holding it exclusively (no attacher can read the config in between)."""
    path = _clients_lock_path(plan.home, plan.name)
    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if _fcntl is not None:
            try:
                _fcntl.flock(fd, _fcntl.LOCK_EX | _fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # attached clients: the port stays theirs
        if forget:
            foreground_store(plan.home).delete(plan.name)
            StatusStore(plan.home).delete(plan.name)
        return True
    finally:
        os.close(fd)  # releases the exclusive lock, if taken


class _Attached:
    """A shared flock on the clients lock, held while we are an attacher (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def __enter__(self) -> _Attached:
        ensure_private_dir(self._path.parent)
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self

    async def registered(self) -> None:
        """Take the shared lock; a host holds the exclusive one only while it deletes the config."""
        assert self._fd is not None
        if _fcntl is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _REBIND_TIMEOUT
        while loop.time() < deadline:
            try:
                _fcntl.flock(self._fd, _fcntl.LOCK_SH | _fcntl.LOCK_NB)
                return
            except BlockingIOError:
                await asyncio.sleep(_POLL)
        raise CliError(f"{self._path} stayed locked for {_REBIND_TIMEOUT:g}s; try again")

    def leave(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __exit__(self, *exc_info: object) -> None:
        self.leave()


async def _try(lock: StateLock) -> bool:
    """Take ``lock`` if it is free, at once."""
    from mcpkeeper.state.locks import LockTimeout

    try:
        await lock.acquire_async(timeout=0)
    except LockTimeout:
        return False
    return True


async def _accepts(port: int) -> bool:
    """Whether something listens on ``127.0.0.1:port`` (the host's proxy, once it started)."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
