"""Per-workload secrets (tokens, client registration): one JSON object per workload.

The store deals in plain dicts; what they mean is the auth layer's business
(``mcpkeeper.auth.credentials``), so ``state`` stays free of OAuth.

Two backends:

* :class:`FileSecretBackend` — ``<root>/secrets/<name>.json``, 0600 in a 0700 directory,
  replaced atomically and fsync'd (a refresh token must survive a crash the moment it
  is saved, architecture.md §3.6);
* :class:`KeyringSecretBackend` — the OS keyring (macOS Keychain, Secret Service,
  Windows Credential Locker) through :mod:`keyring`, when one is really available.

:func:`detect_backend` prefers a usable keyring and never picks keyring's "fail" or
"null" backends (which would lose or refuse every write); a headless Linux has none and
gets the file backend. ``MCPKEEPER_SECRET_BACKEND=file|keyring`` forces the choice.

A stored value that is not a JSON object is never silently dropped or overwritten: it is
moved aside (``<name>.json.corrupted``) and :class:`CorruptSecretError` says where. Until
a new login is stored under the name (or ``rm`` discards it), :meth:`SecretStore.quarantined`
keeps saying where, so every later reader reports it too (not "no stored login").
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from mcpkeeper.state._atomic import atomic_write_bytes
from mcpkeeper.state._quarantine import FileIdentity, discard_evidence, leftover, quarantine
from mcpkeeper.state.locks import DEFAULT_LOCK_TIMEOUT, Locks, StateLock
from mcpkeeper.state.names import validate_name
from mcpkeeper.state.paths import ensure_private_dir

__all__ = [
    "BACKEND_ENV",
    "CorruptSecretError",
    "FileSecretBackend",
    "KeyringSecretBackend",
    "SecretBackend",
    "SecretStore",
    "UnreadableSecretError",
    "detect_backend",
    "keyring_is_usable",
]

BACKEND_ENV = "MCPKEEPER_SECRET_BACKEND"
_MAX_BYTES = 1 << 20
_SERVICE_PREFIX = "mcpkeeper"
_CORRUPTED = ".corrupted"


class CorruptSecretError(ValueError):
    """The stored secret of a workload could not be read; it was moved aside (``moved_to``)."""

    def __init__(self, name: str, reason: str, moved_to: str | None) -> None:
        where = f"moved aside to {moved_to}" if moved_to else "left in place"
        super().__init__(f"stored credentials of {name} are unreadable ({reason}); {where}")
        self.name = name
        self.reason = reason
        self.moved_to = moved_to


class UnreadableSecretError(ValueError):
    """Raised by a backend's ``read`` for a value that cannot even be text."""


class SecretBackend(Protocol):
    """Raw storage of one text blob per name; ``read`` may raise :class:`UnreadableSecretError`."""

    label: str

    def read(self, name: str) -> str | None: ...

    def write(self, name: str, text: str) -> None: ...

    def delete(self, name: str) -> bool: ...

    def move_aside(self, name: str) -> str | None:
        """Keep the unreadable value under another name; where it went, or None."""
        ...

    def quarantined(self, name: str) -> str | None:
        """Where an unreadable value of ``name`` was moved, if nothing was stored since."""
        ...

    def discard_quarantined(self, name: str) -> None:
        """Forget the moved-aside value of ``name``."""
        ...


