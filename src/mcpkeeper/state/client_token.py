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

from pathlib import Path

from mcpkeeper.state.secret_file import ensure_secret_file, load_secret_file

__all__ = ["client_token_path", "ensure_client_token", "load_client_token"]


def client_token_path(home: Path) -> Path:
    return home / "secrets" / "client-token"


def load_client_token(home: Path) -> str | None:
    """The client token of ``home``; None while none was created (or the file is not one)."""
    return load_secret_file(client_token_path(home))


def ensure_client_token(home: Path) -> str:
    """The client token of ``home``, created (0600) if there is none yet."""
    return ensure_secret_file(client_token_path(home))
