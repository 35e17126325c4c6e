"""Workload (and lock) names, which double as file names.

A name becomes ``statuses/<name>.json``, ``workloads/<name>.json``, ``locks/<name>.lock``…
so it must never be able to leave its directory or hide as a dotfile. One strict charset,
checked at every entry point of the stores, rules out path traversal by construction
instead of by sanitising.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["NAME_PATTERN", "names_in", "validate_name"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

_SHOWN_PREFIX = 40  # a hostile name can be huge; the error message stays one short line


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe workload name, else raise a one-line ValueError."""
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    shown = repr(name[:_SHOWN_PREFIX] + "…" if isinstance(name, str) and len(name) > _SHOWN_PREFIX else name)
    raise ValueError(
        f"invalid workload name {shown}: use 1-63 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit"
    )


def names_in(directory: Path, suffix: str) -> list[str]:
    """Sorted valid names ``N`` of the files ``N<suffix>`` in ``directory`` (none if it is missing).

    Anything else there (temp files, ``.corrupted`` evidence, strays) is ignored.
    """
    try:
        entries = [entry.name for entry in directory.iterdir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
    names = (entry.removesuffix(suffix) for entry in entries if entry.endswith(suffix))
    return sorted(name for name in names if NAME_PATTERN.fullmatch(name))
