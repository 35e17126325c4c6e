"""The cheap "has the cause cleared?" check the monitor runs while callers are blocked.

A GET of the token endpoint spends nothing (no grant is sent), goes the way the refresh
goes (the same HTTP client: the same environment proxy, TLS settings and DNS), and tells
the outages apart by what answers:

* ``unreachable`` / ``timeout``: the network (VPN down, Wi-Fi gone, DNS failing, a
  black-holed route);
* ``http 403 text/html``: a WAF's block page; ``http 502 text/html``: a proxy that cannot
  reach the server; ``http 503 …`` / ``http 429 …``: the server itself;
* ``http 405 …`` / ``http 400 application/json``: a token endpoint that is answering.

The probe does not judge: it returns the signature, and the monitor acts when the
signature *changes* (see :mod:`mcpkeeper.auth.monitor`), which works whatever a given
server answers to a GET. The response body is never read.
"""

from __future__ import annotations

import httpx

from mcpkeeper.auth.errors import TIMEOUT, UNREACHABLE, signature
from mcpkeeper.auth.protocols import ReachabilityProbe

__all__ = ["http_probe"]


def http_probe(url: str, *, http: httpx.AsyncClient | None = None, timeout: float = 2.0) -> ReachabilityProbe:
    """A probe of ``url`` (the token endpoint) through ``http`` (a client per probe without one)."""

    async def probe() -> str:
        try:
            if http is not None:
                return await _probe_with(http, url, timeout)
            async with httpx.AsyncClient(follow_redirects=False) as client:
                return await _probe_with(client, url, timeout)
        except httpx.TimeoutException:
            return TIMEOUT
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
            return UNREACHABLE

    return probe


async def _probe_with(http: httpx.AsyncClient, url: str, timeout: float) -> str:
    request = http.build_request("GET", url, headers={"Accept": "application/json"}, timeout=timeout)
    response = await http.send(request, stream=True, follow_redirects=False)
    await response.aclose()
    return signature(response.status_code, response.headers.get("content-type"))
