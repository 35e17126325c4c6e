"""``mcpkeeper logs NAME [-f]``: print (and follow) one workload's log file.

The daemon writes ``<home>/logs/<name>.log`` itself, so reading it needs no daemon: the
log of a workload that crashed the daemon is still there to read. Following polls the
file (portable, no inotify) and survives the file being truncated or replaced.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, BinaryIO, Protocol

import typer

from mcpkeeper.cli._options import WorkloadNameArg, checked_name
from mcpkeeper.cli.errors import CliError, ExitCode
from mcpkeeper.cli.list_cmd import FormatOpt, OutputFormat
from mcpkeeper.state.paths import state_home
from mcpkeeper.workloads.log_follow import LogCursor
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
        int | None,
        typer.Option("--tail", "-n", min=0, metavar="N", help="Only the last N lines (default: all)."),
    ] = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Print a workload's log (never contains tokens); -o json prints one JSON object per line."""
    home = state_home()
    path = workload_log_file(home, checked_name(name))
    if not path.exists() and not _workload_known(home, name):
        raise CliError(f"no workload named {name!r}", ExitCode.NOT_FOUND)
    out: _Writer = sys.stdout.buffer if output is OutputFormat.TABLE else _JsonLines(sys.stdout.buffer)
    position = _print_existing(path, out, tail)
    if follow:
        try:
            _follow(path, out, position)
        except KeyboardInterrupt:
            return


def _workload_known(home: Path, name: str) -> bool:
    """A workload without a log yet (never started) is not an error, an unknown name is."""
    return (home / "workloads" / f"{name}.json").exists() or (home / "statuses" / f"{name}.json").exists()


def _print_existing(path: Path, out: _Writer, tail: int | None) -> int:
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


def _follow(path: Path, out: _Writer, position: int) -> None:
    """Poll for appended bytes until interrupted; restart from 0 if the file was replaced or cut."""
    cursor = LogCursor(path, position)
    while True:
        time.sleep(_POLL_SECONDS)
        if not cursor.has_more():
            continue
        with open(path, "rb") as fh:
            fh.seek(cursor.position)
            while chunk := fh.read(_CHUNK):
                out.write(chunk)
            cursor.position = fh.tell()
        out.flush()


#: ``%(asctime)s %(levelname)s %(name)s: %(message)s``, the format of every workload log.
_LINE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ([A-Z]+) ([^\s:]+): (.*)")


class _Writer(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def writelines(self, lines: Iterable[bytes], /) -> None: ...
    def flush(self) -> None: ...


class _JsonLines:
    """Turns the log's bytes into one JSON object per line (``time``, ``level``, ``logger``,
    ``message``; a line of another shape, such as a traceback's, has ``message`` only)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._partial = b""

    def write(self, data: bytes, /) -> int:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self._out.write(json.dumps(_parsed(line.decode("utf-8", "replace"))).encode() + b"\n")
        return len(data)

    def writelines(self, lines: Iterable[bytes], /) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._out.flush()


def _parsed(line: str) -> dict[str, str]:
    match = _LINE.fullmatch(line.rstrip("\r"))
    if match is None:
        return {"message": line}
    moment, level, logger, message = match.groups()
    return {"time": moment, "level": level, "logger": logger, "message": message}