class FileSecretBackend:
    label = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seen: dict[str, FileIdentity] = {}

    def path(self, name: str) -> Path:
        return self.directory / f"{validate_name(name)}.json"

    def read(self, name: str) -> str | None:
        path = self.path(name)
        try:
            with open(path, "rb") as fh:
                self._seen[name] = FileIdentity.of(os.fstat(fh.fileno()))
                data = fh.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(data) > _MAX_BYTES:
            raise UnreadableSecretError(f"larger than {_MAX_BYTES} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableSecretError("not UTF-8 text") from None

    def write(self, name: str, text: str) -> None:
        ensure_private_dir(self.directory)
        atomic_write_bytes(self.path(name), text.encode("utf-8"), mode=0o600)

    def delete(self, name: str) -> bool:
        try:
            self.path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def move_aside(self, name: str) -> str | None:
        moved = quarantine(self.path(name), self._seen.get(name))
        return str(moved) if moved is not None else None

    def quarantined(self, name: str) -> str | None:
        earlier = leftover(self.path(name), name)
        return str(earlier.moved_to) if earlier is not None else None

    def discard_quarantined(self, name: str) -> None:
        discard_evidence(self.path(name))


class KeyringSecretBackend:
    """One keyring entry per workload; the service name includes the state home.

    Two state homes (a test's ``MCPKEEPER_HOME`` and the user's) must not share entries.
    """

    label = "keyring"

    def __init__(self, root: Path, keyring_backend: Any) -> None:
        self._keyring = keyring_backend
        self.service = f"{_SERVICE_PREFIX}:{root.expanduser().resolve()}"

    def read(self, name: str) -> str | None:
        value = self._keyring.get_password(self.service, validate_name(name))
        return value if isinstance(value, str) else None

    def write(self, name: str, text: str) -> None:
        self._keyring.set_password(self.service, validate_name(name), text)

    def delete(self, name: str) -> bool:
        import keyring.errors

        try:
            self._keyring.delete_password(self.service, validate_name(name))
        except keyring.errors.PasswordDeleteError:
            return False
        return True

    def move_aside(self, name: str) -> str | None:
        value = self.read(name)
        if value is None:
            return None
        target = f"{name}{_CORRUPTED}"
        self._keyring.set_password(self.service, target, value)
        self.delete(name)
        return self._where(target)

    def quarantined(self, name: str) -> str | None:
        target = f"{validate_name(name)}{_CORRUPTED}"
        if self.read(name) is not None or self._keyring.get_password(self.service, target) is None:
            return None
        return self._where(target)

    def discard_quarantined(self, name: str) -> None:
        import keyring.errors

        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            self._keyring.delete_password(self.service, f"{validate_name(name)}{_CORRUPTED}")

    def _where(self, target: str) -> str:
        return f"keyring entry {target!r} of service {self.service!r}"


def keyring_is_usable(backend: Any) -> bool:
    """A keyring that really stores secrets: not keyring's fail/null stand-ins, priority above 0."""
    try:
        from keyring.backends import chainer, fail, null
    except ImportError:  # pragma: no cover - keyring is a dependency
        return False
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(keyring_is_usable(inner) for inner in backend.backends)
    try:
        return float(backend.priority) > 0
    except Exception:  # a backend's priority property raises when it cannot work here
        return False


def detect_backend(root: Path, environ: dict[str, str] | None = None) -> SecretBackend:
    """The keyring when one works here (or is forced), else the file backend."""
    env = os.environ if environ is None else environ
    forced = env.get(BACKEND_ENV, "").strip().lower()
    files = FileSecretBackend(root / "secrets")
    if forced == "file":
        return files
    try:
        import keyring
    except ImportError:  # pragma: no cover
        return files
    chosen = keyring.get_keyring()
    if forced == "keyring" or keyring_is_usable(chosen):
        return KeyringSecretBackend(root, chosen)
    return files


class SecretStore:
    """Secrets of every workload under the state home ``root``."""

    def __init__(self, root: Path, *, backend: SecretBackend | None = None) -> None:
        self.root = root
        self.backend = backend if backend is not None else detect_backend(root)
        self._locks = Locks(root)

    def load(self, name: str) -> dict[str, Any] | None:
        """The stored dict, None when nothing is stored; :class:`CorruptSecretError` if unreadable."""
        try:
            text = self.backend.read(name)
        except UnreadableSecretError as exc:
            raise CorruptSecretError(name, str(exc), self.backend.move_aside(name)) from None
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data, reason = None, "not valid JSON"
        else:
            reason = "not a JSON object"
        if isinstance(data, dict):
            return data
        raise CorruptSecretError(name, reason, self.backend.move_aside(name))

    def save(self, name: str, data: dict[str, Any]) -> None:
        """Replace the secret of ``name`` (atomically and durably for files)."""
        self.backend.write(name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def delete(self, name: str) -> bool:
        return self.backend.delete(name)

    def quarantined(self, name: str) -> CorruptSecretError | None:
        """The unreadable value of ``name`` moved aside earlier (by any process), until replaced."""
        where = self.backend.quarantined(name)
        return CorruptSecretError(name, "found earlier", where) if where is not None else None

    def discard_quarantined(self, name: str) -> None:
        self.backend.discard_quarantined(name)

    def move_aside(self, name: str, reason: str) -> CorruptSecretError:
        """For callers that found the dict itself unusable: keep it, and describe where it went."""
        return CorruptSecretError(name, reason, self.backend.move_aside(name))

    def lock(self, name: str, *, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> StateLock:
        """The cross-process lock ``<root>/locks/<name>.lock`` guarding a read-modify-write."""
        return self._locks.lock(name, timeout=timeout)
