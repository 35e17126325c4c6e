"""One rule for settings read from the environment.

A setting is the first of its names that is set (``MCPKEEPER_…``, then a fallback such as
``TOOLHIVE_…`` for users moving over); a value that does not parse falls back to the
default with one warning naming the variable, never an error: a typo in an environment
variable must not keep the daemon from starting or take a workload down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

__all__ = ["read_setting"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def read_setting(
    env: Mapping[str, str],
    names: Sequence[str],
    parse: Callable[[str], T | None],
    default: T,
    *,
    what: str,
    instead: str | None = None,
) -> T:
    """The value of the first of ``names`` set in ``env``, parsed; ``default`` when none is set
    or the value does not parse (``parse`` returns None), with a warning saying so and what is
    used instead (``instead``, when the default is better said in words than printed)."""
    for name in names:
        raw = env.get(name)
        if raw is None or not raw.strip():
            continue
        value = parse(raw)
        if value is None:
            used = instead or f"the default {default}"
            log.warning("ignoring %s=%r: not %s; using %s", name, raw, what, used)
            return default
        return value
    return default
