"""The local client token: what an MCP client shows to use a workload that requires it.

Every listener binds 127.0.0.1, but loopback is reachable by every account on the
machine: without more, any local user can call your workloads' proxies and the
aggregated endpoint, and so use your tokens. A workload started with ``--client-token``
(or every workload, with ``MCPKEEPER_CLIENT_AUTH=on``) requires
``Authorization: Bearer <client token>``, a random secret kept in
``<home>/secrets/client-token`` (0600 in a 0700 directory, so only you can read it).
One token per home: it goes into the client configurations ``run`` prints.

The file is created once and never rewritten, so a token pasted into a client stays
valid; two processes creating it at once agree on the first one written.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import tempfile
from pathlib import Path

from mcpkeeper.state.paths import ensure_private_dir

__all__ = ["client_token_path", "ensure_client_token", "load_client_token"]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{32,256}")


def client_token_path(home: Path) -> Path:
    return home / "secrets" / "client-token"


def load_client_token(home: Path) -> str | None:
    """The client token of ``home``; None while none was created (or the file is not one)."""
    try:
        text = client_token_path(home).read_text(encoding="ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text if _TOKEN.fullmatch(text) else None


def ensure_client_token(home: Path) -> str:
    """The client token of ``home``, created (0600) if there is none yet."""
    existing = load_client_token(home)
    if existing is not None:
        return existing
    path = client_token_path(home)
    ensure_private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=".client-token.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileExistsError):  # someone else made one first: theirs wins
            os.link(tmp, path)  # never replaces an existing token
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    token = load_client_token(home)
    if token is None:
        raise OSError(f"{path} does not hold a client token; remove it and try again")
    return token
