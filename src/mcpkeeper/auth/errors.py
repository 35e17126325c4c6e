"""What went wrong with a token request, and whether waiting can fix it.

The whole product rests on one distinction: a *transient* failure (the network, a
proxy, an overloaded server) clears by itself and must never cost the user a login,
while a *permanent* one is the authorization server's verdict on our grant and no
amount of retrying changes it. :func:`classify` draws that line in one pure function,
table-tested in ``tests/integration/test_taxonomy.py`` against real servers (the table is in
``docs/architecture.md``, "Error taxonomy").

The rule of thumb behind the table: only a well-formed RFC 6749 error object from the
authorization server itself is a verdict. Anything else that answers 4xx (a WAF's HTML
page, a captive portal, an empty body) is some box in between and says nothing about
our refresh token.

A third kind sits beside them: ``storage``, a failure of *our* disk (full, read-only, an
I/O error) while reading or saving the stored login. It is transient (space comes back)
but it is neither the network nor the server, and the status says so.

Every text that came from a server goes through :func:`mcpkeeper.sanitize.server_text`
before it becomes part of an exception message: a ``error_description`` that echoes the
refresh token, or carries ANSI escapes and newlines, never reaches a status, a log line or
a client.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import httpx

from mcpkeeper.sanitize import server_text

if TYPE_CHECKING:
    from mcpkeeper.auth.token import Token

__all__ = [
    "AttemptAbandonedError",
    "AuthRetryingError",
    "Failure",
    "FailureKind",
    "PeerRefreshFailedError",
    "PeerRefreshPendingError",
    "RefreshInDoubtError",
    "SharedStoreError",
    "StorageError",
    "TokenEndpointError",
    "TokenNotSavedError",
    "TokenUnavailableError",
    "UnauthenticatedError",
    "UnusableTokenError",
    "classify",
    "parse_retry_after",
]

# RFC 6749 §5.2 codes that the server uses to say "not now" rather than "no".
_TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
_TRANSIENT_STATUSES = frozenset({408, 425, 429})
_MAX_DESCRIPTION = 200

#: What the endpoint looked like when it failed, in the reachability probe's terms
#: (:mod:`mcpkeeper.auth.probe`): the monitor compares the two to tell whether the probe
#: can see the outage.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"


def signature(status_code: int, content_type: str | None) -> str:
    """``http <status> <media type>``: an HTTP answer as the probe and a failure describe it."""
    media = (content_type or "").split(";", 1)[0].strip().lower() or "-"
    return f"http {status_code} {media}"


class FailureKind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    #: Our own disk failed (reading or saving the stored login): transient, but local.
    STORAGE = "storage"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure.

    ``network`` marks failures below HTTP (DNS, refused, unreachable). ``signature`` is
    how the endpoint looked (``unreachable``, ``timeout``, ``http 403 text/html``), in the
    terms of the reachability probe. ``retry_after`` is the server's own ``Retry-After``
    in seconds, when it sent one.
    """

    kind: FailureKind
    reason: str
    network: bool = False
    retry_after: float | None = None
    oauth_error: str | None = None
    status_code: int | None = None
    signature: str | None = None

    @property
    def transient(self) -> bool:
        """Waiting can fix it (a network or server blip, or our disk filling up)."""
        return self.kind in (FailureKind.TRANSIENT, FailureKind.STORAGE)

    @property
    def permanent(self) -> bool:
        return self.kind is FailureKind.PERMANENT


