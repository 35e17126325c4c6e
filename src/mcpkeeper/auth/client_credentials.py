"""Logging in as a service: the client credentials grant (OAuth 2.1 §4.2, MCP auth extension SEP-1046).

For service accounts and gateways there is no user and no browser: the client proves who
it is with its secret (``client_secret_basic`` or ``client_secret_post``, as the server
prefers) or with a JWT signed by its private key (``private_key_jwt``, :mod:`.client_assertion`),
and gets a token for itself. There is no refresh token; the token is renewed by asking
again, which :class:`~mcpkeeper.auth.credentials.ClientCredentialsRefresher` does when the
monitor schedules it, ahead of expiry and with the same outage handling as any refresh.

The client is always one the user registered at the authorization server (no dynamic
registration: a secret or a key has to be agreed on beforehand). The secret is stored like
a token (0600, or the OS keyring); the private key is never copied, only its path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import httpx

from mcpkeeper.auth.client_assertion import read_private_key
from mcpkeeper.auth.credentials import CredentialStore
from mcpkeeper.auth.discovery import AuthServerMetadata
from mcpkeeper.auth.login import (
    LoginResult,
    ignore_progress,
    login_result,
    start_login,
    token_endpoint,
    token_errors,
)
from mcpkeeper.auth.login_errors import LoginError
from mcpkeeper.auth.registration import ClientRegistration, static_client

__all__ = ["perform_client_credentials_login", "service_client"]

_GRANT = "client_credentials"


def service_client(
    client_id: str,
    metadata: AuthServerMetadata,
    *,
    client_secret: str | None = None,
    private_key: Path | None = None,
) -> ClientRegistration:
    """The confidential client of a client-credentials login; exactly one of secret and key."""
    if (client_secret is None) == (private_key is None):
        raise LoginError("the client credentials grant needs a client secret or a private key (one of them)")
    if private_key is None:
        return static_client(client_id, client_secret, metadata)
    read_private_key(private_key)  # refuse an unusable key now, not at the first renewal
    methods = metadata.token_endpoint_auth_methods_supported
    if methods is not None and "private_key_jwt" not in methods:
        raise LoginError(
            f"the authorization server {metadata.issuer} does not accept private_key_jwt "
            f"(it lists: {', '.join(methods) or 'nothing'})"
        )
    return ClientRegistration(client_id, None, "private_key_jwt", private_key_path=str(private_key.resolve()))


async def perform_client_credentials_login(
    remote_url: str,
    name: str,
    *,
    store: CredentialStore,
    client_id: str,
    client_secret: str | None = None,
    private_key: Path | None = None,
    scopes: Sequence[str] | None = None,
    issuer: str | None = None,
    progress: Callable[[str], None] = ignore_progress,
    http: httpx.AsyncClient | None = None,
) -> LoginResult:
    """Get a token for the client itself and store it as workload ``name`` (nothing stored on failure)."""
    start = await start_login(
        remote_url, name, store=store, scopes=scopes, issuer=issuer, http=http, progress=progress
    )
    if isinstance(start, LoginResult):
        return start
    found, warnings = start.found, start.warnings
    grants = found.metadata.grant_types_supported
    if grants is not None and _GRANT not in grants:
        raise LoginError(
            f"the authorization server {found.metadata.issuer} does not offer the {_GRANT} grant"
        )
    client = service_client(client_id, found.metadata, client_secret=client_secret, private_key=private_key)
    progress(f"Requesting a token for client {client_id} ({client.auth_method})…")
    endpoint = token_endpoint(found, client.credentials_for(found.metadata.issuer), http)
    # No refresh token in this grant, so nothing to ask offline_access for.
    found = replace(found, scopes=tuple(s for s in found.scopes if s != "offline_access"))
    with token_errors(found, "the token endpoint refused the client credentials"):
        token = await endpoint.client_credentials(scope=" ".join(found.scopes) or None)
    return login_result(
        store, name, found, client, token, registered=False, warnings=warnings, grant="client_credentials"
    )
