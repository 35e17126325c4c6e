"""PKCE (RFC 7636, S256 only), ``state`` and the authorization request URL.

Both protections are on every login, whatever the server advertises: PKCE binds the
code to this process (a code stolen from the redirect is useless without the verifier),
``state`` binds the redirect to this login (a forged callback is ignored).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["PkcePair", "build_authorization_url", "new_state", "s256_challenge"]

_VERIFIER_BYTES = 48  # 64 URL-safe characters, inside RFC 7636's 43..128


@dataclass(frozen=True, slots=True)
class PkcePair:
    verifier: str = field(repr=False)
    challenge: str
    method: str = "S256"

    @classmethod
    def generate(cls) -> PkcePair:
        verifier = secrets.token_urlsafe(_VERIFIER_BYTES)
        return cls(verifier, s256_challenge(verifier))


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: ``BASE64URL(SHA256(ASCII(code_verifier)))``, without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    return secrets.token_urlsafe(32)


def build_authorization_url(
    authorization_endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    state: str,
    pkce: PkcePair,
    scopes: Sequence[str] = (),
    resource: str | None = None,
) -> str:
    """The URL the browser opens; query parameters already on the endpoint are kept."""
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", pkce.method),
    ]
    if scopes:
        params.append(("scope", " ".join(scopes)))
    if resource:
        params.append(("resource", resource))  # RFC 8707
    parts = urlsplit(authorization_endpoint)
    ours = {name for name, _ in params}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    return urlunsplit(parts._replace(query=urlencode([*kept, *params])))
