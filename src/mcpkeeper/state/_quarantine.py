"""Moving unreadable state files aside instead of crashing on them.

A corrupt file (disk trouble, a hand edit gone wrong, a tool that wrote it non-atomically)
must neither take down a listing nor be silently overwritten: the evidence is kept next to
it as ``<file>.corrupted`` (``.corrupted.1``, ``.corrupted.2``… if earlier ones exist, so a
second corruption never destroys the first), and the caller reports it.

One rule for reporting, whichever process found the file: a file moved aside stays
visible until the user deals with it. As long as ``<file>.corrupted*`` exists and nothing
has replaced ``<file>``, :func:`leftover` describes it, and the stores report that name
as unreadable exactly as on the read that moved it (``list``, ``status``, the control
API). A new file at the path (a new login, the workload created again) or removing the
evidence (``mcpkeeper rm``, or by hand) ends it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mcpkeeper.state.names import NAME_PATTERN

__all__ = [
    "CorruptFile",
    "CorruptStateError",
    "FileIdentity",
    "discard_evidence",
    "leftover",
    "quarantine",
    "read_each",
    "scan_names",
]

T = TypeVar("T")

_MAX_SUFFIX = 1000  # bounded search; beyond it something is badly wrong and we stop moving files


@dataclass(frozen=True)
class FileIdentity:
    """Enough of a stat result to tell "the file I read" from "a newer file at the same path"."""

    inode: int
    device: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileIdentity:
        return cls(st.st_ino, st.st_dev, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class CorruptFile:
    """A state file that could not be read, and where it went."""

    name: str
    path: Path
    reason: str
    moved_to: Path | None
    """None when the file could not (or, being replaced meanwhile, need not) be moved."""
    earlier: bool = False
    """Moved aside by an earlier read (maybe another process), not by this one."""

    def describe(self) -> str:
        """One line for a status reason, a log or the CLI."""
        if self.earlier:
            return f"{self.path.name} was found unreadable and moved aside to {self.moved_to}"
        where = f"moved aside to {self.moved_to}" if self.moved_to else "left in place"
        return f"{self.path.name} was unreadable ({self.reason}); {where}"


class CorruptStateError(ValueError):
    """A workload config existed but could not be read; it has been moved aside if possible."""

    def __init__(self, corrupt: CorruptFile) -> None:
        super().__init__(f"workload {corrupt.name}: config {corrupt.describe()}")
        self.corrupt = corrupt


def read_each(
    names: Iterable[str], read: Callable[[str], T | None], log: logging.Logger
) -> tuple[list[T], list[CorruptFile]]:
    """``read`` every name: the values, and the files found unreadable (each logged), in order.

    ``read`` returns None for a name that vanished and raises :class:`CorruptStateError`
    for an unreadable file; one bad file never hides the others.
    """
    values: list[T] = []
    corrupted: list[CorruptFile] = []
    for name in names:
        try:
            value = read(name)
        except CorruptStateError as exc:
            if not exc.corrupt.earlier:  # reported when it was moved aside
                log.warning("%s", exc)
            corrupted.append(exc.corrupt)
            continue
        if value is not None:
            values.append(value)
    return values, corrupted


def quarantine(path: Path, seen: FileIdentity | None = None) -> Path | None:
    """Rename ``path`` to the first free ``<path>.corrupted[.N]`` and return the new path.

    ``seen`` is the identity of the bytes the caller judged corrupt: if the path now holds a
    different file (another process atomically replaced it after our read), that newer
    file is left alone and None is returned. The remaining window between this check and
    the rename is microseconds against a corruption that is already rare.
    Returns None too when the file vanished or cannot be moved (permissions).
    """
    try:
        if seen is not None and FileIdentity.of(os.stat(path)) != seen:
            return None
    except OSError:
        return None
    for index in range(_MAX_SUFFIX):
        target = path.with_name(path.name + (".corrupted" if index == 0 else f".corrupted.{index}"))
        if target.exists():
            continue
        try:
            _move_without_clobbering(path, target)
        except FileExistsError:  # another process took this suffix first
            continue
        except OSError:  # vanished (someone else moved it) or not ours to move
            return None
        return target
    return None


def _move_without_clobbering(path: Path, target: Path) -> None:
    """Rename ``path`` to ``target``, failing with FileExistsError rather than replacing it.

    link() refuses to replace an existing name, so two processes quarantining at once cannot
    destroy each other's evidence; filesystems without hard links fall back to a checked rename.
    """
    try:
        os.link(path, target)
    except (FileExistsError, FileNotFoundError):
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(target) from None
        os.rename(path, target)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _evidence_index(path: Path, candidate: str) -> int | None:
    """N of ``<path>.corrupted.N`` (0 for ``.corrupted``), None for any other name."""
    stem = path.name + ".corrupted"
    if candidate == stem:
        return 0
    if candidate.startswith(stem + ".") and candidate[len(stem) + 1 :].isdigit():
        return int(candidate[len(stem) + 1 :])
    return None


def _evidence(path: Path) -> list[Path]:
    """The files ``path`` was moved aside to, oldest first."""
    try:
        entries = [entry.name for entry in path.parent.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [(index, entry) for entry in entries if (index := _evidence_index(path, entry)) is not None]
    return [path.parent / entry for _, entry in sorted(found)]


def leftover(path: Path, name: str) -> CorruptFile | None:
    """The last file ``path`` was moved aside to, when nothing has replaced it since."""
    if os.path.lexists(path):
        return None
    evidence = _evidence(path)
    if not evidence:
        return None
    return CorruptFile(name, path, "moved aside earlier", evidence[-1], earlier=True)


def scan_names(directory: Path, suffix: str) -> list[str]:
    """Valid names ``N`` with a file ``N<suffix>`` or evidence ``N<suffix>.corrupted[.N]``, sorted.

    A store's scan reads each: a name whose file was moved aside earlier is reported again.
    """
    try:
        entries = [entry.name for entry in directory.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    marker = suffix + ".corrupted"
    names = {entry.removesuffix(suffix) for entry in entries if entry.endswith(suffix)}
    names.update(entry[: entry.index(marker)] for entry in entries if marker in entry)
    return sorted(name for name in names if NAME_PATTERN.fullmatch(name))


def discard_evidence(path: Path) -> int:
    """Delete every file ``path`` was moved aside to (the user dealt with it); how many."""
    removed = 0
    for evidence in _evidence(path):
        with contextlib.suppress(FileNotFoundError):
            evidence.unlink()
            removed += 1
    return removed
