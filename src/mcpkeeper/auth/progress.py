"""How far one token request got, so the monitor knows whether abandoning it is safe.

A refresh request that hangs may or may not have reached the authorization server. If its
body was never completely written (still connecting, stuck in a TLS handshake, a
black-holed SYN after a VPN drop), the server cannot have processed it: the refresh token
is unspent and a new request with it is safe. Once the body is on the wire, the server may
have rotated the token and only the response would tell us the new one; sending the old
token again in parallel could count as reuse, which strict servers answer by revoking the
whole grant. :class:`RequestProgress` carries that one fact (``sent``) from the token client
to the monitor, and the monitor's decision (``abandon``) back.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["RequestProgress"]


class RequestProgress:
    """Shared by one token request and the monitor that started it."""

    def __init__(self) -> None:
        #: The request body was completely written: the server may act on it.
        self.sent = False
        self._abandon = asyncio.Event()
        self._even_if_sent = False

    def abandon(self, *, even_if_sent: bool = False) -> None:
        """Ask the request to give up: while it was not sent, or always with ``even_if_sent``
        (the monitor knows a resend is safe: the server does not rotate, or has a reuse grace)."""
        self._even_if_sent = self._even_if_sent or even_if_sent
        self._abandon.set()

    def may_abandon(self) -> bool:
        return self._abandon.is_set() and (not self.sent or self._even_if_sent)

    @property
    def abandoned(self) -> asyncio.Event:
        return self._abandon

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's ``trace`` request extension (httpcore emits one event per step).

        ``send_request_body.complete`` of the POST marks the request sent; a proxy's
        ``CONNECT`` (which also has a, bodiless, request) does not.
        """
        if event.endswith("send_request_body.complete"):
            request = info.get("request")
            if getattr(request, "method", b"POST") != b"CONNECT":
                self.sent = True
