"""The fixture authorization server's memory: clients, codes and tokens.

Kept apart from the HTTP layer so that the browser-free :meth:`GrantStore.mint` used by
tests and the real ``/token`` endpoint issue tokens through the same code path: a token
minted for a test refreshes and rotates exactly like one obtained through a login.

Tokens are opaque random strings remembered with their expiry; the MCP fixture server
verifies them in-process or through RFC 7662 introspection.

Besides the authorization code it knows the grants a service or a headless user uses:
client credentials (the client authenticated by its secret or by a ``private_key_jwt``
assertion, RFC 7523, checked with PyJWT against the key registered for it) and the
device authorization grant (RFC 8628: codes pending until approved, denied or expired).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import jwt

__all__ = [
    "AUTH_METHODS",
    "DEVICE_CODE_GRANT",
    "JWT_BEARER_ASSERTION",
    "PUBLIC",
    "AccessGrant",
    "AuthorizationCode",
    "DeviceGrant",
    "GrantError",
    "GrantStore",
    "RegisteredClient",
    "SpentRefreshTokenError",
    "s256_challenge",
    "validate_redirect_uri",
]

AUTH_METHODS = ("none", "client_secret_post", "client_secret_basic", "private_key_jwt")
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_DEVICE_CODE_LIFETIME = 600.0
#: The ``token_endpoint_auth_method`` of a public client (no secret).
PUBLIC = "none"
SUBJECT = "fixture-user"
_CODE_LIFETIME = 60.0
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class GrantError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, description, and the HTTP status to answer with."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def to_dict(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class SpentRefreshTokenError(GrantError):
    """A refresh token was presented again after rotation spent it: a client bug worth counting."""

    def __init__(self) -> None:
        super().__init__("invalid_grant", "refresh token already used")


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """An RFC 7591 client registration."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    token_endpoint_auth_method: str = "none"
    client_name: str | None = None
    scope: str | None = None
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    issued_at: int = 0
    #: ``private_key_jwt``: the PEM public key its assertions are verified with.
    public_key_pem: str | None = field(default=None, repr=False)
    #: What the registration request said (RFC 7591 / OpenID ``application_type``), if anything.
    application_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The RFC 7591 §3.2.1 registration response."""
        data: dict[str, Any] = {
            "client_id": self.client_id,
            "client_id_issued_at": self.issued_at,
            "redirect_uris": list(self.redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "grant_types": list(self.grant_types),
            "response_types": ["code"],
        }
        if self.client_secret is not None:
            data["client_secret"] = self.client_secret
            data["client_secret_expires_at"] = 0
        if self.client_name is not None:
            data["client_name"] = self.client_name
        if self.scope is not None:
            data["scope"] = self.scope
        return data

    def accepts_redirect_uri(self, uri: str) -> bool:
        """Exact match, except that loopback IP redirects may use any port (RFC 8252 §7.3)."""
        return any(_same_redirect(registered, uri) for registered in self.redirect_uris)


@dataclass(frozen=True, slots=True)
class AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    resource: str | None
    expires_at: float


@dataclass(slots=True)
class DeviceGrant:
    """A device authorization in progress (RFC 8628): pending until the user decides."""

    device_code: str
    user_code: str
    client_id: str
    scope: str
    resource: str | None
    expires_at: float
    state: str = "pending"


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """What an access or refresh token stands for."""

    client_id: str
    scope: str
    resource: str | None
    issued_at: float
    expires_at: float | None

    def claims(self) -> dict[str, Any]:
        """RFC 7662 introspection claims of an active token."""
        data: dict[str, Any] = {
            "active": True,
            "client_id": self.client_id,
            "scope": self.scope,
            "sub": SUBJECT,
            "token_type": "Bearer",
            "iat": int(self.issued_at),
        }
        if self.expires_at is not None:
            data["exp"] = self.expires_at
        if self.resource is not None:
            data["aud"] = self.resource
        return data


def s256_challenge(verifier: str) -> str:
    """The PKCE S256 ``code_challenge`` for ``verifier`` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def validate_redirect_uri(uri: object) -> str:
    """A redirect URI a native or web client may register, else :class:`GrantError`.

    https anywhere; plain http only on loopback (RFC 8252 §7.3); a private-use scheme
    with a dot (``com.example.app:/cb``, RFC 8252 §7.1); never a fragment.
    """
    if not isinstance(uri, str) or not uri:
        raise GrantError("invalid_redirect_uri", "redirect_uris must be non-empty strings")
    parts = urlsplit(uri)
    if parts.fragment:
        raise GrantError("invalid_redirect_uri", "a redirect URI must not contain a fragment")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return uri
    if parts.scheme not in ("http", "https") and "." in parts.scheme:
        return uri
    raise GrantError("invalid_redirect_uri", "redirect URIs must be https, loopback http or a private scheme")


