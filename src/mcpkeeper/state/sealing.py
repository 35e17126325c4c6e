"""Encryption at rest for what a shared store keeps: tokens and client registrations.

A Redis server is run by someone else, replicated, snapshotted to disk and read by
``MONITOR``; what mcpkeeper puts there must be useless without a key the operator holds.
Every secret value is sealed with AES-256-GCM (``cryptography``'s AESGCM) before it
leaves the process, and bound to the key it is stored under (the associated data), so a
sealed login copied onto another workload's key does not open.

Keys come from the operator, never from the store: ``MCPKEEPER_STORE_KEY`` (one key) or
``MCPKEEPER_STORE_KEY_FILE`` (a file, one key per line, the first one current). A key is
32 random bytes in URL-safe base64 (``mcpkeeper store keygen`` prints one). Each sealed
value names the key it was sealed with by a short fingerprint, so rotation is: put the
new key first in the file (old ones below), restart or roll the replicas, run
``mcpkeeper store rekey`` (re-seals every value with the current key), then drop the old
keys. A value sealed with a key the ring does not hold is an error naming that key's
fingerprint, never a silent empty login.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "KeyRing", "KeyRingError", "SealedValueError", "new_key"]

KEY_ENV = "MCPKEEPER_STORE_KEY"
KEY_FILE_ENV = "MCPKEEPER_STORE_KEY_FILE"
_PREFIX = "mk1"
_NONCE = 12
_KEY_BYTES = 32


class KeyRingError(ValueError):
    """The operator's keys are missing or malformed (the message says which and where)."""


class SealedValueError(ValueError):
    """A sealed value cannot be opened: unknown key, tampered with, or not sealed by us."""


def new_key() -> str:
    """A fresh key, as the key file and ``MCPKEEPER_STORE_KEY`` hold it."""
    return base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")


def _fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"mcpkeeper-store-key\0" + key).hexdigest()[:12]


def _decode_key(text: str, where: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise KeyRingError(f"{where}: not URL-safe base64") from None
    if len(raw) != _KEY_BYTES:
        raise KeyRingError(f"{where}: a key is {_KEY_BYTES} bytes, this one is {len(raw)}")
    return raw


class KeyRing:
    """The current key (sealing) and every older one still accepted (opening)."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise KeyRingError("no encryption key given")
        self._current = _fingerprint(keys[0])
        self._keys: dict[str, AESGCM] = {}
        for key in keys:
            self._keys.setdefault(_fingerprint(key), AESGCM(key))

    @property
    def current(self) -> str:
        """Fingerprint of the key new values are sealed with."""
        return self._current

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(self._keys)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The ring from ``MCPKEEPER_STORE_KEY_FILE`` or ``MCPKEEPER_STORE_KEY``.

        :class:`KeyRingError` if neither is set or the key is malformed.
        """
        env = os.environ if environ is None else environ
        path = env.get(KEY_FILE_ENV, "").strip()
        if path:
            return cls.from_file(Path(path))
        value = env.get(KEY_ENV, "").strip()
        if value:
            return cls([_decode_key(value, KEY_ENV)])
        raise KeyRingError(
            f"a shared store needs an encryption key: set {KEY_FILE_ENV} (a file, one key per line, "
            f"the first current) or {KEY_ENV}; `mcpkeeper store keygen` prints a new key"
        )

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise KeyRingError(f"cannot read the key file {path}: {exc}") from None
        keys = [
            _decode_key(line, f"{path} line {number}")
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
        if not keys:
            raise KeyRingError(f"the key file {path} holds no key")
        return cls(keys)

    def seal(self, plaintext: bytes, context: str) -> str:
        """``plaintext`` sealed with the current key, bound to ``context`` (the value's key name)."""
        nonce = secrets.token_bytes(_NONCE)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, context.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
        return f"{_PREFIX}.{self._current}.{body}"

    def open(self, value: str, context: str) -> bytes:
        """The plaintext of a value :meth:`seal` made for ``context``; :class:`SealedValueError` else."""
        parts = value.split(".", 2)
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise SealedValueError(f"{context}: not a value sealed by mcpkeeper")
        fingerprint, body = parts[1], parts[2]
        cipher = self._keys.get(fingerprint)
        if cipher is None:
            raise SealedValueError(
                f"{context}: sealed with key {fingerprint}, which is not among the configured keys "
                f"({', '.join(self._keys)})"
            )
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
            return cipher.decrypt(raw[:_NONCE], raw[_NONCE:], context.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SealedValueError(f"{context}: does not open with key {fingerprint} (tampered?)") from None

    def sealed_with_current(self, value: str) -> bool:
        """Whether ``value`` is already sealed with the current key (``rekey`` skips it)."""
        return value.startswith(f"{_PREFIX}.{self._current}.")
