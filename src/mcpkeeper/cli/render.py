"""Turning workload facts into text for people: ages, timestamps, colours, truncation.

Pure functions (no I/O) so the wording is unit-tested without a terminal.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mcpkeeper.sanitize import server_text
from mcpkeeper.state.statuses import WorkloadStatus

__all__ = ["ellipsize", "format_instant", "humanise_age", "humanise_delta", "printable", "status_style"]

#: A printed value is one line of at most this many characters (URLs included).
_LINE_LIMIT = 4096

_STYLES: dict[str, str] = {
    WorkloadStatus.RUNNING: "green",
    WorkloadStatus.AUTH_RETRYING: "yellow",
    WorkloadStatus.UNAUTHENTICATED: "bold red",
    WorkloadStatus.ERROR: "red",
    WorkloadStatus.UNHEALTHY: "red",
    WorkloadStatus.STARTING: "cyan",
    WorkloadStatus.STOPPING: "cyan",
    WorkloadStatus.STOPPED: "dim",
    WorkloadStatus.REMOVING: "dim",
    WorkloadStatus.POLICY_STOPPED: "magenta",
    WorkloadStatus.UNKNOWN: "magenta",
}


def status_style(status: str) -> str:
    """The rich style of a status: green is fine, yellow heals by itself, red needs you."""
    return _STYLES.get(status, "magenta")


def humanise_delta(seconds: float) -> str:
    """A coarse, short duration: ``12s``, ``5m``, ``3h20m``, ``2d4h``."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, _ = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours}h" if hours else f"{days}d"


def humanise_age(moment: datetime | None, now: datetime) -> str:
    """How long ago ``moment`` was (``5m ago``); ``-`` when unknown."""
    if moment is None:
        return "-"
    return f"{humanise_delta((now - moment).total_seconds())} ago"


def format_instant(epoch: float | None, now: float) -> str:
    """An absolute local time plus its distance from now: ``2025-01-02 10:00:00 (in 5m)``."""
    if epoch is None:
        return "-"
    when = datetime.fromtimestamp(epoch, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    delta = epoch - now
    relative = f"in {humanise_delta(delta)}" if delta >= 0 else f"{humanise_delta(-delta)} ago"
    return f"{when} ({relative})"


def ellipsize(text: str, width: int) -> str:
    """``text`` on one line and at most ``width`` characters, marking the cut with ``…``."""
    return printable(text, width)


def printable(text: object, width: int = _LINE_LIMIT) -> str:
    """Text a server may have written (a status reason, an issuer, a URL) made safe to print.

    Status reasons, issuers and URLs come from servers; printed raw, ANSI escapes would
    let one rewrite the user's terminal and a newline would break a one-line promise.
    This is :func:`mcpkeeper.sanitize.server_text`, the one sanitiser for such text.
    """
    return server_text(text, width)
