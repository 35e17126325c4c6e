"""Crash-safe file replacement.

A reader must see either the old file or the new one, never a torn mix, and after a
crash the file must still hold one of the two: write a temporary file in the same
directory, fsync it, rename it over the target, fsync the directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_bytes", "atomic_write_json"]


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably; the file ends with ``mode``."""
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        # mkstemp creates 0600 already; fchmod makes an explicit mode stick regardless of umask.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(directory)


def atomic_write_json(path: Path, obj: Any, *, mode: int = 0o600) -> None:
    """Serialise ``obj`` as indented JSON and write it with :func:`atomic_write_bytes`."""
    data = json.dumps(obj, indent=2, sort_keys=True).encode() + b"\n"
    atomic_write_bytes(path, data, mode=mode)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; without it a power cut can resurrect the old name."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)
