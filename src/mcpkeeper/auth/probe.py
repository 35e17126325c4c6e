"""The cheap "is the network back?" check used while a refresh fails at network level.

Resolving the token endpoint's host and opening a TCP connection tells us the VPN, Wi-Fi
or DNS is back without sending an HTTP request, so the monitor can poll it every few
seconds (DESIGN §3 "Retrying") without hammering the authorization server or spending
anything. TLS is deliberately not attempted: a handshake is not needed to know the
network path works, and the real refresh that follows does it anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from mcpkeeper.auth.protocols import ReachabilityProbe

__all__ = ["tcp_probe"]


def tcp_probe(url: str, timeout: float = 2.0) -> ReachabilityProbe:
    """A probe that resolves ``url``'s host and connects to its port (443/80 by default).

    The probe returns True or False and never raises (except on cancellation).
    """
    host, port = _host_port(url)

    async def probe() -> bool:
        if host is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(host, port)
        except Exception:  # DNS, refused, unreachable, timeout, a bad host name: all "not yet"
            return False
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout):
                await writer.wait_closed()
        return True

    return probe


def _host_port(url: str) -> tuple[str | None, int]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None, 0
    default = 443 if parts.scheme.lower() == "https" else 80
    return parts.hostname, port or default
