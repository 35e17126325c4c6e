"""Who is calling the gateway: static API keys, or JWTs from an issuer the operator trusts.

A gateway hands out upstream tokens to whoever reaches it, so every request must say
who it is first (``Authorization: Bearer <credential>``); the answer is a *caller name*
that the allow-list (:mod:`.access`) is checked against. The credential is the caller's
own and never goes upstream: the proxy replaces ``Authorization`` with the workload's
token.

* **API keys** (``--api-keys FILE``): one ``CALLER KEY`` pair per line (``#`` comments);
  keys are compared by their SHA-256, so the lookup takes the same time whatever is
  guessed. A file readable by every account is reported (a warning), not refused:
  mounted secrets come with the modes their platform gives them.
* **JWT** (``--jwt-issuer URL --jwt-audience AUD``, optionally ``--jwks-url``, default
  ``<issuer>/.well-known/jwks.json``): signature checked against the issuer's JWKS
  (PyJWT's :class:`~jwt.PyJWKClient`, keys cached; its fetch runs in a thread so the
  event loop never waits on it), ``iss``, ``aud``, ``exp`` required and checked; the
  caller is the ``sub`` claim (``--jwt-caller-claim``). Asymmetric algorithms only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import jwt

__all__ = ["ApiKeys", "Authenticator", "InboundConfigError", "JwtVerifier", "bearer_credential"]

_log = logging.getLogger(__name__)
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_MIN_KEY_LENGTH = 16


class InboundConfigError(ValueError):
    """The inbound authentication settings are unusable; the message is one line."""


class Authenticator(Protocol):
    async def caller(self, credential: str) -> str | None:
        """The caller's name, or None when ``credential`` is not valid."""
        ...


def bearer_credential(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The credential of ``Authorization: Bearer <credential>``, if the request has one."""
    for key, value in headers:
        if key == b"authorization":
            scheme, _, credential = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
    return None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


class ApiKeys:
    """Static keys from a file (see the module docstring)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._by_digest = {_digest(key): caller for caller, key in keys.items()}

    @classmethod
    def from_file(cls, path: Path) -> ApiKeys:
        try:
            info = path.stat()
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InboundConfigError(f"cannot read the API keys file {path}: {exc}") from None
        if info.st_mode & stat.S_IROTH:
            # Mounted secrets (Kubernetes, compose) come with modes we do not choose: say it, go on.
            _log.warning("the API keys file %s is readable by every account: chmod 600 it", path)
        keys: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise InboundConfigError(f"{path} line {number}: expected 'CALLER KEY'")
            caller, key = parts
            if len(key) < _MIN_KEY_LENGTH:
                raise InboundConfigError(
                    f"{path} line {number}: a key must be at least {_MIN_KEY_LENGTH} characters"
                )
            if caller in keys:
                raise InboundConfigError(f"{path} line {number}: caller {caller!r} appears twice")
            keys[caller] = key
        if not keys:
            raise InboundConfigError(f"the API keys file {path} holds no key")
        return cls(keys)

    async def caller(self, credential: str) -> str | None:
        digest = _digest(credential)
        for known, caller in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                return caller
        return None


@dataclass(frozen=True, slots=True)
class JwtSettings:
    issuer: str
    audience: str
    jwks_url: str
    caller_claim: str = "sub"


class JwtVerifier:
    """JWTs signed by the issuer's keys, for our audience (see the module docstring)."""

    def __init__(self, settings: JwtSettings) -> None:
        if not settings.jwks_url.startswith("https://") and not _loopback(settings.jwks_url):
            raise InboundConfigError(f"the JWKS URL must be https: {settings.jwks_url}")
        self._settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300, timeout=5)

    async def caller(self, credential: str) -> str | None:
        s = self._settings
        try:
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, credential)
            claims = jwt.decode(
                credential,
                key.key,
                algorithms=_ALGORITHMS,
                audience=s.audience,
                issuer=s.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientError as exc:
            _log.warning("gateway: cannot get the signing key of a caller's JWT: %s", exc)
            return None
        except jwt.InvalidTokenError:
            return None
        caller = claims.get(s.caller_claim)
        return caller if isinstance(caller, str) and caller else None


def _loopback(url: str) -> bool:
    return url.startswith(
        ("http://127.0.0.1:", "http://127.0.0.1/", "http://localhost:", "http://localhost/")
    )
