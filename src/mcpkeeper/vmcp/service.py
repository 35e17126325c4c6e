"""The daemon's aggregated endpoint: choose its port, serve it, record it in the run file.

The port is stable, so the URL a user configured in a client survives daemon restarts:
``MCPKEEPER_VMCP_PORT`` if set, else the port of the previous run (from
``<home>/run/vmcp.json``) while it is free, else a free port that no workload owns.

The MCP SDK's server and client stacks are imported only in :meth:`VMCPService.start`,
so importing the daemon stays quick.

The endpoint is an extra: if it cannot start (port taken, ...), the reason is logged and
recorded in the run file and the daemon goes on serving every workload without it.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from mcpkeeper.net import PortInUseError, bind_loopback, free_port
from mcpkeeper.state.client_token import ensure_client_token, load_client_token
from mcpkeeper.vmcp.directory import ManagerDirectory
from mcpkeeper.vmcp.runfile import VMCPInfo, read_vmcp_info, write_vmcp_info
from mcpkeeper.vmcp.settings import PORT_ENV, VMCPSettings
from mcpkeeper.workloads.client_auth import client_auth_required
from mcpkeeper.workloads.manager import WorkloadManager

if TYPE_CHECKING:
    from mcpkeeper.vmcp.server import VirtualMCPServer

__all__ = ["VMCPService"]

log = logging.getLogger(__name__)

_FREE_PORT_TRIES = 16


class VMCPService:
    """``await service.start()`` never raises; ``service.url`` is None when it is not served."""

    def __init__(self, home: Path, manager: WorkloadManager, settings: VMCPSettings | None = None) -> None:
        self.home = home
        self._manager = manager
        self._settings = settings or VMCPSettings.from_env()
        self._server: VirtualMCPServer | None = None

    @property
    def url(self) -> str | None:
        return self._server.url if self._server is not None else None

    async def start(self) -> None:
        if not self._settings.enabled:
            previous = read_vmcp_info(self.home)  # its port is kept for when it is enabled again
            self._record(None, previous.port if previous else None, f"disabled ({PORT_ENV}=off)")
            return
        directory = ManagerDirectory(self._manager)
        try:
            sock = self._bind(directory.reserved_ports())
        except OSError as exc:
            self._fail(self._settings.port, f"cannot listen: {exc}")
            return
        from mcpkeeper.vmcp.aggregator import Aggregator
        from mcpkeeper.vmcp.server import VirtualMCPServer
        from mcpkeeper.vmcp.toolstore import ToolStore

        aggregator = Aggregator(
            directory, self._settings, tool_store=ToolStore(self.home), backend_headers=self._backend_headers
        )
        server = VirtualMCPServer(aggregator, sock, client_token=self._required_client_token)
        try:
            await server.start()
        except Exception as exc:  # the daemon serves its workloads without the aggregate
            self._fail(server.port, f"cannot start: {exc}")
            return
        self._server = server
        self._record(server.url, server.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        try:
            await server.stop()
        finally:
            # Keep the port for the next daemon; no pid: nothing serves it now.
            self._record(server.url, server.port, daemon_alive=False)

    def _required_client_token(self) -> str | None:
        """The token clients of the aggregated endpoint must show, while one is required."""
        if client_auth_required(False) or self._manager.client_auth_in_use():
            return ensure_client_token(self.home)
        return None

    def _backend_headers(self) -> dict[str, str]:
        """The client token for the workload proxies that require it (the others drop it)."""
        token = load_client_token(self.home)
        return {"Authorization": f"Bearer {token}"} if token is not None else {}

    def _bind(self, reserved: set[int]) -> socket.socket:
        if self._settings.port is not None:
            return bind_loopback(self._settings.port)
        previous = read_vmcp_info(self.home)
        remembered = previous.port if previous is not None else None
        if remembered is not None and remembered not in reserved:
            try:
                return bind_loopback(remembered)
            except PortInUseError:
                log.warning("vmcp: port %d of the previous run is taken; choosing a new one", remembered)
        for _ in range(_FREE_PORT_TRIES):
            try:
                return bind_loopback(free_port(avoid=reserved))
            except PortInUseError:  # taken between the check and the bind
                continue
        raise OSError("no free loopback port found")

    def _fail(self, port: int | None, reason: str) -> None:
        log.error("vmcp: the aggregated MCP endpoint is not served: %s", reason)
        self._record(None, port, reason)

    def _record(
        self, url: str | None, port: int | None, error: str | None = None, *, daemon_alive: bool = True
    ) -> None:
        try:
            info = VMCPInfo(url=url, port=port, pid=os.getpid() if daemon_alive else None, error=error)
            write_vmcp_info(self.home, info)
        except OSError as exc:
            log.error("vmcp: cannot write %s: %s", self.home / "run" / "vmcp.json", exc)
