"""Which way a proxy app reaches its upstream: its own connections, or a client honouring env proxies."""

from __future__ import annotations

import httpx
import pytest

from mcpkeeper.proxy import create_proxy_app, create_upstream_client
from mcpkeeper.proxy._rewrite import Origin
from mcpkeeper.proxy._upstream import UPSTREAM_TIMEOUT, http_upstream, open_upstream

REMOTE = Origin("https", "mcp.example.com", 443)

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_without_environment_proxy_the_app_uses_its_own_connections() -> None:
    upstream = open_upstream(REMOTE)
    assert type(upstream).__name__ == "_DirectUpstream"
    assert upstream.timeout == UPSTREAM_TIMEOUT.as_dict()
    await upstream.aclose()
    assert upstream.is_closed


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "ALL_PROXY"])
async def test_an_environment_proxy_for_the_upstream_goes_through_an_httpx_client(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://corporate-proxy.example:3128")
    upstream = open_upstream(REMOTE)
    assert type(upstream).__name__ == "_ClientUpstream"
    assert upstream.timeout == UPSTREAM_TIMEOUT.as_dict()
    await upstream.aclose()
    assert upstream.is_closed


async def test_no_proxy_and_other_schemes_keep_the_own_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://corporate-proxy.example:3128")  # for http:// only
    assert type(open_upstream(REMOTE)).__name__ == "_DirectUpstream"
    monkeypatch.setenv("HTTPS_PROXY", "http://corporate-proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "mcp.example.com")
    assert type(open_upstream(REMOTE)).__name__ == "_DirectUpstream"


@pytest.mark.parametrize("made_by", ["create_upstream_client", "httpx.AsyncClient"])
async def test_a_client_passed_in_is_used_as_configured_wherever_it_was_made(made_by: str) -> None:
    made_here = made_by == "create_upstream_client"
    client = create_upstream_client() if made_here else httpx.AsyncClient(timeout=7.0)
    upstream = http_upstream(client, "https://mcp.example.com/mcp")
    assert type(upstream).__name__ == "_ClientUpstream"
    assert upstream.timeout == client.timeout.as_dict()
    app = create_proxy_app("https://mcp.example.com/mcp", None, upstream=upstream)
    await app.aclose()
    assert not client.is_closed  # the caller's: the app leaves it open
    await upstream.aclose()
    assert client.is_closed


def test_an_upstream_for_a_url_that_is_not_absolute_is_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        http_upstream(httpx.AsyncClient(), "/mcp")
