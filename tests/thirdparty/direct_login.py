"""A PKCE login against the oidc-provider stack without mcpkeeper, to check the oracle itself.

The harness tests use it to show the server is configured as claimed (PKCE required,
rotation without reuse grace, tokens bound to the MCP server's URL) before the outage
tests trust it to judge mcpkeeper.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

__all__ = ["authorize", "direct_login", "register"]

_REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the code is read from the Location
_MAX_HOPS = 10


async def register(http: httpx.AsyncClient, issuer: str) -> tuple[dict[str, Any], str]:
    """(server metadata, client_id of a new public client)."""
    metadata: dict[str, Any] = (await http.get(f"{issuer}/.well-known/oauth-authorization-server")).json()
    answer = await http.post(
        metadata["registration_endpoint"],
        json={
            "redirect_uris": [_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": "mcp:tools offline_access",
        },
    )
    answer.raise_for_status()
    return metadata, str(answer.json()["client_id"])


async def authorize(
    http: httpx.AsyncClient, metadata: dict[str, Any], client_id: str, resource: str, *, pkce: bool = True
) -> tuple[str | None, str | None, dict[str, list[str]]]:
    """Follow the authorize redirects (cookies kept); (code, verifier, final query)."""
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": _REDIRECT,
        "scope": "mcp:tools offline_access",
        "state": secrets.token_urlsafe(16),
        "resource": resource,
    }
    if pkce:
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params.update(code_challenge=challenge, code_challenge_method="S256")
    url = f"{metadata['authorization_endpoint']}?{urlencode(params)}"
    for _ in range(_MAX_HOPS):
        answer = await http.get(url)
        location = answer.headers.get("location")
        if location is None:
            query = parse_qs(urlsplit(str(answer.url)).query)
            return None, None, {**query, "body": [answer.text[:500]]}
        url = urljoin(url, location)
        if url.startswith(_REDIRECT):
            query = parse_qs(urlsplit(url).query)
            return (query.get("code") or [None])[0], verifier, query
    raise AssertionError("too many redirects during the authorization")


async def direct_login(http: httpx.AsyncClient, issuer: str, resource: str) -> tuple[str, dict[str, Any]]:
    """(client_id, token response) after a full PKCE login for ``resource``."""
    metadata, client_id = await register(http, issuer)
    code, verifier, query = await authorize(http, metadata, client_id, resource)
    assert code is not None and verifier is not None, query
    answer = await http.post(
        metadata["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": _REDIRECT,
            "client_id": client_id,
            "resource": resource,
        },
    )
    answer.raise_for_status()
    return client_id, answer.json()
