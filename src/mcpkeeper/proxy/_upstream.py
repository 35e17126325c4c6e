"""How a proxy app reaches its upstream: one small interface, one way to make it.

:class:`Upstream` is all the app needs (send a request, get the status and headers, read
the body as it arrives). :func:`open_upstream` makes the app's own: the proxy's lean
HTTP/1.1 connections (:mod:`._http1`), or, when the environment names an HTTP proxy for
the origin (``HTTPS_PROXY``, ``ALL_PROXY``, not excluded by ``NO_PROXY``), an httpx client
from :func:`create_upstream_client`, which applies it. :func:`http_upstream` wraps any
httpx client a caller wants used instead, as it is configured, wherever it was made.

Why an own client at all: ``bench/bench_http_stacks.py`` runs the same proxy over it,
httpx, httpcore alone and aiohttp side by side. httpx's client layer adds, per request,
cookie extraction (urllib shims and an email message built from the headers), auth and
redirect machinery and a log record, and httpcore's h11 parsing below it; per call the
own client costs the proxy about half the CPU of httpx and adds about a third of the
latency (figures in the bench's docstring).
"""

from __future__ import annotations

import functools
import ssl
import urllib.request
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx

from mcpkeeper.proxy._headers import RawHeaders
from mcpkeeper.proxy._http1 import (
    Http1Pool,
    Http1Response,
    UpstreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from mcpkeeper.proxy._rewrite import Origin

__all__ = [
    "UPSTREAM_TIMEOUT",
    "Upstream",
    "UpstreamBroken",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "create_upstream_client",
    "direct_upstream",
    "http_upstream",
    "open_upstream",
]

#: Connect fails fast; reads never time out, because an SSE stream may idle for hours and
#: a tool call may legitimately run long (the client decides when to give up).
UPSTREAM_TIMEOUT = httpx.Timeout(connect=10.0, read=None, write=60.0, pool=10.0)
#: Idle keep-alive connections kept per upstream origin, and for how long.
MAX_IDLE_PER_ORIGIN = 32
KEEPALIVE_EXPIRY = 30.0


def create_upstream_client() -> httpx.AsyncClient:
    """An HTTP client suited to outgoing requests (our timeouts, no redirects, no cookies).

    The daemon shares one for token refreshes and reachability probes; a proxy app gets
    one when an environment proxy applies to its upstream. No ``transport=`` is passed on
    purpose: httpx honours ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY`` only for a client
    that builds its own transports, and behind a corporate proxy every background refresh
    would fail.

    Its cookie jar refuses everything: cookies belong to the MCP clients and pass through
    the proxy untouched; a shared jar would hand one client's session cookie to another.
    """
    return httpx.AsyncClient(
        timeout=UPSTREAM_TIMEOUT,
        limits=httpx.Limits(max_keepalive_connections=MAX_IDLE_PER_ORIGIN, keepalive_expiry=KEEPALIVE_EXPIRY),
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


class UpstreamResponse(Protocol):
    """An answer whose headers arrived; the body is read with :meth:`aiter_raw`, then closed."""

    @property
    def status_code(self) -> int: ...

    @property
    def raw_headers(self) -> RawHeaders: ...

    @property
    def complete(self) -> bool:
        """The whole body has been handed out (False when the upstream cannot tell cheaply)."""
        ...

    def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises :class:`UpstreamBroken` if it breaks off."""
        ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    @property
    def timeout(self) -> dict[str, Any]:
        """The timeouts in force (httpx's ``timeout`` extension form)."""
        ...

    @property
    def is_closed(self) -> bool: ...

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> UpstreamResponse:
        """Send ``method target`` to the origin.

        Raises :class:`UpstreamTimeout` or :class:`UpstreamUnreachable`.
        """
        ...

    async def aclose(self) -> None: ...


def open_upstream(origin: Origin) -> Upstream:
    """The proxy's way to ``origin``: the one place an upstream connection pool is made.

    Our own HTTP/1.1 connections, unless the environment names an HTTP proxy for the
    origin (``HTTPS_PROXY``, ``ALL_PROXY``, not excluded by ``NO_PROXY``): then an httpx
    client from :func:`create_upstream_client`, which applies it. Closing the upstream
    closes what was made here.
    """
    if _environment_proxy_applies(origin):
        return http_upstream(create_upstream_client(), origin)
    return _DirectUpstream(origin)


def direct_upstream(origin: Origin) -> Upstream:
    """Our own connections to ``origin`` whatever the environment says (a loopback proxy of ours)."""
    return _DirectUpstream(origin)


def http_upstream(client: httpx.AsyncClient, origin: Origin | str) -> Upstream:
    """``origin`` reached through ``client``, used as it is configured (closing the upstream closes it)."""
    if isinstance(origin, str):
        parsed = Origin.of(origin)
        if parsed is None:
            raise ValueError(f"not an absolute http(s) URL: {origin!r}")
        origin = parsed
    return _ClientUpstream(client, origin)


class _DirectUpstream:
    """Our own HTTP/1.1 connections (:mod:`._http1`)."""

    def __init__(self, origin: Origin) -> None:
        host = origin.host
        authority = str(origin).split("://", 1)[1]
        self._pool = Http1Pool(
            host,
            origin.port,
            host_header=authority,
            ssl_context=_ssl_context() if origin.scheme == "https" else None,
            connect_timeout=_seconds(UPSTREAM_TIMEOUT.connect),
            write_timeout=_seconds(UPSTREAM_TIMEOUT.write),
            keepalive_expiry=KEEPALIVE_EXPIRY,
            max_idle=MAX_IDLE_PER_ORIGIN,
        )
        self.timeout = UPSTREAM_TIMEOUT.as_dict()

    @property
    def is_closed(self) -> bool:
        return self._pool.closed

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> Http1Response:
        return await self._pool.send(method, target, headers, body)

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ClientUpstream:
    """Through an httpx client (one honouring an environment proxy, or a caller's)."""

    def __init__(self, client: httpx.AsyncClient, origin: Origin) -> None:
        self._client = client
        self._base = httpx.URL(str(origin))
        self.timeout = client.timeout.as_dict()

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def send(
        self, method: str, target: bytes, headers: RawHeaders, body: bytes | AsyncIterator[bytes]
    ) -> _HttpxResponse:
        # Built directly rather than with ``client.build_request``: the proxy adds no client
        # defaults (User-Agent, cookies from a jar) to what the client sent.
        request = httpx.Request(
            method,
            self._base.copy_with(raw_path=target),
            headers=headers,
            content=body,
            extensions={"timeout": self.timeout},
        )
        try:
            response = await self._client.send(request, stream=True, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise UpstreamUnreachable(str(exc) or type(exc).__name__) from exc
        return _HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.raw_headers = response.headers.raw
        self.complete = False

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            raise UpstreamBroken(type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._response.aclose()


def _seconds(value: float | None) -> float:
    return value if value is not None else 1e9


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default context (verification on, certifi's roots), built once: loading it is slow."""
    return httpx.create_ssl_context()


def _environment_proxy_applies(origin: Origin) -> bool:
    proxies = urllib.request.getproxies()
    if origin.scheme not in proxies and "all" not in proxies:
        return False
    return not urllib.request.proxy_bypass(origin.host)