def _same_redirect(registered: str, presented: str) -> bool:
    if registered == presented:
        return True
    reg, pres = urlsplit(registered), urlsplit(presented)
    if reg.scheme != "http" or not _is_loopback_ip(reg.hostname):
        return False
    same_except_port = (pres.scheme, pres.hostname, pres.path, pres.query)
    return same_except_port == (reg.scheme, reg.hostname, reg.path, reg.query)


def _is_loopback_ip(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GrantStore:
    """Clients, authorization codes, access tokens and rotating refresh tokens."""

    def __init__(
        self,
        *,
        wall: Callable[[], float],
        scopes: Sequence[str],
        default_scope: str,
        refresh_reuse_grace: bool = False,
        on_grace_reuse: Callable[[], None] | None = None,
    ) -> None:
        self._wall = wall
        self.scopes = tuple(scopes)
        self.default_scope = default_scope
        #: Honour a spent refresh token while its successor is unused (see :meth:`rotate_refresh`).
        self.refresh_reuse_grace = refresh_reuse_grace
        self._on_grace_reuse = on_grace_reuse
        self.clients: dict[str, RegisteredClient] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, AccessGrant] = {}
        #: Spent refresh token -> the refresh token issued for it (the latest, after a grace reuse).
        self._successor: dict[str, str] = {}
        self._devices: dict[str, DeviceGrant] = {}
        self._seen_jti: set[str] = set()
        #: Scopes accepted in a request but never granted (a server that grants less than asked).
        self.withheld_scopes: set[str] = set()

    # -- clients ---------------------------------------------------------------------------

    def register(
        self,
        redirect_uris: Iterable[str] = (),
        *,
        token_endpoint_auth_method: str = PUBLIC,
        client_id: str | None = None,
        client_name: str | None = None,
        scope: str | None = None,
        public_key_pem: str | None = None,
        grant_types: Sequence[str] | None = None,
        application_type: str | None = None,
    ) -> RegisteredClient:
        if token_endpoint_auth_method not in AUTH_METHODS:
            method = token_endpoint_auth_method
            raise GrantError("invalid_client_metadata", f"unsupported token_endpoint_auth_method {method!r}")
        uris = tuple(validate_redirect_uri(uri) for uri in redirect_uris)
        if scope is not None:
            self.check_scope(scope, error="invalid_client_metadata")
        if (token_endpoint_auth_method == "private_key_jwt") != (public_key_pem is not None):
            raise GrantError("invalid_client_metadata", "private_key_jwt goes with a public key, and only it")
        has_secret = token_endpoint_auth_method in ("client_secret_post", "client_secret_basic")
        client = RegisteredClient(
            client_id=client_id or f"fxc_{secrets.token_urlsafe(12)}",
            client_secret=secrets.token_urlsafe(24) if has_secret else None,
            redirect_uris=uris,
            token_endpoint_auth_method=token_endpoint_auth_method,
            client_name=client_name,
            scope=scope,
            issued_at=int(self._wall()),
            public_key_pem=public_key_pem,
            application_type=application_type,
        )
        if grant_types is not None:
            client = replace(client, grant_types=tuple(grant_types))
        self.clients[client.client_id] = client
        return client

    def authenticate(
        self,
        client_id: str | None,
        client_secret: str | None,
        *,
        assertion: str | None = None,
        assertion_type: str | None = None,
        audience: str = "",
    ) -> RegisteredClient:
        """The client making a token request, checked per its registered auth method."""
        client = self.clients.get(client_id or "")
        if client is None:
            raise GrantError("invalid_client", "unknown client", status=401)
        if client.public_key_pem is not None:
            self._check_assertion(client, assertion, assertion_type, audience)
            return client
        if client.client_secret is not None and not (
            client_secret is not None and hmac.compare_digest(client.client_secret, client_secret)
        ):
            raise GrantError("invalid_client", "client authentication failed", status=401)
        return client

    def _check_assertion(
        self, client: RegisteredClient, assertion: str | None, assertion_type: str | None, audience: str
    ) -> None:
        """RFC 7523 §3: signed by the registered key, iss = sub = client id, our issuer as audience."""
        if assertion_type != JWT_BEARER_ASSERTION or not assertion:
            raise GrantError("invalid_client", "a private_key_jwt client must send a client_assertion", 401)
        assert client.public_key_pem is not None
        try:
            claims = jwt.decode(
                assertion,
                client.public_key_pem,
                algorithms=["ES256", "ES384", "ES512", "RS256", "EdDSA"],
                audience=audience,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise GrantError("invalid_client", f"client assertion rejected: {exc}", status=401) from None
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise GrantError("invalid_client", "client assertion iss/sub is not the client id", status=401)
        if claims["jti"] in self._seen_jti:
            raise GrantError("invalid_client", "client assertion replayed", status=401)
        self._seen_jti.add(claims["jti"])

    def client_credentials(
        self, client: RegisteredClient, scope: str | None, resource: str | None, *, lifetime: float
    ) -> dict[str, Any]:
        """A token for the client itself (no refresh token); only confidential clients may ask."""
        if client.client_secret is None and client.public_key_pem is None:
            raise GrantError("unauthorized_client", "a public client cannot use client_credentials")
        return self.issue_tokens(
            client.client_id, self.check_scope(scope), resource, lifetime=lifetime, issue_refresh=False
        )

    # -- device authorization (RFC 8628) ---------------------------------------------------

    def start_device_authorization(
        self, client: RegisteredClient, scope: str, resource: str | None
    ) -> DeviceGrant:
        grant = DeviceGrant(
            device_code=f"fxdc_{secrets.token_urlsafe(24)}",
            user_code=f"{secrets.randbelow(10**4):04d}-{secrets.randbelow(10**4):04d}",
            client_id=client.client_id,
            scope=scope,
            resource=resource,
            expires_at=self._wall() + _DEVICE_CODE_LIFETIME,
        )
        self._devices[grant.device_code] = grant
        return grant

    def decide_device(self, user_code: str, *, approve: bool) -> bool:
        """The user entered ``user_code`` and approved (or denied); False for an unknown code."""
        for grant in self._devices.values():
            if grant.user_code == user_code and grant.state == "pending":
                grant.state = "approved" if approve else "denied"
                return True
        return False

    def redeem_device_code(
        self, client: RegisteredClient, device_code: str | None, *, lifetime: float, issue_refresh: bool
    ) -> dict[str, Any]:
        grant = self._devices.get(device_code or "")
        if grant is None or grant.client_id != client.client_id:
            raise GrantError("invalid_grant", "unknown device code")
        if grant.expires_at < self._wall():
            del self._devices[grant.device_code]
            raise GrantError("expired_token", "the device code expired")
        if grant.state == "pending":
            raise GrantError("authorization_pending", "the user has not finished yet")
        del self._devices[grant.device_code]
        if grant.state == "denied":
            raise GrantError("access_denied", "the user denied the request")
        return self.issue_tokens(
            client.client_id, grant.scope, grant.resource, lifetime=lifetime, issue_refresh=issue_refresh
        )

    def check_scope(self, scope: str | None, *, error: str = "invalid_scope") -> str:
        """``scope`` (or the default) if every item is supported."""
        if scope is None or not scope.strip():
            return self.default_scope
        unknown = [item for item in scope.split() if item not in self.scopes]
        if unknown:
            raise GrantError(error, f"unsupported scope {' '.join(unknown)!r}")
        return " ".join(scope.split())

    # -- authorization codes ---------------------------------------------------------------

    def issue_code(
        self, client_id: str, redirect_uri: str, code_challenge: str, scope: str, resource: str | None
    ) -> str:
        # A server may grant less than asked (RFC 6749 §3.3); the token response says so.
        scope = " ".join(item for item in scope.split() if item not in self.withheld_scopes) or scope
        code = f"fxcode_{secrets.token_urlsafe(24)}"
        self._codes[code] = AuthorizationCode(
            client_id, redirect_uri, code_challenge, scope, resource, self._wall() + _CODE_LIFETIME
        )
        return code

    def redeem_code(
        self,
        client: RegisteredClient,
        code: str | None,
        *,
        redirect_uri: str | None,
        code_verifier: str | None,
        resource: str | None,
        lifetime: float,
        issue_refresh: bool,
    ) -> dict[str, Any]:
        """Exchange a code, once: a second presentation of the same code is ``invalid_grant``."""
        if not code:
            raise GrantError("invalid_request", "code is required")
        pending = self._codes.pop(code, None)
        if pending is None or pending.expires_at < self._wall():
            raise GrantError("invalid_grant", "authorization code unknown, used or expired")
        if pending.client_id != client.client_id:
            raise GrantError("invalid_grant", "authorization code was issued to another client")
        if redirect_uri != pending.redirect_uri:
            raise GrantError("invalid_grant", "redirect_uri does not match the authorization request")
        if not code_verifier or not _VERIFIER.match(code_verifier):
            raise GrantError("invalid_grant", "code_verifier missing or malformed")
        if not hmac.compare_digest(s256_challenge(code_verifier), pending.code_challenge):
            raise GrantError("invalid_grant", "PKCE verification failed")
        if resource is not None and pending.resource is not None and resource != pending.resource:
            raise GrantError("invalid_target", "resource differs from the authorization request")
        return self.issue_tokens(
            client.client_id,
            pending.scope,
            pending.resource if pending.resource is not None else resource,
            lifetime=lifetime,
            issue_refresh=issue_refresh,
        )

    # -- tokens ----------------------------------------------------------------------------

    def issue_tokens(
        self,
        client_id: str,
        scope: str,
        resource: str | None,
        *,
        lifetime: float,
        issue_refresh: bool = True,
    ) -> dict[str, Any]:
        """A fresh access token (and a refresh token), as the RFC 6749 §5.1 response body."""
        now = self._wall()
        access = f"fxat_{secrets.token_urlsafe(32)}"
        self._access[access] = AccessGrant(client_id, scope, resource, now, now + lifetime)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            # Whole seconds when possible: some clients (pydantic models) reject a float.
            "expires_in": int(lifetime) if float(lifetime).is_integer() else lifetime,
            "scope": scope,
        }
        if issue_refresh:
            refresh = f"fxrt_{secrets.token_urlsafe(32)}"
            self._refresh[refresh] = AccessGrant(client_id, scope, resource, now, None)
            body["refresh_token"] = refresh
        if resource is not None:
            body["resource"] = resource
        return body

    def rotate_refresh(
        self,
        client: RegisteredClient,
        refresh_token: str | None,
        *,
        scope: str | None,
        resource: str | None,
        lifetime: float,
    ) -> dict[str, Any]:
        """Spend ``refresh_token`` and issue a new pair; a spent token is ``invalid_grant``.

        With :attr:`refresh_reuse_grace`, a spent token is honoured again as long as the
        token issued for it was never presented: that successor is revoked and a new pair
        issued. Real servers offer this (a reuse interval or grace period) for a client
        that died between the server's rotation and saving the new token. Once the
        successor has been used the old token is spent for good, so a client that saves
        late, or not at all, still meets ``invalid_grant``.
        """
        if not refresh_token:
            raise GrantError("invalid_request", "refresh_token is required")
        unused_successor = self._unused_successor(refresh_token)
        if unused_successor is not None:
            grant = self._refresh[unused_successor]
        elif refresh_token in self._successor:
            raise SpentRefreshTokenError()
        else:
            found = self._refresh.get(refresh_token)
            if found is None:
                raise GrantError("invalid_grant", "refresh token unknown or revoked")
            grant = found
        if grant.client_id != client.client_id:
            raise GrantError("invalid_grant", "refresh token was issued to another client")
        granted = grant.scope
        if scope is not None and scope.strip():
            narrower = set(scope.split())
            if not narrower <= set(grant.scope.split()):
                raise GrantError("invalid_scope", "requested scope exceeds the original grant")
            granted = " ".join(scope.split())
        if resource is not None and grant.resource is not None and resource != grant.resource:
            raise GrantError("invalid_target", "resource differs from the original grant")
        if unused_successor is not None:
            del self._refresh[unused_successor]
            if self._on_grace_reuse is not None:
                self._on_grace_reuse()
        else:
            del self._refresh[refresh_token]
        body = self.issue_tokens(
            client.client_id,
            granted,
            grant.resource if grant.resource is not None else resource,
            lifetime=lifetime,
        )
        self._successor[refresh_token] = body["refresh_token"]
        return body

    def _unused_successor(self, spent: str) -> str | None:
        """The live successor of ``spent`` that was never presented, when the reuse grace is on."""
        if not self.refresh_reuse_grace:
            return None
        successor = self._successor.get(spent)
        if successor is None or successor in self._successor or successor not in self._refresh:
            return None
        return successor

    def verify_access(self, token: str) -> dict[str, Any] | None:
        grant = self._access.get(token)
        if grant is None:
            return None
        if grant.expires_at is not None and grant.expires_at <= self._wall():
            return None
        return grant.claims()

    def revoke_access(self, token: str) -> bool:
        return self._access.pop(token, None) is not None

    def revoke_all_access(self) -> int:
        count = len(self._access)
        self._access.clear()
        return count

    def revoke_for_client(self, client: RegisteredClient, token: str) -> str | None:
        """RFC 7009: forget ``token`` (refresh or access) if ``client`` holds it.

        Returns the kind revoked (``refresh_token``/``access_token``), None for a token this
        server does not know (expired, revoked, never issued: the answer is 200 all the
        same). A refresh token takes the access tokens of its client and scope with it,
        as §2.1 says a server should. A token of another client is a :class:`GrantError`.
        """
        for kind, table in (("refresh_token", self._refresh), ("access_token", self._access)):
            grant = table.get(token)
            if grant is None:
                continue
            if grant.client_id != client.client_id:
                raise GrantError("invalid_request", "the token was issued to another client")
            del table[token]
            if kind == "refresh_token":
                for access, other in list(self._access.items()):
                    if other.client_id == grant.client_id and other.scope == grant.scope:
                        del self._access[access]
            return kind
        return None

    def revoke_refresh(self, token: str) -> bool:
        """Forget a refresh token (it becomes unknown, not spent): the upstream revoked the grant."""
        return self._refresh.pop(token, None) is not None
