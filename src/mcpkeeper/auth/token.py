"""The token value object shared by the token client, the store and the monitor."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any

from mcpkeeper.auth.json_fields import optional_text, required_text
from mcpkeeper.sanitize import remember_secret

__all__ = ["MAX_LIFETIME", "Token", "expiry_skew", "is_b64token"]

#: Longest lifetime believed from a server (or a stored file): one year. ``expires_in:
#: 1e300`` is a server bug, and an absolute time that overflows a datetime breaks every
#: view of the workload.
MAX_LIFETIME = 365 * 86400.0
#: The share of a token's lifetime kept as margin for the request in flight.
_SKEW_FRACTION = 0.1
#: RFC 6750 §2.1 ``b64token``: the only characters a Bearer token may have.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


def is_b64token(value: str) -> bool:
    """Whether ``value`` can go in ``Authorization: Bearer`` as it is (RFC 6750 §2.1)."""
    return _B64TOKEN.fullmatch(value) is not None


def expiry_skew(token: Token, max_skew: float) -> float:
    """Margin before expiry at which ``token`` is no longer handed out.

    ``max_skew`` (5 s by default) for ordinary tokens, but never more than a tenth of the
    token's lifetime: a fixed 5 s would refuse calls for a third of a 15 s token's life.
    """
    if token.expires_at is None or token.issued_at is None:
        return max_skew
    lifetime = token.expires_at - token.issued_at
    if lifetime <= 0:
        return max_skew
    return min(max_skew, _SKEW_FRACTION * lifetime)


@dataclass(frozen=True, slots=True)
class Token:
    """An OAuth token set.

    ``expires_at`` is absolute wall-clock time (epoch seconds) rather than a lifetime, so
    a token read back from disk after a restart or a suspend still knows when it dies.
    ``None`` means the server gave no ``expires_in``: the token is assumed valid until
    the upstream rejects it.

    ``repr`` never shows the secrets: a token that reaches a log line or a traceback
    must not leak.
    """

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str | None = None
    token_type: str = "Bearer"
    issued_at: float | None = None
    #: Renewable without a refresh token: the client can simply ask again (client
    #: credentials), so the monitor renews it ahead of expiry like a refreshable one.
    renewable: bool = False

    def __post_init__(self) -> None:
        # Whatever text a server sends back from now on (an error description echoing the
        # refresh token) has these values blanked before anyone sees it.
        remember_secret(self.access_token)
        remember_secret(self.refresh_token)

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds of life left (negative once expired), or ``None`` without expiry."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    @property
    def can_renew(self) -> bool:
        """A new token can be had without the user: a refresh token, or a self-renewing grant."""
        return bool(self.refresh_token) or self.renewable

    def is_valid(self, now: float, skew: float = 0.0) -> bool:
        """Usable at ``now`` with ``skew`` seconds of margin for the request in flight."""
        return self.expires_at is None or now < self.expires_at - skew

    def merged_with(self, newer: Token) -> Token:
        """``newer`` with our refresh token kept when the server did not rotate it.

        RFC 6749 §6: the server *may* issue a new refresh token; if it does not, the old
        one stays valid and must not be forgotten.
        """
        if newer.refresh_token is None and self.refresh_token is not None:
            return replace(newer, refresh_token=self.refresh_token)
        return newer

    def to_dict(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "token_type": self.token_type,
            "issued_at": self.issued_at,
            "renewable": self.renewable,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Token:
        issued_at = _finite(data.get("issued_at"))
        expires_at = _finite(data.get("expires_at"))
        if expires_at is not None:
            # A file written by a version that stored ``Infinity`` or a far-future time.
            expires_at = min(expires_at, (issued_at if issued_at is not None else time.time()) + MAX_LIFETIME)
        scope = data.get("scope")
        return cls(
            access_token=required_text(data, "access_token", "stored token has no access_token"),
            refresh_token=optional_text(data, "refresh_token"),
            expires_at=expires_at,
            scope=scope if isinstance(scope, str) else None,
            token_type=str(data.get("token_type") or "Bearer"),
            issued_at=issued_at,
            renewable=data.get("renewable") is True,
        )


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
