"""Where mcpkeeper keeps its state.

Everything lives under one directory so that ``MCPKEEPER_HOME`` can move the whole
installation (tests point it at a temporary directory; users at a synced folder).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import platformdirs

__all__ = ["ensure_private_dir", "state_home"]


def state_home(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The state directory: ``$MCPKEEPER_HOME`` or the platform's user data dir."""
    env = os.environ if environ is None else environ
    override = env.get("MCPKEEPER_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("mcpkeeper", appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700.

    Secrets and status files sit below it; a world-readable directory would leak
    workload names and remotes even though the files themselves are 0600.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(PermissionError):  # someone else's directory: leave it be
        os.chmod(path, 0o700)
    return path
