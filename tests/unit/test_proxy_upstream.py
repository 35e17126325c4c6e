"""Which way a proxy app reaches its upstream: its own transport, or a client honouring env proxies."""

from __future__ import annotations

import httpx
import pytest

from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.proxy._upstream import UPSTREAM_TIMEOUT, create_upstream_client, upstream_for

REMOTE = Origin("https", "mcp.example.com", 443)

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_without_environment_proxy_the_app_uses_its_own_transport() -> None:
    upstream, owned = upstream_for(REMOTE, None)
    assert owned
    assert type(upstream).__name__ == "_DirectUpstream"
    assert upstream.timeout == UPSTREAM_TIMEOUT.as_dict()
    await upstream.aclose()
    assert upstream.is_closed


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "ALL_PROXY"])
async def test_an_environment_proxy_for_the_upstream_goes_through_an_httpx_client(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://corporate-proxy.example:3128")
    upstream, owned = upstream_for(REMOTE, None)
    assert owned
    assert type(upstream).__name__ == "_ClientUpstream"
    await upstream.aclose()


async def test_no_proxy_and_other_schemes_keep_the_direct_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://corporate-proxy.example:3128")  # for http:// only
    assert type(upstream_for(REMOTE, None)[0]).__name__ == "_DirectUpstream"
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate-proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "mcp.example.com")
    assert type(upstream_for(REMOTE, None)[0]).__name__ == "_DirectUpstream"


async def test_a_client_passed_in_is_used_and_left_to_its_owner() -> None:
    async with httpx.AsyncClient(timeout=7.0) as client:
        upstream, owned = upstream_for(REMOTE, client)
        assert not owned
        assert upstream.timeout["connect"] == 7.0
    assert upstream.is_closed


async def test_a_default_client_passed_in_gives_way_to_direct_connections_with_the_same_settings() -> None:
    async with create_upstream_client() as client:
        upstream, owned = upstream_for(REMOTE, client)
        assert owned
        assert type(upstream).__name__ == "_DirectUpstream"
        await upstream.aclose()
    assert upstream.is_closed


async def test_a_default_client_passed_in_is_used_when_an_environment_proxy_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate-proxy.example:3128")
    async with create_upstream_client() as client:
        upstream, owned = upstream_for(REMOTE, client)
        assert not owned
        assert type(upstream).__name__ == "_ClientUpstream"
