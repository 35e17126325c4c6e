"""Telling the authorization server a login is over: OAuth 2.0 token revocation (RFC 7009).

``mcpkeeper logout`` and ``rm`` delete the stored login; the tokens themselves stay valid
at the server until they expire (a refresh token often for months) unless the server is
told. Where its metadata names a ``revocation_endpoint``, the refresh token is revoked
first (RFC 7009 §2.1: servers revoke the access tokens of the same grant with it), then
the access token. The client authenticates exactly as at the token endpoint.

Revocation is a courtesy that must not keep a user from logging out: every outcome is
reported (revoked, not offered, failed and why) and nothing here raises for the server's
answer. RFC 7009 §2.2: a server answers 200 for a token it does not know (already
expired or revoked), so 200 is "revoked" whatever the token's state was.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

import httpx

from mcpkeeper.auth.credentials import StoredLogin
from mcpkeeper.auth.discovery import fetch_authorization_server_metadata
from mcpkeeper.auth.login_errors import LoginError
from mcpkeeper.auth.token_client import authenticate_client
from mcpkeeper.sanitize import server_text

__all__ = ["RevocationOutcome", "revoke_login"]

_TIMEOUT = 10.0
_REASON_LIMIT = 200

Outcome = Literal["revoked", "not_offered", "failed"]


@dataclass(frozen=True, slots=True)
class RevocationOutcome:
    """What became of one login's tokens at the server; ``detail`` is one line for people."""

    outcome: Outcome
    detail: str
    #: The token types the server confirmed (``refresh_token``, ``access_token``).
    revoked: tuple[str, ...] = ()
    endpoint: str | None = None


async def revoke_login(login: StoredLogin, *, http: httpx.AsyncClient | None = None) -> RevocationOutcome:
    """Revoke ``login``'s tokens where its authorization server offers RFC 7009 revocation."""
    token = login.token
    if token is None:
        return RevocationOutcome("not_offered", "no token stored: nothing to revoke")
    async with _client(http) as client:
        try:
            metadata = await fetch_authorization_server_metadata(login.issuer, http=client)
        except LoginError as exc:
            return RevocationOutcome("failed", f"cannot read {login.issuer}'s metadata: {exc}")
        except httpx.HTTPError as exc:
            return RevocationOutcome("failed", f"cannot reach {login.issuer}: {type(exc).__name__}")
        endpoint = metadata.revocation_endpoint
        if endpoint is None:
            return RevocationOutcome(
                "not_offered",
                f"{login.issuer} offers no token revocation (RFC 7009); the tokens expire by themselves",
            )
        pairs = [("refresh_token", token.refresh_token), ("access_token", token.access_token)]
        revoked: list[str] = []
        for hint, value in pairs:
            if not value:
                continue
            problem = await _revoke(client, endpoint, login, value, hint)
            if problem is not None:
                done = f" ({', '.join(revoked)} revoked)" if revoked else ""
                return RevocationOutcome(
                    "failed", f"revoking the {hint} at {endpoint}: {problem}{done}", tuple(revoked), endpoint
                )
            revoked.append(hint)
    return RevocationOutcome("revoked", f"revoked at {endpoint}", tuple(revoked), endpoint)


async def _revoke(
    client: httpx.AsyncClient, endpoint: str, login: StoredLogin, token: str, hint: str
) -> str | None:
    """One revocation request; None when the server confirms, else why not (one line)."""
    form = {"token": token, "token_type_hint": hint}
    auth = authenticate_client(form, login.client.credentials_for(login.issuer))
    try:
        response = await client.post(
            endpoint,
            data=form,
            headers={"Accept": "application/json"},
            auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
        )
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    if response.status_code == 200:
        return None
    return f"HTTP {response.status_code} {_oauth_error(response)}".strip()


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return ""
    description = body.get("error_description")
    text = body["error"] + (f": {description}" if isinstance(description, str) else "")
    return server_text(text, _REASON_LIMIT)


@contextlib.asynccontextmanager
async def _client(http: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The caller's client, or one of our own (no redirects: a token goes nowhere else)."""
    if http is not None:
        yield http
        return
    async with httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=False) as own:
        yield own
