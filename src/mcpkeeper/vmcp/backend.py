"""One MCP client per workload, talking to it through the workload's local proxy.

The official SDK client keeps its transport in an AnyIO task group, which must be
entered and left by one task. So each backend gets an *owner task* that opens the
client, publishes it, and holds it open until asked to close; callers in any task use
the published client concurrently. The client is reused for every call and re-opened
after any failure (the SDK's transport dies with its first connection error).

Failures become :class:`BackendError` (one line, no token can be in it: the proxy's
answers are token-free by construction), which the aggregator turns into tool errors.
A JSON-RPC error that is the backend's own protocol answer (unknown tool, invalid
params) is re-raised as that ``MCPError``. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from mcpkeeper.proxy import PROXY_ERROR_CODE

__all__ = ["BackendConnection", "BackendError"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Bounds the pages of one backend tool listing (a paginator that never ends cannot hang us).
_MAX_PAGES = 100
#: The SDK's own defaults for a client it makes (connect/write/pool 30 s, read 300 s), for
#: the one we make when the client token must go with every request.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, read=300.0)
#: Extra time the outer guard grants over the SDK's own read timeout before giving up.
_GRACE = 5.0
#: JSON-RPC error codes that mean "the call did not get through", not "the tool said no".
_TRANSPORT_CODES = frozenset(
    {types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT, types.INTERNAL_ERROR, PROXY_ERROR_CODE}
)


class BackendError(Exception):
    """A call could not be completed by the backend; ``status`` names why in a word.

    ``status`` is the proxy's kind when the proxy answered (``auth_retrying``,
    ``unauthenticated``, ``upstream_unreachable``...), else ``unreachable`` or ``timeout``.
    """

    def __init__(self, message: str, *, status: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


class BackendConnection:
    """The reused MCP client of one workload; see the module docstring."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        transport: str = "streamable-http",
        connect_timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.url = url
        self.transport = transport
        self._headers = dict(headers or {})  # sent with every request (the client token), never logged
        self._connect_timeout = connect_timeout
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._release: asyncio.Event | None = None
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._client is not None and self._owner is not None and not self._owner.done()

    async def list_tools(self, *, timeout: float) -> list[types.Tool]:
        """Every tool of the backend (all pages); retried once on a fresh client."""

        async def walk(client: Client) -> list[types.Tool]:
            tools: list[types.Tool] = []
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        return await self._run(walk, timeout=timeout, idempotent=True)

    async def call_tool(
        self, tool: str, arguments: dict[str, Any] | None, *, timeout: float
    ) -> types.CallToolResult:
        """Forward one tools/call. Not repeated after a failure that may have reached the
        tool, only when the backend says it never saw the session (a restarted server)."""

        async def call(client: Client) -> types.CallToolResult:
            return await client.call_tool(tool, arguments, read_timeout_seconds=timeout)

        return await self._run(call, timeout=timeout, idempotent=False)

    async def aclose(self) -> None:
        self._closed = True
        async with self._lock:
            await self._drop()

    # ------------------------------------------------------------------ internals --
    async def _run(self, op: Callable[[Client], Awaitable[_T]], *, timeout: float, idempotent: bool) -> _T:
        for attempt in (1, 2):
            client = await self._connected()
            try:
                async with asyncio.timeout(timeout + _GRACE):
                    return await op(client)
            except MCPError as exc:
                if exc.code not in _TRANSPORT_CODES and not _session_gone(exc):
                    # The backend's own answer (unknown tool, invalid arguments...).
                    raise MCPError(exc.code, f"{self.name}: {exc.message}", exc.data) from None
                lost = exc.code == types.CONNECTION_CLOSED or _session_gone(exc)
                if lost:
                    await self._discard(client)
                if attempt == 1 and (_session_gone(exc) or (idempotent and lost)):
                    continue
                raise self._error_from(exc, timeout) from None
            except TimeoutError:
                await self._discard(client)
                raise BackendError(
                    f"no answer from workload {self.name!r} within {timeout:g} s", status="timeout"
                ) from None
            except Exception as exc:
                await self._discard(client)
                if attempt == 1 and idempotent:
                    continue
                raise BackendError(
                    f"the call to workload {self.name!r} failed: {_describe(exc)}", status="unreachable"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _error_from(self, exc: MCPError, timeout: float) -> BackendError:
        data = exc.data if isinstance(exc.data, dict) else {}
        if exc.code == PROXY_ERROR_CODE:  # the proxy's own answer already names the workload
            retry_after = data.get("retry_after")
            return BackendError(
                exc.message,
                status=str(data.get("status") or "unavailable"),
                retry_after=float(retry_after) if isinstance(retry_after, int | float) else None,
            )
        if exc.code == types.REQUEST_TIMEOUT:
            return BackendError(
                f"no answer from workload {self.name!r} within {timeout:g} s", status="timeout"
            )
        return BackendError(f"workload {self.name!r}: {exc.message}", status="unreachable")

    async def _connected(self) -> Client:
        async with self._lock:
            if self._closed:
                raise BackendError(f"workload {self.name!r} is going away", status="unreachable")
            if self.connected:
                assert self._client is not None
                return self._client
            await self._drop()
            return await self._open()

    async def _open(self) -> Client:
        ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        release = asyncio.Event()
        owner = asyncio.create_task(self._own(ready, release), name=f"vmcp-backend:{self.name}")
        self._owner, self._release = owner, release
        try:
            async with asyncio.timeout(self._connect_timeout):
                client = await asyncio.shield(ready)
        except TimeoutError:
            await self._drop()
            raise BackendError(
                f"workload {self.name!r} did not answer within {self._connect_timeout:g} s", status="timeout"
            ) from None
        except MCPError as exc:
            await self._drop()
            raise self._error_from(exc, self._connect_timeout) from None
        except Exception as exc:
            await self._drop()
            raise BackendError(
                f"cannot connect to workload {self.name!r}: {_describe(exc)}", status="unreachable"
            ) from None
        self._client = client
        log.debug("vmcp: connected to workload %s (%s)", self.name, client.protocol_version)
        return client

    async def _own(self, ready: asyncio.Future[Client], release: asyncio.Event) -> None:
        """The owner task: holds one client open until released or until its transport dies."""
        try:
            async with self._new_client() as client:
                ready.set_result(client)
                await release.wait()
        except Exception as exc:
            if not ready.done():
                # The SDK raises from inside task groups: hand over what actually happened
                # (e.g. the proxy's JSON-RPC error), not the group around it.
                ready.set_exception(_leaf(exc))
            else:
                log.debug("vmcp: connection to workload %s ended: %s", self.name, _describe(exc))
        finally:
            if not ready.done():
                ready.cancel()

    @contextlib.asynccontextmanager
    async def _new_client(self) -> AsyncIterator[Client]:
        async with contextlib.AsyncExitStack() as stack:
            if self.transport == "sse":
                transport = sse_client(self.url, headers=self._headers, timeout=self._connect_timeout)
            elif self._headers:
                http = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=self._headers, timeout=_HTTP_TIMEOUT)
                )
                transport = streamable_http_client(self.url, http_client=http)
            else:
                transport = streamable_http_client(self.url)
            # The SDK's response cache is off: the catalog decides when a listing is stale.
            # The read timeout bounds the handshake and listings; a tools/call passes its own.
            yield await stack.enter_async_context(
                Client(transport, cache=None, read_timeout_seconds=self._connect_timeout)
            )

    async def _discard(self, client: Client) -> None:
        """Drop ``client`` after a failure, unless another caller already replaced it."""
        async with self._lock:
            if self._client is client:
                await self._drop()

    async def _drop(self) -> None:
        owner, release = self._owner, self._release
        self._client = self._owner = self._release = None
        if owner is None:
            return
        if release is not None:
            release.set()
        done, _ = await asyncio.wait({owner}, timeout=self._connect_timeout)
        if not done:
            owner.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({owner}, timeout=1.0)


def _session_gone(exc: MCPError) -> bool:
    """The backend answered 404 for our session: it restarted and never ran the request."""
    return exc.code == types.INVALID_REQUEST and exc.message == "Session terminated"


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups; ``exc`` itself if it is none."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    """One line about ``exc``: the type and first message line of its first leaf."""
    exc = _leaf(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
