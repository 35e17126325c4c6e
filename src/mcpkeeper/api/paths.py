"""Where the daemon's run-time files live (``<home>/run``, ``<home>/logs``).

Shared by the daemon that creates them and the client that looks for them, so the two
can never disagree about a path.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["API_PREFIX", "daemon_log_path", "lock_path", "pid_path", "run_dir", "socket_path"]

API_PREFIX = "/api/v1beta"


def run_dir(home: Path) -> Path:
    return home / "run"


def socket_path(home: Path) -> Path:
    return run_dir(home) / "daemon.sock"


def pid_path(home: Path) -> Path:
    return run_dir(home) / "daemon.pid"


def lock_path(home: Path) -> Path:
    """Held (flock) by the running daemon for its whole life: one daemon per home."""
    return run_dir(home) / "daemon.lock"


def daemon_log_path(home: Path) -> Path:
    return home / "logs" / "daemon.log"
