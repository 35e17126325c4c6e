"""Go-style durations (``90s``, ``10m``, ``1h30m``, ``250ms``).

Users moving over from ToolHive already write durations this way in their environment;
accepting the same syntax keeps their settings working unchanged.
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration", "positive_duration"]

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Longer than any timing anyone means (and what a 400-digit value would overflow past).
_MAX_DURATION = 100 * 365 * 86400.0
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ``ValueError`` for anything Go's ``time.ParseDuration`` rejects.

    A bare ``0`` is accepted as Go does; a bare number otherwise is an error (is ``10`` ten
    seconds or ten minutes? Go refuses to guess and so do we).
    """
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    sign = 1.0
    if s[0] in "+-":
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    pos = 0
    total = 0.0
    while pos < len(s):
        match = _PART.match(s, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return sign * total


def positive_duration(text: str) -> float | None:
    """Seconds in ``text`` if it is a valid duration above zero, else ``None``.

    What every setting read from the environment wants: a value to use, or a reason to
    warn once and fall back to the default.
    """
    try:
        value = parse_duration(text)
    except ValueError:
        return None
    return value if 0 < value <= _MAX_DURATION else None


def format_duration(seconds: float) -> str:
    """A compact human form: ``2h5m``, ``45s``, ``1.5s``, ``120ms``."""
    if not math.isfinite(seconds):
        return "forever" if seconds > 0 else "-forever" if seconds < 0 else "unknown"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = ""
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if secs and not hours:
        out += f"{secs}s"
    return out or "0s"
