"""Who we are to the authorization server: a static client, or one we register (RFC 7591).

Without a client id from the user, mcpkeeper registers itself as a *public* client
(``token_endpoint_auth_method: none``; PKCE protects the code instead of a secret) with a
loopback redirect URI. The registration is cached with the workload's login and reused by
later logins, so the authorization server does not collect a new client per login.

Registrations can go stale (an administrator purges them, the server forgets dynamic
clients): the token endpoint then answers ``invalid_client``. :func:`rejected_registration_reason`
turns that into the status reason that tells the user ``mcpkeeper login NAME`` fixes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, get_args

import httpx

from mcpkeeper.auth.client_assertion import PrivateKeyJwt
from mcpkeeper.auth.discovery import AuthServerMetadata
from mcpkeeper.auth.errors import Failure
from mcpkeeper.auth.http_fetch import HttpAnswer, json_object, request_capped
from mcpkeeper.auth.json_fields import optional_text, required_text, text_list
from mcpkeeper.auth.login_errors import RegistrationError
from mcpkeeper.auth.netpolicy import require_secure_endpoint
from mcpkeeper.auth.token_client import AuthMethod, ClientCredentials

__all__ = [
    "CLIENT_NAME",
    "ClientRegistration",
    "is_registration_rejected",
    "register_client",
    "rejected_registration_reason",
    "rejection_hint",
    "require_s256",
    "static_client",
]

CLIENT_NAME = "mcpkeeper"
_GRANT_TYPES = ("authorization_code", "refresh_token")
_REJECTED_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})
_AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)
_MAX_DESCRIPTION = 200


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """The client mcpkeeper uses at one authorization server; ``repr`` hides the secret."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    auth_method: AuthMethod = "none"
    registration_endpoint: str | None = None
    redirect_uris: tuple[str, ...] = ()
    dynamic: bool = False
    #: The client id is the URL of a Client ID Metadata Document (no registration happened).
    metadata_document: bool = False
    #: ``private_key_jwt``: the user's key file (the key itself is never copied).
    private_key_path: str | None = None

    @property
    def credentials(self) -> ClientCredentials:
        return ClientCredentials(self.client_id, self.client_secret, self.auth_method)

    def credentials_for(self, issuer: str) -> ClientCredentials:
        """The credentials for requests to ``issuer`` (the audience of a ``private_key_jwt``)."""
        if self.auth_method == "private_key_jwt" and self.private_key_path is not None:
            assertion = PrivateKeyJwt(self.client_id, Path(self.private_key_path), issuer)
            return ClientCredentials(self.client_id, None, "private_key_jwt", assertion)
        return self.credentials

    def accepts_redirect_uri(self, redirect_uri: str) -> bool:
        """Registered exactly (we never rely on the server's port leniency for loopback)."""
        return not self.dynamic or redirect_uri in self.redirect_uris

    def to_dict(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "auth_method": self.auth_method,
            "registration_endpoint": self.registration_endpoint,
            "redirect_uris": list(self.redirect_uris),
            "dynamic": self.dynamic,
            "metadata_document": self.metadata_document,
            "private_key_path": self.private_key_path,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientRegistration:
        return cls(
            client_id=required_text(data, "client_id", "client registration has no client_id"),
            client_secret=optional_text(data, "client_secret"),
            auth_method=_auth_method(data.get("auth_method"), default="none"),
            registration_endpoint=optional_text(data, "registration_endpoint"),
            redirect_uris=text_list(data, "redirect_uris"),
            dynamic=data.get("dynamic") is True,
            metadata_document=data.get("metadata_document") is True,
            private_key_path=optional_text(data, "private_key_path"),
        )


def require_s256(metadata: AuthServerMetadata) -> None:
    """PKCE with S256 is not optional for us (OAuth 2.1, MCP authorization spec)."""
    if not metadata.supports_s256:
        methods = ", ".join(metadata.code_challenge_methods_supported or ()) or "none"
        raise RegistrationError(
            f"the authorization server {metadata.issuer} does not support PKCE S256 "
            f"(it lists: {methods}); mcpkeeper will not log in without it"
        )


def static_client(
    client_id: str, client_secret: str | None, metadata: AuthServerMetadata
) -> ClientRegistration:
    """A client the user registered by hand; the auth method is the best the server lists."""
    if client_secret is None:
        return ClientRegistration(client_id, None, "none")
    # RFC 8414 §2: when the list is absent the default is client_secret_basic.
    supported = metadata.token_endpoint_auth_methods_supported or ("client_secret_basic",)
    only_post = "client_secret_basic" not in supported and "client_secret_post" in supported
    method: AuthMethod = "client_secret_post" if only_post else "client_secret_basic"
    return ClientRegistration(client_id, client_secret, method)


async def register_client(
    metadata: AuthServerMetadata,
    redirect_uris: Sequence[str],
    *,
    scopes: Sequence[str] = (),
    client_name: str = CLIENT_NAME,
    grant_types: Sequence[str] = _GRANT_TYPES,
    http: httpx.AsyncClient | None = None,
    timeout: float = 15.0,
) -> ClientRegistration:
    """Register a public client for ``redirect_uris``; :class:`RegistrationError` with the reason."""
    if "authorization_code" in grant_types:
        require_s256(metadata)
    endpoint = metadata.registration_endpoint
    if endpoint is None:
        raise RegistrationError(
            f"the authorization server {metadata.issuer} does not offer dynamic client registration; "
            "register a client there and pass --client-id (and --client-secret if it has one)"
        )
    require_secure_endpoint(endpoint, "registration endpoint", error=RegistrationError)
    body: dict[str, Any] = {
        "client_name": client_name,
        "redirect_uris": list(redirect_uris),
        "grant_types": list(grant_types),
        "response_types": ["code"] if "authorization_code" in grant_types else [],
        "token_endpoint_auth_method": "none",
        # A CLI on the user's machine with a loopback redirect is a native app (RFC 8252;
        # the 2026-07-28 MCP revision makes stating it a MUST).
        "application_type": "native",
    }
    if scopes:
        body["scope"] = " ".join(scopes)
    if http is None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout)) as client:
            answer = await _post(client, endpoint, body)
    else:
        answer = await _post(http, endpoint, body)
    return _registration_from(answer, endpoint, tuple(redirect_uris))


