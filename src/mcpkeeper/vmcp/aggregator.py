"""tools/list and tools/call over every workload: the vMCP's logic, without HTTP.

tools/list refreshes the lists that need it (:mod:`.catalog`), concurrently and each
bounded, then returns every listed workload's tools. tools/call finds the backend tool
behind the exposed name, asks :mod:`.policy` whether to forward, and forwards through
the workload's :class:`~.backend.BackendConnection`. Whatever goes wrong with one
backend becomes a tool error for that call; nothing a backend does can break the
aggregate session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcpkeeper.vmcp.backend import BackendConnection, BackendError
from mcpkeeper.vmcp.catalog import ToolCatalog
from mcpkeeper.vmcp.policy import behaviour_of
from mcpkeeper.vmcp.results import refusal, tool_error
from mcpkeeper.vmcp.settings import VMCPSettings
from mcpkeeper.vmcp.toolstore import ToolStore
from mcpkeeper.vmcp.view import WorkloadDirectory, WorkloadView

__all__ = ["Aggregator"]

log = logging.getLogger(__name__)


class Aggregator:
    """See the module docstring."""

    def __init__(
        self,
        directory: WorkloadDirectory,
        settings: VMCPSettings | None = None,
        *,
        tool_store: ToolStore | None = None,
        backend_headers: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self._directory = directory
        self._backend_headers = backend_headers  # the client token, for proxies that require it
        self._settings = settings or VMCPSettings()
        self._catalog = ToolCatalog(
            max_age=self._settings.tools_max_age,
            retry_interval=self._settings.fetch_retry_interval,
            store=tool_store,
        )
        self._connections: dict[str, BackendConnection] = {}
        self._fetch_locks: dict[str, asyncio.Lock] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def list_tools(self) -> list[types.Tool]:
        views = self._directory.workloads()
        self._settle(views)
        stale = [view for view in views if self._catalog.needs_fetch(view)]
        if stale:
            await asyncio.gather(*(self._fetch(view) for view in stale))
        return self._catalog.exposed_tools(views)

    async def call_tool(self, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
        """Forward the call, or answer with a tool error; raise ``MCPError`` for an unknown tool."""
        route = self._catalog.route(name)
        if route is None:
            await self.list_tools()  # a client may call without listing first (e.g. after a restart)
            route = self._catalog.route(name)
        view = self._directory.workload(route.workload) if route is not None else None
        if route is None or view is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")
        if not behaviour_of(view).forward:
            log.debug("vmcp: %s refused (workload %s is %s)", name, view.name, view.status)
            return refusal(view)
        connection = self._connection(view)
        try:
            return await connection.call_tool(route.tool, arguments, timeout=self._settings.call_timeout)
        except BackendError as exc:
            log.info("vmcp: %s on workload %s failed: %s", route.tool, view.name, exc.message)
            return tool_error(exc.message, workload=view.name, status=exc.status, retry_after=exc.retry_after)

    def input_schema(self, name: str) -> dict[str, Any] | None:
        """The cached input schema of an exposed tool (for the SDK's header validation)."""
        route = self._catalog.route(name)
        tool = self._catalog.tool(route) if route is not None else None
        return tool.input_schema if tool is not None else None

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        await asyncio.gather(*(c.aclose() for c in connections), *self._closing, return_exceptions=True)

    # ---------------------------------------------------------------- internals --
    def _settle(self, views: list[WorkloadView]) -> None:
        """Forget removed workloads; close the connections of those no longer listed.

        A degraded workload keeps its connection: it is cheap, and it is back soon.
        """
        self._catalog.retain(view.name for view in views)
        listed = {view.name for view in views if behaviour_of(view).listed}
        for name in [name for name in self._connections if name not in listed]:
            self._close_later(self._connections.pop(name))
            self._fetch_locks.pop(name, None)

    async def _fetch(self, view: WorkloadView) -> None:
        lock = self._fetch_locks.setdefault(view.name, asyncio.Lock())
        async with lock:
            if not self._catalog.needs_fetch(view):  # fetched meanwhile by a concurrent list
                return
            try:
                tools = await self._connection(view).list_tools(timeout=self._settings.list_timeout)
            except (BackendError, MCPError) as exc:
                log.warning("vmcp: cannot list the tools of workload %s: %s", view.name, exc)
                self._catalog.fetch_failed(view)
                return
            before = self._catalog.tool_names(view.name)
            self._catalog.store(view, tools)
            if self._catalog.tool_names(view.name) != before:
                log.info("vmcp: workload %s offers %d tools", view.name, len(tools))

    def _connection(self, view: WorkloadView) -> BackendConnection:
        connection = self._connections.get(view.name)
        if connection is None or (connection.url, connection.transport) != (view.url, view.transport):
            if connection is not None:  # its port or transport changed: the old one is useless
                self._close_later(connection)
            connection = BackendConnection(
                view.name,
                view.url,
                transport=view.transport,
                connect_timeout=self._settings.connect_timeout,
                headers=self._backend_headers(),
            )
            self._connections[view.name] = connection
        return connection

    def _close_later(self, connection: BackendConnection) -> None:
        """Close in the background: a backend slow to say goodbye must not delay a listing."""
        task = asyncio.get_running_loop().create_task(
            connection.aclose(), name=f"vmcp-close:{connection.name}"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
