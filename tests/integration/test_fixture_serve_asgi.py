"""``serve_asgi``: uvicorn inside the running loop, on loopback, without signal handlers."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mcpkeeper.testing import ServedApp, serve_asgi

pytestmark = pytest.mark.integration


def _app(events: list[str] | None = None) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if events is not None:
            events.append("startup")
        yield
        if events is not None:
            events.append("shutdown")

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello from {request.client.host if request.client else '?'}")

    return Starlette(routes=[Route("/", hello)], lifespan=lifespan)


async def test_serves_on_loopback_runs_the_lifespan_and_leaves_signals_alone() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    events: list[str] = []
    async with serve_asgi(_app(events)) as served:
        assert served.url == f"http://127.0.0.1:{served.port}"
        assert served.port > 0
        assert {sig: signal.getsignal(sig) for sig in before} == before
        async with httpx.AsyncClient(timeout=5.0) as http:
            assert (await http.get(served.url + "/")).text == "hello from 127.0.0.1"
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]
    assert {sig: signal.getsignal(sig) for sig in before} == before
    async with httpx.AsyncClient(timeout=5.0) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(served.url + "/")


async def test_two_servers_share_the_loop_and_a_port_comes_back_after_a_pause() -> None:
    async with serve_asgi(_app()) as first, serve_asgi(_app(), lifespan="off") as second:
        assert first.port != second.port
        port = first.port
        async with httpx.AsyncClient(timeout=5.0) as http:
            assert (await http.get(first.url + "/")).status_code == 200  # leaves a pooled connection
            await first.stop_listening()
            assert not first.listening
            with pytest.raises(httpx.ConnectError):
                await http.get(first.url + "/")
            assert (await http.get(second.url + "/")).status_code == 200
            await first.start_listening()
            assert first.port == port
            assert (await http.get(first.url + "/")).status_code == 200


async def test_a_given_port_is_used_and_a_taken_one_fails_cleanly() -> None:
    async with serve_asgi(_app()) as first:
        with pytest.raises(OSError):
            await ServedApp(_app(), port=first.port).start_listening()
        await first.stop_listening()
        async with serve_asgi(_app(), port=first.port) as again:
            assert again.port == first.port


async def test_a_failing_lifespan_raises_instead_of_exiting() -> None:
    @asynccontextmanager
    async def broken(app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield

    with pytest.raises(RuntimeError, match="uvicorn"):
        async with serve_asgi(Starlette(lifespan=broken), lifespan="on"):
            pass
