"""The OAuth token endpoint: authorization code, refresh token, client credentials, device code.

Written on httpx directly rather than through an OAuth client library because the
monitor needs the raw facts of every failure (status, content type, ``Retry-After``,
the RFC 6749 ``error``) to tell a WAF's HTML page from the server's verdict; a library
that turns everything into one exception type would hide exactly that.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from mcpkeeper.auth.errors import TokenEndpointError
from mcpkeeper.auth.token import Token

__all__ = ["DEVICE_CODE_GRANT", "MAX_TOKEN_RESPONSE_BYTES", "ClientCredentials", "TokenEndpoint"]

#: A token response is a few KiB; anything far larger is not one and is not read whole.
MAX_TOKEN_RESPONSE_BYTES = 1 << 20

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
        timeout: float = 30.0,
    ) -> None:
        self.token_url = token_url
        self.credentials = credentials
        self.resource = resource
        self._http = http
        self._timeout = httpx.Timeout(timeout)

    async def refresh(self, token: Token, *, scope: str | None = None) -> Token:
        """Spend ``token.refresh_token``; the result keeps it when the server does not rotate."""
        if not token.refresh_token:
            raise TokenEndpointError(400, oauth_error="invalid_grant", description="no refresh token stored")
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        if scope:
            form["scope"] = scope
        fresh = await self._request(form)
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

    async def client_credentials(self, *, scope: str | None = None) -> Token:
        """A token for the client itself (RFC 6749 §4.4): renewed by asking again, no refresh token."""
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        return replace(await self._request(form), renewable=True)

    async def device_code(self, device_code: str) -> Token:
        """One poll of the device authorization grant (RFC 8628 §3.4); pending is an OAuth error."""
        return await self._request({"grant_type": DEVICE_CODE_GRANT, "device_code": device_code})

    async def _request(self, form: dict[str, str]) -> Token:
        if self.resource:
            form["resource"] = self.resource  # RFC 8707
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        creds = self.credentials
        if creds.auth_method == "client_secret_basic" and creds.client_secret is not None:
            auth = httpx.BasicAuth(creds.client_id, creds.client_secret)
        elif creds.auth_method == "private_key_jwt" and creds.assertion is not None:
            form["client_id"] = creds.client_id
            form["client_assertion_type"] = _JWT_BEARER_ASSERTION
            form["client_assertion"] = creds.assertion()
        else:
            form["client_id"] = creds.client_id
            if creds.auth_method == "client_secret_post" and creds.client_secret is not None:
                form["client_secret"] = creds.client_secret
        if self._http is not None:
            return await self._send(self._http, form, headers, auth)
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
            return await self._send(http, form, headers, auth)

    async def _send(
        self,
        http: httpx.AsyncClient,
        form: dict[str, str],
        headers: dict[str, str],
        auth: httpx.Auth | None,
    ) -> Token:
        request = http.build_request(
            "POST", self.token_url, data=form, headers=headers, timeout=self._timeout
        )
        send_auth = auth if auth is not None else httpx.USE_CLIENT_DEFAULT
        response = await http.send(request, auth=send_auth, stream=True)
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
    token_type = data.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() not in ("bearer", "dpop"):
        token_type = "Bearer"
    expires_in = data.get("expires_in")
    expires_at: float | None = None
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        expires_at = issued_at + float(expires_in)
    refresh = data.get("refresh_token")
    scope = data.get("scope")
    return Token(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else None,
        token_type="Bearer" if token_type.lower() == "bearer" else "DPoP",
        issued_at=issued_at,
    )
