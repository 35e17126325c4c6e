"""A random secret kept in one 0600 file, created once and never rewritten.

The local client token (:mod:`.client_token`) and the HTTP control API's token
(:mod:`.api_token`) are both such a file: made on first use, read by whoever may use
it (only this user: 0600 in a 0700 directory), and never replaced, so a token pasted
into a client or a Prometheus config stays valid. Two processes creating one at once
agree on the first one written (it is linked into place, which never replaces).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from mcpkeeper.state.paths import ensure_private_dir

__all__ = ["ensure_secret_file", "load_secret_file"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")


def load_secret_file(path: Path) -> str | None:
    """The secret in ``path``; None while there is none (or the file does not hold one)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text if _TOKEN.fullmatch(text) else None


def ensure_secret_file(path: Path) -> str:
    """The secret in ``path``, created (0600, 256 random bits) if there is none yet."""
    existing = load_secret_file(path)
    if existing is not None:
        return existing
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # someone else made one first: theirs wins
            os.link(tmp, path)  # never replaces an existing secret
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    token = load_secret_file(path)
    if token is None:
        raise OSError(f"{path} does not hold a token; remove it and try again")
    return token
