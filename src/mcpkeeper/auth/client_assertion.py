"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OpenID Connect Core §9).

A service account that holds a private key proves who it is with a short-lived JWT signed
by that key instead of a shared secret: ``iss`` and ``sub`` are the client id, ``aud``
the authorization server's issuer (as the MCP client-credentials extension and RFC 7523bis
want), with a fresh ``jti`` and a one-minute lifetime so a captured assertion is useless
soon after.

The key stays in the user's file: it is read for each assertion (so a rotated key is used
at once) and refused, like ``ssh`` refuses one, when group or others may read it. Nothing
here ever prints the key or the assertion. PyJWT signs (with ``cryptography`` underneath);
the algorithm follows from the key: ES256/ES384/ES512 for EC P-256/384/521, RS256 for RSA,
EdDSA for Ed25519.
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from mcpkeeper.auth.login_errors import LoginError

__all__ = [
    "ASSERTION_LIFETIME",
    "JWT_BEARER_ASSERTION",
    "PrivateKeyError",
    "PrivateKeyJwt",
    "read_private_key",
]

JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds an assertion is valid: enough for one token request, not for a replay later.
ASSERTION_LIFETIME = 60
_MAX_KEY_BYTES = 64 * 1024
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


class PrivateKeyError(LoginError):
    """The private key file cannot be used; the message names the file and the fix, never the key."""


def read_private_key(path: Path) -> tuple[PrivateKey, str]:
    """The key in the PEM file ``path`` and its JWS algorithm; :class:`PrivateKeyError` if unusable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise PrivateKeyError(f"cannot open the private key {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PrivateKeyError(f"the private key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise PrivateKeyError(
                f"the private key {path} may be read by other users (mode {stat.S_IMODE(info.st_mode):04o}); "
                f"run `chmod 600 {path}`"
            )
        if info.st_size > _MAX_KEY_BYTES:
            raise PrivateKeyError(f"the private key {path} is over {_MAX_KEY_BYTES} bytes: not a PEM key")
        pem = os.read(fd, _MAX_KEY_BYTES)
    finally:
        os.close(fd)
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise PrivateKeyError(
            f"{path} holds no unencrypted PEM private key (PKCS#8 or traditional)"
        ) from None
    return _with_algorithm(key, path)


def _with_algorithm(key: object, path: Path) -> tuple[PrivateKey, str]:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = _EC_ALGORITHMS.get(key.curve.name)
        if algorithm is None:
            raise PrivateKeyError(f"the EC key in {path} uses curve {key.curve.name}, not P-256/384/521")
        return key, algorithm
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise PrivateKeyError(f"the RSA key in {path} has {key.key_size} bits; at least 2048 are needed")
        return key, "RS256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key, "EdDSA"
    raise PrivateKeyError(f"the key in {path} is not an EC, RSA or Ed25519 private key")


@dataclass(frozen=True, slots=True)
class PrivateKeyJwt:
    """Makes one client assertion per call (a token request must never reuse one)."""

    client_id: str
    key_path: Path
    audience: str

    def __call__(self) -> str:
        key, algorithm = read_private_key(self.key_path)
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),
        }
        return jwt.encode(claims, key, algorithm=algorithm)

    def __repr__(self) -> str:
        return f"PrivateKeyJwt(client_id={self.client_id!r}, key_path={str(self.key_path)!r})"