async def _post(http: httpx.AsyncClient, endpoint: str, body: dict[str, Any]) -> HttpAnswer:
    return await request_capped(
        http,
        "POST",
        endpoint,
        what="the registration endpoint",
        headers={"Accept": "application/json", "Content-Type": "application/json"},
        json_body=body,
        error=RegistrationError,
    )


def _registration_from(
    answer: HttpAnswer, endpoint: str, redirect_uris: tuple[str, ...]
) -> ClientRegistration:
    status = answer.status_code
    if status not in (200, 201):
        raise RegistrationError(_refusal(answer, endpoint))
    data = json_object(answer, "the registration response", error=RegistrationError)
    client_id = data.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise RegistrationError(f"the registration response from {endpoint} has no client_id")
    secret = optional_text(data, "client_secret")
    try:
        method = _auth_method(
            data.get("token_endpoint_auth_method"), default="client_secret_basic" if secret else "none"
        )
        if method == "private_key_jwt":  # we registered no key, so we cannot sign for it
            raise ValueError(f"an unsupported token_endpoint_auth_method {method!r}")
    except ValueError as exc:
        raise RegistrationError(f"the registration at {endpoint} gave us {exc}") from None
    if method != "none" and secret is None:
        raise RegistrationError(f"the registration at {endpoint} chose {method} but issued no client_secret")
    uris = data.get("redirect_uris")
    registered = tuple(u for u in uris if isinstance(u, str)) if isinstance(uris, list) else redirect_uris
    return ClientRegistration(client_id, secret, method, endpoint, registered, dynamic=True)


def _refusal(answer: HttpAnswer, endpoint: str) -> str:
    """One line for a non-2xx registration answer, naming the RFC 7591 error when there is one."""
    try:
        data = json_object(answer, "the registration response", error=RegistrationError)
    except RegistrationError as exc:
        return f"client registration at {endpoint} failed with HTTP {answer.status_code}: {exc}"
    code = data.get("error")
    description = data.get("error_description")
    if isinstance(code, str) and code:
        detail = f"{code[:64]}"
        if isinstance(description, str) and description:
            detail += f" ({description[:_MAX_DESCRIPTION]})"
        return f"client registration at {endpoint} was refused with HTTP {answer.status_code}: {detail}"
    return f"client registration at {endpoint} failed with HTTP {answer.status_code}"


def _auth_method(value: object, *, default: AuthMethod) -> AuthMethod:
    if value is None:
        return default
    if isinstance(value, str) and value in _AUTH_METHODS:
        return cast(AuthMethod, value)
    raise ValueError(f"an unsupported token_endpoint_auth_method {str(value)[:40]!r}")


def is_registration_rejected(failure: Failure) -> bool:
    """The authorization server no longer knows (or trusts) our client."""
    return failure.permanent and failure.oauth_error in _REJECTED_CLIENT_ERRORS


def rejected_registration_reason(name: str, failure: Failure, *, dynamic: bool = True) -> str | None:
    """The status reason for a rejected client, or None when ``failure`` is something else.

    For a dynamically registered client the cure is a new registration, which
    ``mcpkeeper login NAME`` performs; for a static client the user must fix the client id.
    """
    if not is_registration_rejected(failure):
        return None
    hint = rejection_hint(name, dynamic)
    return f"the authorization server rejected the client ({failure.oauth_error}): {hint}"


def rejection_hint(name: str, dynamic: bool) -> str:
    """What the user does about a rejected client (appended to the refresh error by the refresher)."""
    if dynamic:
        return (
            f"the cached client registration is likely stale; run `mcpkeeper login {name}` to register again"
        )
    return f"check the configured client id and run `mcpkeeper login {name} --client-id ...`"