class TokenEndpointError(Exception):
    """The token endpoint answered over HTTP, but not with a usable token.

    Built from the response by :meth:`from_response`; it keeps only what classification
    and the user need (status, RFC 6749 ``error``, a short description, ``Retry-After``),
    never the body itself, which may echo credentials.
    """

    def __init__(
        self,
        status_code: int,
        *,
        oauth_error: str | None = None,
        description: str | None = None,
        retry_after: float | None = None,
        detail: str = "",
        content_type: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.content_type = content_type
        self.oauth_error = server_text(oauth_error, 64) if oauth_error else None
        self.description = server_text(description, _MAX_DESCRIPTION) if description else None
        self.retry_after = retry_after
        self.detail = server_text(detail) if detail else ""
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [f"token endpoint answered HTTP {self.status_code}"]
        if self.oauth_error:
            parts.append(f"error={self.oauth_error}")
        if self.description:
            parts.append(f"({self.description})")
        if self.detail:
            parts.append(self.detail)
        return " ".join(parts)

    @classmethod
    def from_response(cls, response: httpx.Response, *, detail: str = "") -> TokenEndpointError:
        """Describe an error response (the body must already be read)."""
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        content_type = response.headers.get("content-type")
        error_obj = _oauth_error_object(response)
        if error_obj is None:
            kind = _describe_body(response)
            return cls(
                response.status_code,
                retry_after=retry_after,
                detail=detail or kind,
                content_type=content_type,
            )
        code, description = error_obj
        return cls(
            response.status_code,
            oauth_error=code,
            description=description,
            retry_after=retry_after,
            detail=detail,
            content_type=content_type,
        )


class StorageError(Exception):
    """Our disk failed while reading or writing the stored login (no token was spent).

    Raised by the refresher around its own file or keyring operations, so that
    :func:`classify` can tell a full disk from a network failure (both are ``OSError``).
    """

    def __init__(self, action: str, cause: BaseException) -> None:
        self.action = action
        self.cause = cause
        super().__init__(f"{action}: {_short(cause)}")


class SharedStoreError(StorageError):
    """The shared state store (a gateway's Redis) did not answer: no token was spent.

    Transient and, unlike our own disk, reached over the network: the monitor probes it
    (the store answering again is a change the probe sees) so recovery follows the store
    within seconds. The status reason says "state store unreachable".
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__("state store unreachable", cause)


class PeerRefreshPendingError(Exception):
    """Another gateway replica holds the grant's refresh and has not finished (transient)."""


class PeerRefreshFailedError(Exception):
    """The refresh another gateway replica made for this grant failed: the same verdict here.

    Carries the holder's classified :class:`Failure`, so a follower's monitor goes through
    the same states (short retry, ``auth_retrying``, ``unauthenticated``) without sending a
    request of its own: one attempt per grant across the cluster.
    """

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        super().__init__(failure.reason)


class RefreshInDoubtError(Exception):
    """A refresh another replica sent may have spent the refresh token, and its result was lost.

    Permanent: sending the token again could be the reuse a rotating server punishes, and
    nothing but a new login brings a lost token back (see ``mcpkeeper.auth.cluster_refresher``).
    """


class TokenNotSavedError(Exception):
    """The server issued ``token``, but saving it failed: use it, and keep trying to save.

    Not a failed refresh: the old refresh token is spent (a rotating server rejects it from
    now on), so dropping ``token`` would lose the grant. The monitor applies ``token`` as a
    success and calls :attr:`retry_save` with back-off until the disk takes it.
    """

    def __init__(self, token: Token, cause: BaseException, retry_save: Callable[[], Awaitable[None]]) -> None:
        self.token = token
        self.cause = cause
        self.retry_save = retry_save
        super().__init__(f"the new token could not be saved: {_short(cause)}")


class UnusableTokenError(Exception):
    """The server issued a token we cannot use, and asking again yields the same (permanent).

    A ``token_type`` other than Bearer (DPoP is not supported), or an access token with
    characters that cannot go in an ``Authorization: Bearer`` header: the server's fault,
    named as such, rather than a misleading 502 from every later request.
    """


class AttemptAbandonedError(Exception):
    """The monitor gave up on a refresh request before the server could have processed it.

    Raised by the token client when told to abandon a request whose body had not yet been
    written completely (still connecting, or mid-handshake): the refresh token was not spent.
    """


class TokenUnavailableError(Exception):
    """Raised to a caller that asked for a token when none can be given right now.

    ``retry_after`` is the number of seconds until the monitor's next attempt (``None``
    when nothing will happen without the user). The proxy turns it into
    ``503 Service Unavailable`` with ``Retry-After``; it never becomes a 401, which would
    make MCP clients start an OAuth flow of their own against us.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class AuthRetryingError(TokenUnavailableError):
    """No valid token while the monitor retries a transient failure."""


class UnauthenticatedError(TokenUnavailableError):
    """The grant is dead (a permanent verdict or the ceiling); only a new login helps."""


def classify(exc: BaseException) -> Failure:
    """Sort any exception from a token request into transient / permanent / cancelled.

    Pure: no I/O, no state, the same answer for the same exception.
    """
    if isinstance(exc, asyncio.CancelledError):
        return Failure(FailureKind.CANCELLED, "cancelled")
    if isinstance(exc, TokenEndpointError):
        return _classify_endpoint_error(exc)
    if isinstance(exc, UnusableTokenError):
        return Failure(FailureKind.PERMANENT, f"unusable token from the authorization server: {exc}")
    if isinstance(exc, SharedStoreError):
        return Failure(FailureKind.STORAGE, str(exc), network=True, signature=UNREACHABLE)
    if isinstance(exc, StorageError):
        return Failure(FailureKind.STORAGE, f"local storage error: {exc}")
    if isinstance(exc, PeerRefreshFailedError):
        return exc.failure
    if isinstance(exc, RefreshInDoubtError):
        return Failure(FailureKind.PERMANENT, str(exc))
    if isinstance(exc, PeerRefreshPendingError):
        return Failure(FailureKind.TRANSIENT, str(exc))
    if isinstance(exc, AttemptAbandonedError):
        return Failure(FailureKind.TRANSIENT, f"token request abandoned: {_short(exc)}", network=True)
    network = _classify_network(exc)
    if network is not None:
        return network
    # An exception we do not know (a bug of ours, a library surprise) must not end a grant
    # the authorization server still honours: keep retrying and say what happened.
    return Failure(FailureKind.TRANSIENT, f"unexpected error: {type(exc).__name__}: {_short(exc)}")


def _classify_network(exc: BaseException) -> Failure | None:
    if _tls_verification_failure(exc):
        return Failure(
            FailureKind.PERMANENT,
            f"TLS certificate verification failed for the token endpoint: {_short(exc)}",
        )
    transient = FailureKind.TRANSIENT
    if isinstance(exc, httpx.ConnectTimeout):
        return Failure(
            transient, "timed out connecting to the token endpoint", network=True, signature=TIMEOUT
        )
    if isinstance(exc, httpx.TimeoutException):
        # The server accepted the connection and then went quiet ("hang"): not the network.
        return Failure(transient, f"token endpoint timed out ({type(exc).__name__})", signature=TIMEOUT)
    if isinstance(exc, httpx.ConnectError):
        return Failure(
            transient,
            f"cannot connect to the token endpoint: {_short(exc)}",
            network=True,
            signature=UNREACHABLE,
        )
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        return Failure(
            transient,
            f"connection to the token endpoint failed: {_short(exc)}",
            network=True,
            signature=UNREACHABLE,
        )
    if isinstance(exc, httpx.TransportError | OSError):
        return Failure(transient, f"network error: {_short(exc)}", network=True, signature=UNREACHABLE)
    return None


def _classify_endpoint_error(exc: TokenEndpointError) -> Failure:
    status = exc.status_code
    common: dict[str, Any] = {
        "retry_after": exc.retry_after,
        "oauth_error": exc.oauth_error,
        "status_code": status,
        "signature": signature(status, exc.content_type),
    }
    reason = str(exc)
    if exc.oauth_error in _TRANSIENT_OAUTH_ERRORS:
        return Failure(FailureKind.TRANSIENT, reason, **common)
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return Failure(FailureKind.TRANSIENT, reason, **common)
    if 400 <= status < 500:
        if exc.oauth_error is not None:
            return Failure(FailureKind.PERMANENT, reason, **common)
        return Failure(FailureKind.TRANSIENT, reason + " (not an OAuth error: a proxy or WAF?)", **common)
    # 2xx without a usable token, or a redirect (captive portal): not the server's verdict.
    return Failure(FailureKind.TRANSIENT, reason, **common)


def _oauth_error_object(response: httpx.Response) -> tuple[str, str | None] | None:
    """The RFC 6749 §5.2 ``(error, error_description)`` if the body is one, else None."""
    try:
        data = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    code = data.get("error")
    if not isinstance(code, str) or not code.strip():
        return None
    description = data.get("error_description")
    description = description if isinstance(description, str) else None
    return code.strip()[:64], description


def _describe_body(response: httpx.Response) -> str:
    ctype = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    if not response.content:
        return "with an empty body"
    return f"with a non-OAuth body ({ctype}, {len(response.content)} bytes)"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _tls_verification_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _short(exc: BaseException) -> str:
    return server_text(str(exc) or type(exc).__name__, _MAX_DESCRIPTION)
