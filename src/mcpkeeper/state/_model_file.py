"""Reading one record (:mod:`._schema`) from one JSON state file, surviving whatever is on disk.

Both stores share the same contract: a missing file is "nothing there", an undecodable or
wrongly shaped file is quarantined (see :mod:`._quarantine`) and reported as a
:class:`CorruptFile`, and nothing a file contains can raise out of a read.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from mcpkeeper.state._atomic import atomic_write_json
from mcpkeeper.state._quarantine import CorruptFile, FileIdentity, quarantine
from mcpkeeper.state._schema import SchemaError, decode, to_json

__all__ = ["load_model_file", "write_model_file"]

ModelT = TypeVar("ModelT")

_MAX_BYTES = 1 << 20  # state files are a few hundred bytes; a megabyte is garbage, not state
_READ_ATTEMPTS = 3  # re-read when the file was replaced between our read and the quarantine


def load_model_file(path: Path, model: type[ModelT], *, name: str) -> ModelT | CorruptFile | None:
    """The model stored at ``path``; None when there is no file; CorruptFile when unreadable."""
    for _ in range(_READ_ATTEMPTS):
        try:
            with open(path, "rb") as fh:
                identity = FileIdentity.of(os.fstat(fh.fileno()))
                data = fh.read(_MAX_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a directory, no permission…: not ours to move
            return CorruptFile(name, path, f"cannot read: {exc.strerror or exc}", None)
        if len(data) > _MAX_BYTES:
            reason = f"larger than {_MAX_BYTES} bytes"
        else:
            try:
                return decode(data, model)
            except SchemaError as exc:
                reason = str(exc)
        moved = quarantine(path, identity)
        if moved is not None:
            return CorruptFile(name, path, reason, moved)
        if not path.exists():
            return None
        # Not moved: either replaced by a newer file meanwhile (read that one) or immovable.
    return CorruptFile(name, path, reason, None)


def write_model_file(path: Path, value: object) -> None:
    """Write ``value`` as JSON atomically with mode 0600."""
    atomic_write_json(path, to_json(value))
