"""The aggregated endpoint as an MCP server: the SDK's low-level server over streamable HTTP.

The low-level ``Server`` (not ``MCPServer``) because the tool set is not known in advance:
it is whatever the workloads offer at the moment a client lists. The SDK does the
protocol (both the 2025 session-based and the 2026 per-request era), DNS-rebinding
protection for a loopback host, and session management; :class:`.Aggregator` answers.

The SDK's session manager holds an AnyIO task group that must be entered and left by one
task, so it runs in a task of its own, and is stopped before the HTTP server so open
SSE streams end instead of holding the server's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mcpkeeper import __version__
from mcpkeeper.net import LOOPBACK, InLoopServer
from mcpkeeper.proxy import ClientTokenGate
from mcpkeeper.vmcp.aggregator import Aggregator
from mcpkeeper.vmcp.runfile import VMCP_PATH

__all__ = ["VirtualMCPServer", "build_mcp_server"]

log = logging.getLogger(__name__)

_START_TIMEOUT = 10.0
_INSTRUCTIONS = (
    "Every tool of every workload kept by mcpkeeper, named <workload>__<tool>. A tool whose "
    "workload is waiting for its authorization answers with an error carrying retry_after "
    "(seconds); one whose login expired says to run `mcpkeeper login <workload>`."
)


def build_mcp_server(aggregator: Aggregator) -> Server[Any]:
    """The SDK server whose tools/list and tools/call are answered by ``aggregator``."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await aggregator.list_tools())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        return await aggregator.call_tool(params.name, params.arguments)

    return Server(
        "mcpkeeper",
        version=__version__,
        title="mcpkeeper: all workloads",
        instructions=_INSTRUCTIONS,
        get_tool_input_schema=aggregator.input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


class VirtualMCPServer:
    """Serves ``aggregator`` at ``http://127.0.0.1:<port>/mcp`` on the already-bound ``sock``."""

    def __init__(
        self,
        aggregator: Aggregator,
        sock: socket.socket,
        *,
        client_token: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.aggregator = aggregator
        self.port: int = sock.getsockname()[1]
        mcp_server = build_mcp_server(aggregator)
        app = mcp_server.streamable_http_app(streamable_http_path=VMCP_PATH, host=LOOPBACK)
        self._sessions: StreamableHTTPSessionManager = mcp_server.session_manager
        # Every workload's tools are behind this endpoint: it requires the client token
        # whenever one of them does (``client_token`` says which token, or None).
        self._http = InLoopServer(ClientTokenGate(app, client_token), sock, name="vmcp", lifespan="off")
        self._sessions_task: asyncio.Task[None] | None = None
        self._stop_sessions = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{VMCP_PATH}"

    async def start(self) -> None:
        ready = asyncio.Event()

        async def run_sessions() -> None:
            async with self._sessions.run():
                ready.set()
                await self._stop_sessions.wait()

        self._sessions_task = asyncio.create_task(run_sessions(), name="vmcp-sessions")
        waiting = asyncio.ensure_future(ready.wait())
        try:
            await asyncio.wait(
                {waiting, self._sessions_task}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            waiting.cancel()
            if not ready.is_set():
                raise RuntimeError("the MCP session manager did not start")
            await self._http.start()
        except BaseException:
            await self.stop()
            raise
        log.info("vmcp: serving every workload's tools at %s", self.url)

    async def wait_closed(self) -> None:
        await self._http.wait_closed()

    async def stop(self) -> None:
        """Stop sessions, then the HTTP server, then every backend connection."""
        self._stop_sessions.set()
        task, self._sessions_task = self._sessions_task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=_START_TIMEOUT)
            if not done:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait({task}, timeout=1.0)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("vmcp: the MCP session manager had failed: %s", task.exception())
        await self._http.stop()
        await self.aggregator.aclose()
