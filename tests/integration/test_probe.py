"""http_probe against real servers: what a token endpoint, a WAF, a hang, a closed port,
a name that does not resolve and nonsense look like, and that a probe spends nothing."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from mcpkeeper.auth.errors import TIMEOUT, UNREACHABLE
from mcpkeeper.auth.probe import http_probe
from mcpkeeper.testing import FixtureAuthServer

pytestmark = pytest.mark.integration


async def test_an_answering_token_endpoint_says_405_and_nothing_is_spent() -> None:
    async with FixtureAuthServer() as auth:
        assert await http_probe(auth.token_endpoint)() == "http 405 text/plain"
        assert sum(auth.counters.by_grant.values()) == 0


@pytest.mark.parametrize(
    ("fault", "seen"),
    [
        ("waf_html_403", "http 403 text/html"),
        ("server_error_500", "http 500 text/plain"),
        ("rate_limited_429", "http 429 text/plain"),
        ("invalid_grant", "http 405 text/plain"),  # a verdict on a grant: GET sends none
    ],
)
async def test_an_outage_in_front_of_the_server_shows_in_the_signature(fault: str, seen: str) -> None:
    async with FixtureAuthServer() as auth:
        await auth.set_fault(fault)
        assert await http_probe(auth.token_endpoint)() == seen


async def test_a_hanging_endpoint_is_a_timeout_within_the_bound() -> None:
    async with FixtureAuthServer() as auth:
        await auth.set_fault("hang")
        start = time.monotonic()
        assert await http_probe(auth.token_endpoint, timeout=0.5)() == TIMEOUT
        assert time.monotonic() - start < 3.0
        await auth.set_fault("ok")


async def test_a_shared_client_is_used_as_it_is() -> None:
    async with FixtureAuthServer() as auth, httpx.AsyncClient() as http:
        probe = http_probe(auth.token_endpoint, http=http)
        assert await probe() == "http 405 text/plain"
        assert not http.is_closed


async def test_closed_port_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        assert await http_probe(f"http://127.0.0.1:{port}/token")() == UNREACHABLE


async def test_unresolvable_name_is_unreachable_within_the_timeout() -> None:
    start = time.monotonic()
    assert await http_probe("https://no-such-host.invalid/token", timeout=1.0)() in (UNREACHABLE, TIMEOUT)
    assert time.monotonic() - start < 5.0


@pytest.mark.parametrize("url", ["not a url", "https://", "http://h:99999999/x", "https://[::1/x", ""])
async def test_nonsense_never_raises(url: str) -> None:
    assert await http_probe(url, timeout=0.5)() == UNREACHABLE
