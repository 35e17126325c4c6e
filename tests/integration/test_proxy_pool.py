"""The upstream keep-alive pool (``proxy._pool``) against a real uvicorn server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcpkeeper.proxy._pool import UpstreamTransport
from mcpkeeper.testing import ServedApp

pytestmark = pytest.mark.integration

WAIT = 5.0
CONCURRENT = 20


class _Upstream:
    def __init__(self) -> None:
        self.arrived = 0
        self.all_arrived = asyncio.Event()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/port", self._port), Route("/together", self._together)])

    async def _port(self, request: Request) -> Response:
        assert request.client is not None
        return JSONResponse({"port": request.client.port})

    async def _together(self, request: Request) -> Response:
        """Answers only once CONCURRENT requests are in flight at the same time."""
        self.arrived += 1
        if self.arrived == CONCURRENT:
            self.all_arrived.set()
        await asyncio.wait_for(self.all_arrived.wait(), WAIT)
        return JSONResponse({"ok": True})


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[_Upstream, ServedApp]]:
    state = _Upstream()
    async with ServedApp(state.app()) as served:
        yield state, served


def _client(transport: UpstreamTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=WAIT)


async def test_sequential_requests_reuse_one_connection(upstream: tuple[_Upstream, ServedApp]) -> None:
    _, served = upstream
    async with _client(UpstreamTransport(keepalive_expiry=30.0, max_idle=4)) as http:
        ports = {(await http.get(served.url + "/port")).json()["port"] for _ in range(5)}
    assert len(ports) == 1


async def test_concurrent_requests_each_get_a_connection_and_idle_ones_are_capped(
    upstream: tuple[_Upstream, ServedApp],
) -> None:
    state, served = upstream
    transport = UpstreamTransport(keepalive_expiry=30.0, max_idle=4)
    async with _client(transport) as http:
        answers = await asyncio.gather(*(http.get(served.url + "/together") for _ in range(CONCURRENT)))
        assert all(answer.status_code == 200 for answer in answers)
        ports = {(await http.get(served.url + "/port")).json()["port"] for _ in range(8)}
    assert state.arrived == CONCURRENT
    assert len(ports) == 1  # sequential again: one warm connection serves them all


async def test_connections_the_server_closed_are_not_reused(upstream: tuple[_Upstream, ServedApp]) -> None:
    _, served = upstream
    async with _client(UpstreamTransport(keepalive_expiry=30.0, max_idle=4)) as http:
        first = (await http.get(served.url + "/port")).json()["port"]
        await served.stop_listening()  # closes every connection, the idle one in our pool too
        await served.start_listening()
        second = await http.get(served.url + "/port")
    assert second.status_code == 200
    assert second.json()["port"] != first


async def test_expired_connections_are_replaced(upstream: tuple[_Upstream, ServedApp]) -> None:
    _, served = upstream
    async with _client(UpstreamTransport(keepalive_expiry=0.0, max_idle=4)) as http:
        ports = [(await http.get(served.url + "/port")).json()["port"] for _ in range(3)]
    assert len(set(ports)) == 3


async def test_a_closed_pool_refuses_requests(upstream: tuple[_Upstream, ServedApp]) -> None:
    _, served = upstream
    transport = UpstreamTransport(keepalive_expiry=30.0, max_idle=4)
    http = _client(transport)
    assert (await http.get(served.url + "/port")).status_code == 200
    await http.aclose()
    with pytest.raises(RuntimeError):
        await transport.handle_async_request(httpx.Request("GET", served.url + "/port"))
