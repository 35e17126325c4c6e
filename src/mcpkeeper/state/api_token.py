"""The HTTP control API's bearer token: ``<home>/secrets/api-token`` (0600).

The control API on the Unix socket needs no token (the socket is 0600: only this user
reaches it). On loopback TCP (``mcpkeeper serve --api 127.0.0.1:PORT``) every local
account can connect, so every request must carry ``Authorization: Bearer <api token>``.
The token is made the first time the TCP API starts and never rewritten, so a
Prometheus scrape config or a script that reads it keeps working across restarts.
"""

from __future__ import annotations

from pathlib import Path

from mcpkeeper.state.secret_file import ensure_secret_file, load_secret_file

__all__ = ["api_token_path", "ensure_api_token", "load_api_token"]


def api_token_path(home: Path) -> Path:
    return home / "secrets" / "api-token"


def load_api_token(home: Path) -> str | None:
    """The API token of ``home``; None while none was created."""
    return load_secret_file(api_token_path(home))


def ensure_api_token(home: Path) -> str:
    """The API token of ``home``, created (0600) if there is none yet."""
    return ensure_secret_file(api_token_path(home))
