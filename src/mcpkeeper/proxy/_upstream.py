"""How a request reaches the upstream: straight through our transport, or through a client.

By default a proxy app sends through its own :class:`~mcpkeeper.proxy._pool.UpstreamTransport`,
called directly. httpx's client layer would add, on every request, cookie extraction (it
builds urllib request and response shims and an email message from the headers), auth and
redirect machinery and a log record: nothing a proxy wants (cookies belong to the MCP
clients, redirects are passed through), and together a good part of the proxy's CPU time.

A client is used instead when the caller hands one in (its settings are then the caller's
choice), or when the environment names an HTTP proxy for the upstream (``HTTPS_PROXY``,
``ALL_PROXY``, not excluded by ``NO_PROXY``): httpx's client applies those.
"""

from __future__ import annotations

import urllib.request
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx

from mcpkeeper.proxy._pool import UpstreamTransport
from mcpkeeper.proxy._rewrite import Origin

__all__ = ["UPSTREAM_TIMEOUT", "Upstream", "create_upstream_client", "upstream_for"]

#: Connect fails fast; reads never time out, because an SSE stream may idle for hours and
#: a tool call may legitimately run long (the client decides when to give up).
UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=10.0)
#: Idle keep-alive connections kept per upstream origin, and for how long.
MAX_IDLE_PER_ORIGIN = 32
KEEPALIVE_EXPIRY = 30.0


def create_upstream_client() -> httpx.AsyncClient:
    """An HTTP client suited to upstream requests (our pool, our timeouts, no redirects).

    Its cookie jar refuses everything: cookies belong to the MCP clients and pass through
    the proxy untouched; a shared jar would hand one client's session cookie to another.
    """
    return httpx.AsyncClient(
        timeout=UPSTREAM_TIMEOUT,
        transport=_transport(),
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class Upstream(Protocol):
    @property
    def timeout(self) -> dict[str, Any]:
        """The ``timeout`` request extension to send with."""
        ...

    @property
    def is_closed(self) -> bool: ...

    async def send(self, request: httpx.Request) -> httpx.Response:
        """The response, its body not read yet; raises httpx's transport errors."""
        ...

    async def aclose(self) -> None: ...


def upstream_for(origin: Origin, http: httpx.AsyncClient | None) -> tuple[Upstream, bool]:
    """The way to ``origin``, and whether the caller owns (must close) it."""
    if http is not None:
        return _ClientUpstream(http), False
    if _environment_proxy_applies(origin):
        return _ClientUpstream(create_upstream_client()), True
    return _DirectUpstream(), True


class _DirectUpstream:
    def __init__(self) -> None:
        self._transport = _transport()
        self._closed = False
        self.timeout = UPSTREAM_TIMEOUT.as_dict()

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def send(self, request: httpx.Request) -> httpx.Response:
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def aclose(self) -> None:
        self._closed = True
        await self._transport.aclose()


class _ClientUpstream:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self.timeout = client.timeout.as_dict()

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def send(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True, follow_redirects=False)

    async def aclose(self) -> None:
        await self._client.aclose()


def _transport() -> UpstreamTransport:
    return UpstreamTransport(keepalive_expiry=KEEPALIVE_EXPIRY, max_idle=MAX_IDLE_PER_ORIGIN)


def _environment_proxy_applies(origin: Origin) -> bool:
    proxies = urllib.request.getproxies()
    if origin.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(origin.host)
