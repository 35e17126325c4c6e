"""Refuse requests a web page could have aimed at the proxy (DNS rebinding, cross-origin).

The proxy adds the user's bearer token to whatever reaches it on loopback. A web page the
user visits can make the browser send requests to ``127.0.0.1:PORT``: either directly
(cross-origin, with an ``Origin`` header naming the page) or, after DNS rebinding, under a
host name of its own (``Host: attacker.example``), in which case the page may even read
the answers. MCP's transport rules ask local servers to check both; so does this proxy:
the ``Host`` must be a loopback name and an ``Origin``, when present, a loopback origin
(a browser-based client served from localhost, such as an MCP inspector, stays usable).
MCP clients that are not browsers send no ``Origin`` at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import urlsplit

from mcpkeeper.proxy._replies import LocalReply

__all__ = ["foreign_request"]

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def foreign_request(headers: Iterable[tuple[bytes, bytes]]) -> LocalReply | None:
    """A 403 for a request whose ``Host`` or ``Origin`` is not loopback, else None."""
    host = origin = None
    for key, value in headers:
        if key == b"host":
            host = value
        elif key == b"origin":
            origin = value
    if host is not None and not _is_loopback_authority(host.decode("latin-1")):
        return LocalReply(403, "forbidden_host", "the mcpkeeper proxy answers only to a loopback Host")
    if origin is not None and not _is_loopback_origin(origin.decode("latin-1")):
        return LocalReply(403, "forbidden_origin", "the mcpkeeper proxy refuses requests from web pages")
    return None


# Cached: every request asks, with one of the few Host and Origin values its clients use.
@functools.lru_cache(maxsize=256)
def _is_loopback_authority(authority: str) -> bool:
    try:
        hostname = urlsplit(f"//{authority}").hostname
    except ValueError:
        return False
    return hostname in _LOOPBACK_NAMES


@functools.lru_cache(maxsize=256)
def _is_loopback_origin(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in _LOOPBACK_NAMES
