"""Where mcpkeeper keeps its state.

Everything lives under one directory so that ``MCPKEEPER_HOME`` can move the whole
installation (tests point it at a temporary directory; users at a synced folder).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import platformdirs

__all__ = ["HomeNotWritableError", "check_writable_home", "ensure_private_dir", "state_home"]

#: What a command that logs in and starts a workload writes under the home.
STATE_SUBDIRS: tuple[str, ...] = ("secrets", "workloads", "statuses", "locks", "logs", "run")


class HomeNotWritableError(OSError):
    """The state home (or a directory below it) cannot be created or written."""


def state_home(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The state directory: ``$MCPKEEPER_HOME`` or the platform's user data dir."""
    env = os.environ if environ is None else environ
    override = env.get("MCPKEEPER_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir("mcpkeeper", appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and every missing parent as 0700, and make ``path`` itself 0700.

    Secrets and status files sit below it; a world-readable directory would leak
    workload names and remotes even though the files themselves are 0600. Parents are
    created one by one because ``mkdir(parents=True)`` gives them the umask's mode (0755):
    ``mcpkeeper proxy`` on a fresh ``MCPKEEPER_HOME`` left the home itself readable by all.
    Parents that already exist are not touched (they may be the user's own directories).
    """
    missing: list[Path] = []
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=0o700)
        with contextlib.suppress(PermissionError):
            os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask
    with contextlib.suppress(PermissionError):  # someone else's directory: leave it be
        os.chmod(path, 0o700)
    return path


def check_writable_home(home: Path, subdirs: tuple[str, ...] = STATE_SUBDIRS) -> None:
    """Create ``home`` and ``subdirs`` (0700) and write a probe file in each, or raise
    :class:`HomeNotWritableError` naming the directory and why.

    Called before a browser login: a login that succeeds and then cannot be stored is
    lost work for the user (and a token the server issued for nothing).
    """
    import tempfile

    for directory in (home, *(home / sub for sub in subdirs)):
        try:
            ensure_private_dir(directory)
            fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise HomeNotWritableError(
                f"cannot write to {directory} ({reason}); "
                f"MCPKEEPER_HOME ({home}) must be a writable directory"
            ) from None
