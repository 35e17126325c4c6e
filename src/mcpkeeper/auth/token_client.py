"""The OAuth token endpoint: authorization code, refresh token, client credentials, device code.

Written on httpx directly rather than through an OAuth client library because the
monitor needs the raw facts of every failure (status, content type, ``Retry-After``,
the RFC 6749 ``error``) to tell a WAF's HTML page from the server's verdict; a library
that turns everything into one exception type would hide exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from mcpkeeper.auth.errors import AttemptAbandonedError, TokenEndpointError, UnusableTokenError
from mcpkeeper.auth.json_fields import optional_text
from mcpkeeper.auth.progress import RequestProgress
from mcpkeeper.auth.token import MAX_LIFETIME, Token, is_b64token
from mcpkeeper.sanitize import server_text

__all__ = [
    "DEFAULT_TOKEN_TIMEOUT",
    "DEVICE_CODE_GRANT",
    "MAX_TOKEN_RESPONSE_BYTES",
    "ClientCredentials",
    "TokenEndpoint",
    "authenticate_client",
]

_log = logging.getLogger(__name__)

#: A token response is a few KiB; anything far larger is not one and is not read whole.
MAX_TOKEN_RESPONSE_BYTES = 1 << 20
#: Token endpoints answer in well under a second; a request still unanswered after this is
#: hung, and waiting longer only delays the next attempt (and every client queued behind it).
DEFAULT_TOKEN_TIMEOUT = 10.0

AuthMethod = Literal["none", "client_secret_post", "client_secret_basic", "private_key_jwt"]
_JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    client_secret: str | None = None
    auth_method: AuthMethod = "none"
    #: ``private_key_jwt``: makes a fresh signed client assertion for each request.
    assertion: Callable[[], str] | None = None

    def __repr__(self) -> str:  # the secret never reaches a log line
        return f"ClientCredentials(client_id={self.client_id!r}, auth_method={self.auth_method!r})"


class TokenEndpoint:
    """One authorization server's token endpoint, for one client."""

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        *,
        resource: str | None = None,
        http: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TOKEN_TIMEOUT,
    ) -> None:
        self.token_url = token_url
        self.credentials = credentials
        self.resource = resource
        self._http = http
        self._timeout = httpx.Timeout(timeout)

    async def refresh(
        self, token: Token, *, scope: str | None = None, progress: RequestProgress | None = None
    ) -> Token:
        """Spend ``token.refresh_token``; the result keeps it when the server does not rotate.

        ``progress`` lets the monitor see whether the request was sent and abandon it while
        it was not (see :mod:`mcpkeeper.auth.progress`).
        """
        if not token.refresh_token:
            raise TokenEndpointError(400, oauth_error="invalid_grant", description="no refresh token stored")
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        if scope:
            form["scope"] = scope
        fresh = await self._request(form, progress)
        return token.merged_with(fresh)

    async def exchange_code(self, code: str, *, redirect_uri: str, code_verifier: str) -> Token:
        return await self._request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    async def client_credentials(
        self, *, scope: str | None = None, progress: RequestProgress | None = None
    ) -> Token:
        """A token for the client itself (RFC 6749 §4.4): renewed by asking again, no refresh token."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        return replace(await self._request(form, progress), renewable=True)

    async def device_code(self, device_code: str) -> Token:
        """One poll of the device authorization grant (RFC 8628 §3.4); pending is an OAuth error."""
        return await self._request({"grant_type": DEVICE_CODE_GRANT, "device_code": device_code})

    async def _request(self, form: dict[str, str], progress: RequestProgress | None = None) -> Token:
        if self.resource:
            form["resource"] = self.resource  # RFC 8707
        headers = {"Accept": "application/json"}
        auth = authenticate_client(form, self.credentials)
        if self._http is not None:
            return await self._send(self._http, form, headers, auth, progress)
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
            return await self._send(http, form, headers, auth, progress)

    async def _send(
        self,
        http: httpx.AsyncClient,
        form: dict[str, str],
        headers: dict[str, str],
        auth: httpx.Auth | None,
        progress: RequestProgress | None,
    ) -> Token:
        extensions = {"trace": progress.trace} if progress is not None else None
        request = http.build_request(
            "POST", self.token_url, data=form, headers=headers, timeout=self._timeout, extensions=extensions
        )
        send_auth = auth if auth is not None else httpx.USE_CLIENT_DEFAULT
        sending = http.send(request, auth=send_auth, stream=True)
        if progress is None:
            response = await sending
        else:
            response = await _abandonable(sending, progress)
        try:
            body = await _read_capped(response)
        finally:
            await response.aclose()
        if body is None:
            raise TokenEndpointError(
                response.status_code, detail=f"with a body over {MAX_TOKEN_RESPONSE_BYTES} bytes"
            )
        response._content = body  # the stream is consumed; expose the capped body for parsing
        if response.status_code != 200:
            raise TokenEndpointError.from_response(response)
        return _parse_token_response(response, issued_at=time.time())


def authenticate_client(form: dict[str, str], creds: ClientCredentials) -> httpx.Auth | None:
    """Add the client's authentication to a token-endpoint-style ``form`` (RFC 6749 §2.3);
    returns the HTTP Basic auth to send, for ``client_secret_basic``.

    Shared by every request a client authenticates like a token request (RFC 7009 revocation too).
    """
    if creds.auth_method == "client_secret_basic" and creds.client_secret is not None:
        return httpx.BasicAuth(creds.client_id, creds.client_secret)
    form["client_id"] = creds.client_id
    if creds.auth_method == "private_key_jwt" and creds.assertion is not None:
        form["client_assertion_type"] = _JWT_BEARER_ASSERTION
        form["client_assertion"] = creds.assertion()
    elif creds.auth_method == "client_secret_post" and creds.client_secret is not None:
        form["client_secret"] = creds.client_secret
    return None


async def _abandonable(
    sending: Coroutine[Any, Any, httpx.Response], progress: RequestProgress
) -> httpx.Response:
    """Await the response headers, unless the monitor abandons the request first.

    An abandon request is honoured while the body was not completely sent (nothing the
    server could act on), or when the monitor says a resend is safe anyway
    (``even_if_sent``: a non-rotating server, or one with a reuse grace).
    """
    task: asyncio.Task[httpx.Response] = asyncio.ensure_future(sending)
    watcher = asyncio.ensure_future(progress.abandoned.wait())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done() and progress.may_abandon():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await task
            raise AttemptAbandonedError(
                "abandoned before the server could act on it" if not progress.sent else "abandoned"
            )
        return await task
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()


async def _read_capped(response: httpx.Response) -> bytes | None:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_TOKEN_RESPONSE_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > MAX_TOKEN_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    # Rare for token endpoints; decode through httpx's decoders via a fresh response.
    decoded = httpx.Response(response.status_code, headers=response.headers, content=raw)
    return decoded.read()


def _parse_token_response(response: httpx.Response, *, issued_at: float) -> Token:
    try:
        data: Any = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise TokenEndpointError.from_response(response, detail="with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise TokenEndpointError(response.status_code, detail="with JSON that is not an object")
    if isinstance(data.get("error"), str):
        # Some servers answer 200 with an error object; honour the error code.
        raise TokenEndpointError.from_response(response)
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenEndpointError(response.status_code, detail="with no access_token in the response")
    _check_token_type(data.get("token_type"))
    if not is_b64token(access):
        raise UnusableTokenError(
            "the access token has characters a Bearer token may not contain (RFC 6750 §2.1): "
            "a fault of the authorization server"
        )
    lifetime = _lifetime(data.get("expires_in"))
    scope = data.get("scope")
    return Token(
        access_token=access,
        refresh_token=optional_text(data, "refresh_token"),
        expires_at=issued_at + lifetime if lifetime is not None else None,
        scope=scope if isinstance(scope, str) else None,
        token_type="Bearer",
        issued_at=issued_at,
    )


def _check_token_type(token_type: object) -> None:
    """Bearer (any case) or absent; anything else cannot be sent as ``Authorization: Bearer``."""
    if token_type is None or (isinstance(token_type, str) and token_type.lower() == "bearer"):
        return
    if isinstance(token_type, str) and token_type.lower() == "dpop":
        raise UnusableTokenError(
            "the token is DPoP-bound; mcpkeeper sends Bearer tokens only (no DPoP support)"
        )
    raise UnusableTokenError(
        f"token_type {server_text(repr(token_type), 40)} is not Bearer; "
        "only Bearer tokens (RFC 6750) can be used"
    )


def _lifetime(expires_in: object) -> float | None:
    """``expires_in`` in seconds, clamped to a year; None (no expiry known) when unusable.

    Numeric strings are accepted (several servers send them). NaN, infinities, zero and
    negative values are ignored with a warning: the token is then refreshed when the
    upstream rejects it, which beats trusting a nonsensical number.
    """
    if expires_in is None:
        return None
    value: float | None = None
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
        value = float(expires_in)
    elif isinstance(expires_in, str):
        with contextlib.suppress(ValueError):
            value = float(expires_in.strip())
    if value is None or not math.isfinite(value) or value <= 0:
        _log.warning(
            "the token endpoint sent expires_in=%s, not a positive number of seconds; treating "
            "the token as having no known expiry",
            server_text(repr(expires_in), 40),
        )
        return None
    if value > MAX_LIFETIME:
        _log.warning("the token endpoint sent expires_in=%.0f; using one year instead", value)
        return MAX_LIFETIME
    return value
