"""Refuse requests a web page could have aimed at the proxy (DNS rebinding, cross-origin).

The proxy adds the user's bearer token to whatever reaches it on loopback. A web page the
user visits can make the browser send requests to ``127.0.0.1:PORT``: either directly
(cross-origin, with an ``Origin`` header naming the page) or, after DNS rebinding, under a
host name of its own (``Host: attacker.example``), in which case the page may even read
the answers. MCP's transport rules ask local servers to check both; so does this proxy:
the ``Host`` must be a loopback name and an ``Origin``, when present, a loopback origin
(a browser-based client served from localhost, such as an MCP inspector, stays usable).
MCP clients that are not browsers send no ``Origin`` at all.

Two more refusals come before anything is forwarded (:func:`request_refusal`):

* ``TRACE`` and ``CONNECT`` are never forwarded: TRACE echoes the request, headers
  included, and would carry the user's token to whatever reflects it; CONNECT asks for a
  tunnel, which is not what a reverse proxy for MCP offers;
* with a client token (``run --client-token``), a request must carry
  ``Authorization: Bearer <client token>``: loopback is reachable by every local user, and
  the token is what tells the user's own clients apart from theirs. The comparison takes
  the same time whatever the guess.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit

from mcpkeeper.proxy._replies import LocalReply

__all__ = ["client_token_refusal", "foreign_request", "request_refusal"]

_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_NEVER_FORWARDED = frozenset({"TRACE", "CONNECT"})


def request_refusal(
    method: str,
    headers: Iterable[tuple[bytes, bytes]],
    client_token: str | None = None,
    *,
    loopback_only: bool = True,
) -> LocalReply | None:
    """The reply refusing this request, or None to forward it (see the module docstring).

    ``loopback_only=False`` is for a proxy behind the gateway listener, which has
    authenticated the caller already (``mcpkeeper.gateway``): its Host is the gateway's.
    """
    if method.upper() in _NEVER_FORWARDED:
        return LocalReply(501, "method_not_forwarded", f"the mcpkeeper proxy does not forward {method}")
    if not loopback_only:
        return None
    headers = list(headers)
    foreign = foreign_request(headers)
    if foreign is not None or client_token is None:
        return foreign
    return client_token_refusal(headers, client_token)


def client_token_refusal(headers: Iterable[tuple[bytes, bytes]], client_token: str) -> LocalReply | None:
    """A 403 unless the request carries ``Authorization: Bearer <client_token>``.

    403, not 401: a 401 makes MCP clients start an OAuth flow against us, which cannot
    succeed; the message says what to send instead.
    """
    for key, value in headers:
        if key == b"authorization" and _bearer_matches(value, client_token):
            return None
    return LocalReply(
        403,
        "client_token_required",
        "this mcpkeeper workload requires its client token: send 'Authorization: Bearer <token>' "
        "as printed by `mcpkeeper run`",
    )


def _bearer_matches(value: bytes, client_token: str) -> bool:
    scheme, _, credential = value.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credential.strip(), client_token.encode())


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
