"""``mcpkeeper logs NAME [-f]``: print (and follow) one workload's log file.

The daemon writes ``<home>/logs/<name>.log`` itself, so reading it needs no daemon: the
log of a workload that crashed the daemon is still there to read. Following polls the
file (portable, no inotify) and survives the file being truncated or replaced.
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Annotated, BinaryIO

import typer

from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.state.paths import state_home
from mcpkeeper.workloads.logs import workload_log_file

__all__ = ["logs"]

_POLL_SECONDS = 0.25
_CHUNK = 64 * 1024


def logs(
    name: WorkloadNameArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines (Ctrl-C to stop).")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines (default: all).")
    ] = None,
) -> None:
    """Print a workload's log (never contains tokens)."""
    home = state_home()
    path = workload_log_file(home, checked_name(name))
    if not path.exists() and not _workload_known(home, name):
        raise CliError(f"no workload named {name!r}", ExitCode.NOT_FOUND)
    out = sys.stdout.buffer
    position = _print_existing(path, out, tail)
    if follow:
        try:
            _follow(path, out, position)
        except KeyboardInterrupt:
            return


def _workload_known(home: Path, name: str) -> bool:
    """A workload without a log yet (never started) is not an error, an unknown name is."""
    return (home / "workloads" / f"{name}.json").exists() or (home / "statuses" / f"{name}.json").exists()


def _print_existing(path: Path, out: BinaryIO, tail: int | None) -> int:
    """Write what the file holds now; return the offset to follow from."""
    try:
        with open(path, "rb") as fh:
            if tail is None:
                while chunk := fh.read(_CHUNK):
                    out.write(chunk)
            else:
                out.writelines(deque(fh, maxlen=tail))
            position = fh.tell()
    except FileNotFoundError:
        return 0
    out.flush()
    return position


def _follow(path: Path, out: BinaryIO, position: int) -> None:
    """Poll for appended bytes until interrupted; restart from 0 if the file was replaced or cut."""
    identity = _identity(path)
    while True:
        time.sleep(_POLL_SECONDS)
        current = _identity(path)
        if current is None:
            continue
        if current[0] != (identity[0] if identity else None) or current[1] < position:
            position = 0
        identity = current
        if current[1] == position:
            continue
        with open(path, "rb") as fh:
            fh.seek(position)
            while chunk := fh.read(_CHUNK):
                out.write(chunk)
            position = fh.tell()
        out.flush()


def _identity(path: Path) -> tuple[int, int] | None:
    """(inode, size) of the file, or None while it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size
