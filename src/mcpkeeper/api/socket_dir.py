"""Making sure the control socket's directory is ours before we listen or connect there.

Under ``<home>/run`` the home's own 0700 protects the socket. A short directory in
``/tmp`` (see :mod:`.paths`) is shared ground: another local user could create
``/tmp/mcpkeeper-<uid>`` first and put a socket of their own there, and a client would
then hand its commands (remote URLs, local ports) to a daemon of theirs. So both levels
of that directory must be real directories (no symlink), owned by us, and private; the
daemon creates them 0700, and both sides refuse anything else with a clear message.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from mcpkeeper.api.paths import socket_path, socket_uses_short_dir

__all__ = ["UnsafeSocketDirError", "prepare_socket_dir", "verify_socket_dir"]


class UnsafeSocketDirError(OSError):
    """The control socket's directory is not a private directory of this user."""


def prepare_socket_dir(home: Path) -> Path:
    """For the daemon: create the socket's directory (0700) if needed, check it, return the socket path."""
    path = socket_path(home)
    if socket_uses_short_dir(home):
        for directory in (path.parent.parent, path.parent):
            with contextlib.suppress(FileExistsError):
                directory.mkdir(mode=0o700)
            _check_private(directory)
        _check_socket(path)
    return path


def verify_socket_dir(home: Path) -> Path:
    """For a client: the socket path, once its directory is known to be ours (if it exists)."""
    path = socket_path(home)
    if socket_uses_short_dir(home):
        for directory in (path.parent.parent, path.parent):
            if os.path.lexists(directory):
                _check_private(directory)
        _check_socket(path)
    return path


def _check_private(directory: Path) -> None:
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeSocketDirError(f"{directory} should be a directory for mcpkeeper's socket; remove it")
    if st.st_uid != os.getuid():
        raise UnsafeSocketDirError(
            f"{directory} belongs to another user (uid {st.st_uid}); mcpkeeper will not use it "
            "for its control socket: remove it"
        )
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, 0o700)  # ours: close it before anything goes in


def _check_socket(path: Path) -> None:
    """A socket already there must be ours (left by our own daemon), never someone else's."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if st.st_uid != os.getuid() or not stat.S_ISSOCK(st.st_mode):
        raise UnsafeSocketDirError(f"{path} is not a socket of this user; mcpkeeper will not use it")
