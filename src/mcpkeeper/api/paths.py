"""Where the daemon's run-time files live (``<home>/run``, ``<home>/logs``, the control socket).

Shared by the daemon that creates them and the client that looks for them, so the two
can never disagree about a path.

The control socket is ``<home>/run/daemon.sock`` when that path fits in a Unix socket
address (``sun_path``: 108 bytes on Linux, 104 on macOS, so 100 to be safe). A longer
home (a 100-character ``MCPKEEPER_HOME`` is ordinary) puts it in a short private
directory of the user instead, one per home: ``$XDG_RUNTIME_DIR/mcpkeeper/<hash>/`` or,
without a usable ``XDG_RUNTIME_DIR``, ``/tmp/mcpkeeper-<uid>/<hash>/``, where ``<hash>``
names the home. Such a directory is shared ground: :mod:`.socket_dir` makes sure it is
ours and private before the daemon listens there or a client connects.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = [
    "API_PREFIX",
    "SOCKET_PATH_MAX",
    "daemon_log_path",
    "lock_path",
    "pid_path",
    "run_dir",
    "socket_path",
    "socket_uses_short_dir",
]

API_PREFIX = "/api/v1beta"

SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS
_SOCKET_NAME = "daemon.sock"
_HASH_LENGTH = 16


def run_dir(home: Path) -> Path:
    return home / "run"


def socket_path(home: Path) -> Path:
    """The control socket of the daemon serving ``home`` (see the module docstring)."""
    preferred = run_dir(home) / _SOCKET_NAME
    if _fits(preferred):
        return preferred
    return _short_dir(home) / _SOCKET_NAME


def socket_uses_short_dir(home: Path) -> bool:
    """Whether the socket of ``home`` lives outside it, in a short per-user directory."""
    return socket_path(home) != run_dir(home) / _SOCKET_NAME


def pid_path(home: Path) -> Path:
    return run_dir(home) / "daemon.pid"


def lock_path(home: Path) -> Path:
    """Held (flock) by the running daemon for its whole life: one daemon per home."""
    return run_dir(home) / "daemon.lock"


def daemon_log_path(home: Path) -> Path:
    return home / "logs" / "daemon.log"


def _fits(path: Path) -> bool:
    return len(os.fsencode(path)) <= SOCKET_PATH_MAX


def _short_dir(home: Path) -> Path:
    digest = hashlib.sha256(os.fsencode(home.expanduser().resolve())).hexdigest()[:_HASH_LENGTH]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        candidate = Path(runtime) / "mcpkeeper" / digest
        if _fits(candidate / _SOCKET_NAME):
            return candidate
    # Short by construction; the directory's ownership is checked before any use.
    return Path("/tmp") / f"mcpkeeper-{os.getuid()}" / digest  # noqa: S108
